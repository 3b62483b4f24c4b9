"""Checking a corpus file by file: the good utterances go on, every bad one is listed with its reason.

A corpus of thousands of files nearly always holds a few broken ones (empty, truncated, silent, a minute of
silence after a mis-recording); an importer should list them, not stop at the first. `check_utterances` reads
each file's header, decodes its segment (unless told not to), checks the duration against limits and fills in
the `duration` field, so later stages (batching, stats) need not open the file again.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gruasr.audio.io import audio_info, load_audio
from gruasr.data.manifest import Utterance, write_manifest
from gruasr.errors import ConfigError, GruAsrError

#: how far (seconds) a segment may run past the end of its file and be cut short rather than rejected;
#: Kaldi's extract-segments allows the same overshoot (its --max-overshoot, 0.5 s)
MAX_OVERSHOOT = 0.5

T = TypeVar("T")


@dataclass(frozen=True)
class CheckLimits:
    """What a usable utterance is: duration in [min_duration, max_duration] seconds, optionally one sample
    rate (Hz); `decode` also decodes the samples (finds truncated, corrupt and all-zero files), else headers only."""

    min_duration: float = 0.1
    max_duration: float = 60.0
    sample_rate: int | None = None
    decode: bool = True

    def __post_init__(self) -> None:
        if not (math.isfinite(self.min_duration) and self.min_duration >= 0):
            raise ConfigError(f"min_duration must be a finite number >= 0 seconds, got {self.min_duration}")
        if not self.max_duration > self.min_duration:
            raise ConfigError(f"max_duration ({self.max_duration} s) must exceed min_duration ({self.min_duration} s)")
        if self.sample_rate is not None and self.sample_rate <= 0:
            raise ConfigError(f"sample_rate must be positive, got {self.sample_rate}")


@dataclass(frozen=True)
class Rejected:
    """An utterance left out of a manifest, and why."""

    id: str
    audio: str
    reason: str


@dataclass
class CheckResult:
    good: list[Utterance] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)


@dataclass
class ImportReport:
    """What an importer wrote: utterances and seconds per manifest, and the rejected utterances."""

    out: Path
    counts: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    rejected: list[Rejected] = field(default_factory=list)
    rejected_path: Path | None = None
    notes: list[str] = field(default_factory=list)

    def add(self, name: str, utts: Sequence[Utterance]) -> None:
        self.counts[name] = len(utts)
        self.seconds[name] = sum(u.duration or 0.0 for u in utts)


def stderr_console() -> Console:
    return Console(file=sys.stderr)


def track(items: Iterable[T], total: int, description: str) -> Iterator[T]:
    """Iterate with a rich progress bar on stderr (shown on a terminal only; nothing in logs or under pytest)."""
    console = stderr_console()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)


def _reason(err: Exception, audio: str) -> str:
    """The error's message without the file name it usually starts with (rejected.tsv has its own column)."""
    text = str(err)
    for prefix in (f"{audio}: ", f"{Path(audio)}: "):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return text


def check_utterance(utt: Utterance, limits: CheckLimits) -> Utterance:
    """The utterance with `duration` filled in from its audio; raises GruAsrError saying what is wrong."""
    if not utt.text.strip():
        raise ConfigError("empty transcript")
    info = audio_info(utt.audio, utt.raw_format)
    if limits.sample_rate is not None and info.sample_rate != limits.sample_rate:
        raise ConfigError(f"sample rate {info.sample_rate} Hz, expected {limits.sample_rate} Hz")
    if utt.channel is not None and not 0 <= utt.channel < info.channels:
        raise ConfigError(f"channel {utt.channel} requested from a file with {info.channels} channel(s)")
    start = utt.start or 0.0
    if start < 0 or start >= info.duration:
        raise ConfigError(f"segment starts at {start:.3f} s, outside the audio's {info.duration:.3f} s")
    duration = info.duration - start if utt.duration is None else utt.duration
    if duration <= 0:
        raise ConfigError(f"segment duration {duration:.3f} s is not positive")
    overshoot = start + duration - info.duration
    if overshoot > MAX_OVERSHOOT:
        raise ConfigError(f"segment ends at {start + duration:.3f} s, {overshoot:.3f} s past the audio's end")
    if overshoot > 0:
        duration = info.duration - start
    if duration < limits.min_duration:
        raise ConfigError(f"too short: {duration:.3f} s < {limits.min_duration} s")
    if duration > limits.max_duration:
        raise ConfigError(f"too long: {duration:.3f} s > {limits.max_duration} s")
    if limits.decode:
        audio = load_audio(utt.audio, raw=utt.raw_format, start=start, duration=duration)
        samples = audio.samples if utt.channel is None else audio.samples[utt.channel : utt.channel + 1]
        if not np.any(samples):
            raise ConfigError("silent: every sample is zero")
    return replace(utt, duration=duration)


def check_utterances(
    utts: Sequence[Utterance], limits: CheckLimits, description: str = "checking audio"
) -> CheckResult:
    """Check every utterance (see check_utterance); the good ones keep their order."""
    result = CheckResult()
    for utt in track(utts, len(utts), description):
        try:
            result.good.append(check_utterance(utt, limits))
        except GruAsrError as err:
            result.rejected.append(Rejected(utt.id, utt.audio, _reason(err, utt.audio)))
    return result


def _cell(text: str) -> str:
    return " ".join(text.split())  # no tabs or newlines inside a TSV cell


def write_rejected(path: Path, rejected: Iterable[Rejected]) -> Path:
    """rejected.tsv: a header line `id  audio  reason`, then one line per rejected utterance (written even when
    empty, so its presence says the corpus was checked)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["id\taudio\treason"] + [f"{_cell(r.id)}\t{_cell(r.audio)}\t{_cell(r.reason)}" for r in rejected]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def write_split(report: ImportReport, path: Path, utts: Sequence[Utterance]) -> None:
    """Write one manifest and record its size in the report under the manifest's file name."""
    write_manifest(path, utts)
    report.add(path.name, utts)


def finish_import(
    out: Path, utts: Sequence[Utterance], rejected: list[Rejected], limits: CheckLimits | None, label: str
) -> ImportReport:
    """Check `utts`, write the good ones to the manifest `out` and the rejected ones beside it
    (`<stem>.rejected.tsv`); an import with nothing usable is an error."""
    checked = check_utterances(utts, limits or CheckLimits(), label)
    rejected = rejected + checked.rejected
    if not checked.good:
        raise ConfigError(f"{label}: no usable utterances ({len(rejected)} rejected)")
    report = ImportReport(out.parent)
    write_split(report, out, checked.good)
    report.rejected = rejected
    report.rejected_path = write_rejected(out.with_name(f"{out.stem}.rejected.tsv"), rejected)
    return report


def require_dir(path: str | Path, what: str) -> Path:
    path = Path(path)
    if not path.is_dir():
        raise ConfigError(f"{what} not found or not a folder: {path}")
    return path
