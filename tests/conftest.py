"""Shared test options: --device, the requires_cuda marker, seeds and the data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--device", default="cpu", help="device for device-parametrised tests (cpu, cuda)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device; none is present on this machine")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def device(request: pytest.FixtureRequest) -> torch.device:
    name = request.config.getoption("--device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.fail("--device cuda was given but no CUDA device is present")
    return torch.device(name)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(1234)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The speech corpora: $GRUASR_DATA, else ../shared/data beside the project. Missing data fails the test."""
    path = Path(os.environ.get("GRUASR_DATA", ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        pytest.fail(f"speech data folder not found: {path} (set GRUASR_DATA to the folder holding an4/ and fsdd/)")
    return path
