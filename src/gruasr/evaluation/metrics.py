"""Error rates over a test set: WER, CER, sentence error rate, and the counts behind them."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields

from gruasr.evaluation.align import align, edit_distance


@dataclass
class ErrorCounts:
    """Accumulated word and character errors; add utterances with `add`."""

    words: int = 0
    sub: int = 0
    dels: int = 0
    ins: int = 0
    chars: int = 0
    char_errors: int = 0
    sentences: int = 0
    sentence_errors: int = 0

    def add(self, ref: str, hyp: str) -> None:
        a = align(ref.split(), hyp.split())
        self.words += len(ref.split())
        self.sub += a.sub
        self.dels += a.dels
        self.ins += a.ins
        self.chars += len(ref)
        self.char_errors += edit_distance(list(ref), list(hyp))
        self.sentences += 1
        self.sentence_errors += int(ref.split() != hyp.split())

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        """The counts of both sets of utterances together."""
        return ErrorCounts(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    @property
    def errors(self) -> int:
        return self.sub + self.dels + self.ins

    @property
    def wer(self) -> float:
        return self.errors / self.words if self.words else float(self.errors > 0)

    @property
    def cer(self) -> float:
        return self.char_errors / self.chars if self.chars else float(self.char_errors > 0)

    @property
    def ser(self) -> float:
        return self.sentence_errors / self.sentences if self.sentences else 0.0

    def summary_line(self) -> str:
        """The line `gruasr eval` prints last: `WER X.XX% [E / N, S sub, D del, I ins]`."""
        return (
            f"WER {100 * self.wer:.2f}% [{self.errors} / {self.words}, {self.sub} sub, {self.dels} del, {self.ins} ins]"
        )


@dataclass
class DevResult:
    """Errors on a dev set of several manifests: per manifest, pooled, and the selection WER (data.dev_weights)
    that picks epochs in training and decoding settings in `gruasr model bundle`. Fill one with `add`."""

    sets: list[ErrorCounts]
    weights: tuple[float, ...] = ()

    @classmethod
    def empty(cls, num_sets: int, weights: Iterable[float] = ()) -> DevResult:
        return cls([ErrorCounts() for _ in range(num_sets)], tuple(weights))

    def add(self, ref: str, hyp: str, group: int = 0) -> None:
        """One utterance of dev manifest `group`."""
        self.sets[group].add(ref, hyp)

    @property
    def pooled(self) -> ErrorCounts:
        """Every manifest's utterances together."""
        return sum(self.sets, ErrorCounts())

    @property
    def wer(self) -> float:
        """What selects: the pooled WER, or the weighted mean of the sets' WERs."""
        if not self.weights:
            return self.pooled.wer
        return sum(w * c.wer for w, c in zip(self.weights, self.sets, strict=True)) / sum(self.weights)

    @property
    def cer(self) -> float:
        return self.pooled.cer

    @property
    def invented(self) -> int:
        """Words output on the speech-free sets (those with no reference words)."""
        return sum(c.ins for c in self.sets if not c.words)

    def per_set(self) -> list[str]:
        """Each manifest's score as printed: its WER, or for a speech-free one the words invented on it (a WER has
        no meaning without reference words: ErrorCounts.wer reads 100% for one word or a hundred)."""
        return [
            f"{100 * c.wer:.2f}%" if c.words else f"{c.ins} word{'' if c.ins == 1 else 's'} invented" for c in self.sets
        ]


@dataclass
class Scored:
    counts: ErrorCounts = field(default_factory=ErrorCounts)
    by_speaker: dict[str, ErrorCounts] = field(default_factory=dict)


def score(pairs: Iterable[tuple[str, str]]) -> ErrorCounts:
    """ErrorCounts of (reference, hypothesis) pairs."""
    counts = ErrorCounts()
    for ref, hyp in pairs:
        counts.add(ref, hyp)
    return counts
