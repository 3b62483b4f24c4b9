"""A tiny model trained once per session on real FSDD takes, for the recognizer and CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from gruasr.training.loop import train

from ..training.helpers import fsdd_manifests, tiny_config


@pytest.fixture(scope="session")
def tiny_model(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tiny-model")
    train_m, dev_m = fsdd_manifests(data_dir, folder / "data", train=16, dev=4)
    train(tiny_config(train_m, dev_m, "train.epochs=1", "train.average_last=1"), folder / "run")
    return folder / "run" / "model"


@pytest.fixture(scope="session")
def test_manifest(tiny_model: Path) -> Path:
    return tiny_model.parents[1] / "data" / "dev.jsonl"
