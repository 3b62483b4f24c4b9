"""Small audio files and CLI runs for the data tests."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gruasr.audio.io import save_wav
from gruasr.cli.main import main


def tone(seconds: float, sample_rate: int = 8000, freq: float = 440.0) -> np.ndarray:
    """A 0.3-amplitude sine, (n,) float32."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def write_tone(path: Path, seconds: float, sample_rate: int = 8000, freq: float = 440.0) -> Path:
    return save_wav(path, tone(seconds, sample_rate, freq), sample_rate)


def write_raw_be16(path: Path, samples: np.ndarray) -> Path:
    """Headerless 16-bit big-endian PCM, as AN4 ships."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes((np.clip(samples, -1, 1) * 32767).astype(">i2").tobytes())
    return path


def run_cli(argv: Sequence[str]) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `gruasr ARGV`, usable where capsys is not (module-scoped fixtures)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def rejected_rows(path: Path) -> dict[str, tuple[str, str]]:
    """rejected.tsv as id -> (audio, reason), checking its header."""
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "id\taudio\treason"
    rows = [line.split("\t") for line in lines[1:]]
    assert all(len(r) == 3 for r in rows), rows
    return {r[0]: (r[1], r[2]) for r in rows}
