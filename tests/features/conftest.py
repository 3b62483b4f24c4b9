"""Real speech for the feature tests: a spread of FSDD takes (8 kHz) and AN4 utterances (16 kHz, and resampled
to 8 kHz), loaded once per session. A missing data folder fails (tests/conftest.py's data_dir)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from gruasr.audio.io import AN4_RAW, load_audio


def _spread(paths: list[Path], count: int) -> list[Path]:
    if not paths:
        pytest.fail("no audio files found in the speech data folder")
    step = max(1, len(paths) // count)
    return paths[::step][:count]


@pytest.fixture(scope="session")
def fsdd_paths(data_dir: Path) -> list[Path]:
    """16 FSDD takes spread over the sorted file list (all six speakers, several digits)."""
    return _spread(sorted((data_dir / "fsdd" / "recordings").glob("*.wav")), 16)


@pytest.fixture(scope="session")
def an4_paths(data_dir: Path) -> list[Path]:
    """8 AN4 training utterances, from 8 speakers."""
    return _spread(sorted((data_dir / "an4" / "wav" / "an4_clstk").glob("*/*.raw")), 8)


@pytest.fixture(scope="session")
def speech_8k(fsdd_paths: list[Path], an4_paths: list[Path]) -> dict[str, np.ndarray]:
    """name -> mono float32 samples at 8 kHz: FSDD as recorded, AN4 resampled from 16 kHz."""
    audio = {p.name: load_audio(p).samples[0] for p in fsdd_paths}
    audio.update({p.name: load_audio(p, raw=AN4_RAW, sample_rate=8000).samples[0] for p in an4_paths})
    return audio


@pytest.fixture(scope="session")
def speech_16k(an4_paths: list[Path]) -> dict[str, np.ndarray]:
    """name -> mono float32 samples at 16 kHz: AN4 as recorded."""
    return {p.name: load_audio(p, raw=AN4_RAW).samples[0] for p in an4_paths}
