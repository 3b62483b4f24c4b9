"""Words cut out of a corpus's utterances by CTC forced alignment: e.g. the digits of AN4's many speakers, as
takes for phone numbers next to FSDD's six speakers (`gruasr data cut-words`).

For every utterance whose transcript holds one of `words`, a model's output is forced-aligned to the transcript
(gruasr.decoding.forced), and each such word becomes a segment of the utterance's audio: from its first letter's
output step to its last letter's, widened by `margin` seconds each side (never past its neighbours' spans or the
utterance). A cut is kept only when the model, decoding the segment alone (greedy), hears exactly that word, so
a misplaced boundary drops the cut rather than teaching the wrong word. Segments point into the original audio
(start, duration): nothing is copied.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

import numpy as np

from gruasr.data.manifest import Utterance, load_utterance
from gruasr.decoding.forced import word_spans
from gruasr.decoding.greedy import greedy_decode
from gruasr.errors import ConfigError
from gruasr.recognizer import OfflineRecognizer

DIGITS = ("zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")


@dataclass
class CutReport:
    kept: list[Utterance]
    #: (utterance id, word, what the model heard in the cut) of the cuts dropped
    dropped: list[tuple[str, str, str]]
    #: utterances that held one of the words but could not be aligned
    unaligned: list[str]


def cut_words(
    utts: Iterable[Utterance], recognizer: OfflineRecognizer, words: Sequence[str] = DIGITS, margin: float = 0.06
) -> CutReport:
    wanted = set(words)
    rate = recognizer.sample_rate
    step = recognizer.bundle.step_seconds
    tokens = recognizer.bundle.tokens
    report = CutReport([], [], [])
    for utt in utts:
        said = utt.text.split()
        if not wanted.intersection(said):
            continue
        audio = load_utterance(utt, rate)
        log_probs = recognizer.log_probs(audio).cpu()
        try:
            spans = word_spans(log_probs.numpy(), utt.text, tokens)
        except ConfigError:  # a transcript longer than the output: skip the utterance, say so
            report.unaligned.append(utt.id)
            continue
        length = audio.shape[0] / rate
        for k, span in enumerate(spans):
            if span.label not in wanted:
                continue
            lo = 0.0 if k == 0 else (spans[k - 1].last + 1) * step
            hi = length if k == len(spans) - 1 else spans[k + 1].first * step
            start = max(lo, span.first * step - margin)
            end = min(hi, (span.last + 1) * step + margin)
            piece = audio[int(start * rate) : int(np.ceil(end * rate))]
            heard = greedy_decode(recognizer.log_probs(piece).cpu(), tokens, step).text if piece.size else ""
            if heard != span.label:
                report.dropped.append((utt.id, span.label, heard))
                continue
            report.kept.append(
                replace(
                    utt,
                    id=f"{utt.id}-w{k:02d}",
                    text=span.label,
                    start=(utt.start or 0.0) + start,
                    duration=end - start,
                )  # fmt: skip
            )
    return report
