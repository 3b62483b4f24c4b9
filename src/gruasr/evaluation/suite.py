"""The standard test sets of the accuracy table, prepared from the corpora folder, and running them.

AN4 test (clean)            the official 130 utterances, 16 kHz audio resampled to the model's rate
AN4 test, mu-law line       the same through a telephone line: 300-3400 Hz and G.711 mu-law
FSDD test digits            the official 300 isolated-digit takes (accuracy = 1 - WER)
FSDD test phone numbers     200 connected-digit numbers built from test takes only (seed 0)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from gruasr.audio.telephony import TelephoneChannel
from gruasr.data.corpora.an4 import import_an4
from gruasr.data.corpora.fsdd import import_fsdd
from gruasr.errors import ConfigError
from gruasr.evaluation.evaluate import evaluate
from gruasr.evaluation.report import Report
from gruasr.recognizer import OfflineRecognizer


@dataclass(frozen=True)
class TestSet:
    name: str
    manifest: Path
    channel: str | None = None  # G.711 codec of the simulated line, None for clean audio


def find_data(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The corpora folder: `explicit` (and only it, when given), else $GRUASR_DATA, else ../shared/data from the
    working directory; None when that folder does not hold an4/ and fsdd/."""
    candidates = (
        (explicit,) if explicit is not None else (os.environ.get("GRUASR_DATA"), Path.cwd().parent / "shared" / "data")
    )
    for candidate in candidates:
        if candidate and (Path(candidate) / "an4").is_dir() and (Path(candidate) / "fsdd").is_dir():
            return Path(candidate)
    return None


def prepare_test_sets(data: Path, work: Path, numbers: int = 200) -> list[TestSet]:
    """Import AN4 and FSDD test manifests into `work` (seconds; FSDD numbers are written as WAV there)."""
    if not (data / "an4").is_dir() or not (data / "fsdd").is_dir():
        raise ConfigError(f"{data} must hold an4/ and fsdd/")
    import_an4(data / "an4", work / "an4")
    import_fsdd(data / "fsdd", work / "fsdd", numbers={"train": 0, "dev": 0, "test": numbers}, seed=0)
    return [
        TestSet("AN4 test (clean)", work / "an4" / "test.jsonl"),
        TestSet("AN4 test, mu-law line", work / "an4" / "test.jsonl", "ulaw"),
        TestSet("FSDD test digits", work / "fsdd" / "test.jsonl"),
        TestSet("FSDD test phone numbers", work / "fsdd" / "test_numbers.jsonl"),
    ]


def run_test_set(recognizer: OfflineRecognizer, test: TestSet, console: Console | None = None) -> Report:
    channel = None
    if test.channel is not None:
        channel = TelephoneChannel(codec=test.channel, output_rate=recognizer.sample_rate)
    return evaluate(recognizer, test.manifest, channel, console=console)
