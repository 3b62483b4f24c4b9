"""Run a recognizer over a manifest and score it, optionally through a simulated telephone line."""

from __future__ import annotations

import os
import time

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from gruasr.audio.telephony import TelephoneChannel
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.errors import GruAsrError
from gruasr.evaluation.report import Recog, Report
from gruasr.recognizer import OfflineRecognizer


def evaluate(
    recognizer: OfflineRecognizer,
    manifest: str | os.PathLike[str],
    channel: TelephoneChannel | None = None,
    seed: int = 0,
    limit: int = 0,
    console: Console | None = None,
) -> Report:
    """Decode every utterance of `manifest` (through `channel` when given, seeded per utterance); utterances
    whose audio cannot be read are listed in report.failed, and the rest still scored. RTF counts features,
    network and decoding, not reading the file or the simulated line."""
    utts = read_manifest(manifest)
    if limit:
        utts = utts[:limit]
    report = Report()
    rate = recognizer.sample_rate
    progress = Progress(
        TextColumn("decoding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
        console=console or Console(stderr=True), transient=True,
    )  # fmt: skip
    with progress:
        job = progress.add_task("decoding", total=len(utts))
        for index, utt in enumerate(utts):
            progress.advance(job)
            try:
                samples = load_utterance(utt, rate)
            except GruAsrError as err:
                report.failed.append((utt.id, str(err)))
                continue
            if channel is not None:
                samples = channel.apply(samples, rate, np.random.default_rng([seed, index]))
            start = time.perf_counter()
            hyp = recognizer.transcribe(samples, rate)
            report.decode_seconds += time.perf_counter() - start
            report.audio_seconds += len(samples) / rate
            report.recogs.append(Recog(utt.id, utt.text, hyp.text, utt.speaker))
    return report
