"""What decoding returns: the text, and each word with its start and end time (seconds) and a confidence."""

from __future__ import annotations

from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Word:
    word: str
    start: float  # seconds from the start of the audio
    end: float
    conf: float  # in [0, 1]

    def shifted(self, seconds: float) -> Word:
        """The word `seconds` later (times of a segment moved onto its recording's or stream's clock)."""
        return replace(self, start=self.start + seconds, end=self.end + seconds)

    def to_dict(self) -> dict[str, float | str]:
        return {
            "word": self.word,
            "start": round(self.start, 3),
            "end": round(self.end, 3),
            "conf": round(self.conf, 4),
        }


@dataclass(frozen=True)
class Hypothesis:
    text: str
    words: tuple[Word, ...] = field(default_factory=tuple)
    score: float = 0.0  # log-probability (acoustic, plus weighted LM when fused)
    #: the beam search's posterior of this text among its final beam's alternatives, in [0, 1]; None from greedy
    confidence: float | None = None

    def shifted(self, seconds: float) -> Hypothesis:
        """The same hypothesis with every word `seconds` later."""
        return replace(self, words=tuple(w.shifted(seconds) for w in self.words))

    def clipped(self, end: float) -> Hypothesis:
        """The same hypothesis with no word time past `end` seconds (words emitted in the silence a unidirectional
        model hears after the input, gruasr.transcription.END_SILENCE, end with the input)."""
        return replace(self, words=tuple(replace(w, start=min(w.start, end), end=min(w.end, end)) for w in self.words))

    def to_dict(self) -> dict[str, object]:
        return {"text": self.text, "words": [w.to_dict() for w in self.words]}
