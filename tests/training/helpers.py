"""Tiny real-data recipes for the training tests: FSDD takes in manifests under tmp_path."""

from __future__ import annotations

from pathlib import Path

from gruasr.data.manifest import Utterance, write_manifest
from gruasr.training.config import TrainConfig, load_config

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def fsdd_manifests(data_dir: Path, folder: Path, train: int = 24, dev: int = 8) -> tuple[Path, Path]:
    files = sorted((data_dir / "fsdd" / "recordings").glob("*_george_*.wav"))
    utts = [Utterance(f.stem, str(f), WORDS[int(f.stem[0])], speaker="george") for f in files]
    step = max(len(utts) // (train + dev), 1)
    picked = utts[::step][: train + dev]
    return (
        write_manifest(folder / "train.jsonl", picked[:train]),
        write_manifest(folder / "dev.jsonl", picked[train:]),
    )


def tiny_config(train: Path, dev: Path, *overrides: str) -> TrainConfig:
    return load_config(
        None,
        [
            f'data.train=["{train}"]',
            f'data.dev=["{dev}"]',
            "features.num_mel_bins=23",
            "augment.variants=2",
            "augment.telephone_prob=0.5",
            "model.hidden_size=16",
            "model.num_layers=1",
            "model.conv_channels=16",
            "train.epochs=2",
            "train.max_seconds=4.0",
            "train.warmup_steps=2",
            "train.average_last=2",
            "train.num_workers=0",
            *overrides,
        ],
    )
