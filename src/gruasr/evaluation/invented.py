"""Invented words per minute of non-speech: what a recognizer makes of audio in which nobody speaks.

A word error rate cannot measure it (there are no reference words to divide by), so the figure is the words
output per minute of speech-free audio, overall and per kind of signal (the manifest's `speaker` field holds
the kind: see gruasr.data.corpora.nonspeech). 0 is the only right answer.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gruasr.audio.telephony import TelephoneChannel
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.errors import ConfigError


@dataclass
class Invented:
    """Words output on speech-free audio, with the seconds heard, overall and per kind."""

    seconds: float = 0.0
    words: int = 0
    clips: int = 0
    clips_with_words: int = 0
    by_kind: dict[str, list[float]] = field(default_factory=dict)  # kind -> [seconds, words]
    examples: Counter[str] = field(default_factory=Counter)  # invented word -> count

    def add(self, kind: str, seconds: float, text: str) -> None:
        words = text.split()
        self.seconds += seconds
        self.words += len(words)
        self.clips += 1
        self.clips_with_words += bool(words)
        entry = self.by_kind.setdefault(kind, [0.0, 0.0])
        entry[0] += seconds
        entry[1] += len(words)
        self.examples.update(words)

    @property
    def per_minute(self) -> float:
        return 60.0 * self.words / self.seconds if self.seconds else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "invented_words_per_minute": self.per_minute,
            "words": self.words,
            "minutes": self.seconds / 60.0,
            "clips": self.clips,
            "clips_with_words": self.clips_with_words,
            "per_kind": {k: 60.0 * w / s if s else 0.0 for k, (s, w) in sorted(self.by_kind.items())},
            "most_invented": self.examples.most_common(10),
        }


def invented_words(
    transcribe: Callable[[np.ndarray, int], str],
    manifest: str | os.PathLike[str],
    sample_rate: int,
    channel: TelephoneChannel | None = None,
    seed: int = 0,
) -> Invented:
    """Run `transcribe(samples, sample_rate) -> text` over every clip of a non-speech manifest (through
    `channel` when given, seeded per clip) and count the words it outputs. Clips must have empty transcripts."""
    out = Invented()
    for index, utt in enumerate(read_manifest(manifest)):
        if utt.text:
            raise ConfigError(f"{manifest}: {utt.id} has a transcript; a non-speech set has none")
        samples = load_utterance(utt, sample_rate)
        if channel is not None:
            samples = channel.apply(samples, sample_rate, np.random.default_rng([seed, index]))
        out.add(utt.speaker or "unknown", len(samples) / sample_rate, transcribe(samples, sample_rate))
    return out
