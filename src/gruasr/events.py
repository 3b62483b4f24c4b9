"""What streaming recognition hands out: partial and final `Event`s, and `PendingFinal`s (an ended utterance whose
final is still to be decoded). Shared by the torch streaming recognizer (gruasr.streaming) and the ONNX runtime
(gruasr.runtime), so this module imports no torch: a PendingFinal's log-probabilities are whatever the engine
gives (a torch tensor or a numpy array, (T', V) on the CPU), and every decoder takes both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gruasr.decoding.hypothesis import Hypothesis, Word


@dataclass(frozen=True)
class Event:
    """A partial result (the text so far of the utterance going on) or a final one (with words). `channel` and
    `leg` name the stream's call leg as the offline Result does: the channel's index in the file (0 for a single
    stream) and its label ("A", "B", ...) or None."""

    type: str  # "partial" or "final"
    text: str
    start: float  # seconds from the start of the stream: a final spans its words, a partial the audio so far
    end: float
    words: tuple[Word, ...] = ()
    channel: int = 0
    leg: str | None = None

    def to_dict(self) -> dict[str, object]:
        """{"type", "channel", "leg" (when labelled), "text", "start", "end", "words" (finals)}."""
        out: dict[str, object] = {"type": self.type, "channel": self.channel}
        if self.leg is not None:
            out["leg"] = self.leg
        out.update({"text": self.text, "start": round(self.start, 3), "end": round(self.end, 3)})
        if self.type == "final":
            out["words"] = [w.to_dict() for w in self.words]
        return out


@dataclass(frozen=True)
class PendingFinal:
    """An ended utterance whose final result is not decoded yet: its CTC log-probabilities (T', V) on the CPU,
    and where it lies in the stream. Decode `log_probs` by any decoder (word times in seconds from its first
    step), then `event(hypothesis)` gives the final Event on the stream's clock (None when nothing was said)."""

    log_probs: Any  # (T', V) torch.Tensor or numpy array
    offset: float  # seconds from the start of the stream to the utterance's first frame
    end: float  # seconds from the start of the stream to the utterance's end (its cut)
    channel: int = 0
    leg: str | None = None

    def event(self, hyp: Hypothesis) -> Event | None:
        """The final Event of a decoded hypothesis; it spans its words (the utterance also holds the silence
        around them). None for an empty text."""
        if not hyp.text:
            return None
        words = hyp.shifted(self.offset).words  # on the stream's clock
        start, end = (words[0].start, words[-1].end) if words else (self.offset, self.end)
        return Event("final", hyp.text, start, end, words, self.channel, self.leg)
