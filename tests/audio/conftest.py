"""Real speech for the audio tests: AN4 (raw 16 kHz big-endian) and FSDD (8 kHz WAV) from the data folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def an4_files(data_dir: Path) -> list[Path]:
    files = sorted((data_dir / "an4" / "wav").glob("*/*/*.raw"))
    if not files:
        pytest.fail(f"no AN4 .raw files under {data_dir / 'an4' / 'wav'}")
    return files


@pytest.fixture(scope="session")
def fsdd_files(data_dir: Path) -> list[Path]:
    files = sorted((data_dir / "fsdd" / "recordings").glob("*.wav"))
    if not files:
        pytest.fail(f"no FSDD .wav files under {data_dir / 'fsdd' / 'recordings'}")
    return files
