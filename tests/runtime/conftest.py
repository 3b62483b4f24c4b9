"""The torch-free runtime's tests. They run in .venv-runtime, a virtual environment without torch (`make test`
builds it: gruasr installed with --no-deps plus the [runtime] extra), on folders the main venv exported
($GRUASR_ONNX_DIR/telephone and telephone-streaming). In the main venv, where torch is loaded by the other tests'
conftest, they are skipped: what they prove is that nothing they use needs torch."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "torch" not in sys.modules:
        return
    skip = pytest.mark.skip(reason="torch is loaded here: the runtime tests run in .venv-runtime (make test)")
    for item in items:
        if "tests/runtime" in str(item.fspath):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def onnx_dir() -> Path:
    path = os.environ.get("GRUASR_ONNX_DIR")
    if not path or not (Path(path) / "telephone-streaming" / "export.json").is_file():
        pytest.fail("set GRUASR_ONNX_DIR to a folder of exported models (make test: build/onnx)")
    return Path(path)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    path = Path(os.environ.get("GRUASR_DATA", ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.fail(f"speech data folder not found: {path} (set GRUASR_DATA)")
    return path
