"""What streaming recognition hands out: partial and final `Event`s, and `PendingFinal`s (an ended utterance whose
final is still to be decoded). Shared by the torch streaming recognizer (gruasr.streaming) and the ONNX runtime
(gruasr.runtime), so this module imports no torch: a PendingFinal's log-probabilities are whatever the engine
gives (a torch tensor or a numpy array, (T', V) on the CPU), and every decoder takes both."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from gruasr.decoding.hypothesis import Hypothesis, Word
from gruasr.errors import ConfigError, ShapeError
from gruasr.transcription import as_votes


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
    #: with a deferred second pass (the recognizer's defer_second_pass): the utterance's audio at the model's
    #: rate, which `scores(second_pass)` turns into the log-probabilities to decode (log_probs is then empty)
    audio: np.ndarray | None = None
    #: the second pass's rescoring model's log-probabilities of the utterance: the stream's own when that model is
    #: the stream's (Transcriber.votes_itself), else Rescoring.votes of `audio` once computed
    vote: np.ndarray | None = None

    def scores(self, second_pass: Any = None) -> Any:
        """The log-probabilities (T', V) on the CPU to decode: `log_probs`, or the second pass's on `audio`."""
        if self.audio is None:
            return self.log_probs
        out = second_pass.log_probs(self.audio)
        return out.cpu() if hasattr(out, "cpu") else out

    def votes(self, second_pass: Any = None) -> np.ndarray | None:
        """The rescoring model's log-probabilities of the utterance, when the second pass is rescored
        (Transcriber.rescoring): `vote`, or computed from `audio`; None otherwise."""
        if self.vote is not None or self.audio is None or second_pass is None or second_pass.rescoring is None:
            return self.vote
        return second_pass.rescoring.votes(self.audio)

    def decoded(self, finals: Any, second_pass: Any = None) -> Hypothesis:
        """The final's hypothesis by the recognizer that makes the finals (the second pass, else the streaming
        model's offline recognizer), rescored when it is (Transcriber.decode_final)."""
        return finals.decode_final(self.scores(second_pass), self.votes(second_pass))

    def event(self, hyp: Hypothesis) -> Event | None:
        """The final Event of a decoded hypothesis; it spans its words (the utterance also holds the silence
        around them). None for an empty text."""
        if not hyp.text:
            return None
        words = hyp.shifted(self.offset).clipped(self.end).words  # on the stream's clock, within the utterance
        start, end = (words[0].start, words[-1].end) if words else (self.offset, self.end)
        return Event("final", hyp.text, start, end, words, self.channel, self.leg)


class StreamBase:
    """The caller's side of a stream, the same for the torch engine (gruasr.streaming.Stream) and the ONNX one
    (gruasr.runtime.OnnxStream): accept / feed / finish / events / take / seconds, and the checks of what is fed.
    A subclass keeps `recognizer` (with `advance(streams)`, `sample_rate` and `offline.decode(log_probs)`),
    `_events`, `_received` and `finished`, and implements `_feed(samples, last)`."""

    recognizer: Any
    finished: bool
    channel: int
    leg: str | None
    _events: list[Event | PendingFinal]
    _received: int  # samples at the model's rate
    #: with a second pass (the recognizer's `second_pass`): the input at the model's rate from sample _heard_start
    #: on, i.e. the open utterance's audio (bounded by the endpointer's max_utterance), as the chunks it came in
    _heard: list[np.ndarray]
    _heard_start: int

    def accept(self, samples: np.ndarray | Sequence[float]) -> list[Event]:
        """Add audio (float in [-1, 1], mono, at the declared rate); returns the partial and final results it
        produced (often none)."""
        self.feed(samples)
        self.recognizer.advance([self])
        return self.events()

    def feed(self, samples: np.ndarray | Sequence[float], last: bool = False) -> None:
        """Add audio without running the network: for callers that batch many streams with the recognizer's
        `advance(streams)` and then collect each one's `events()` (or `take()`). `last=True` ends the stream: the
        next advance ends its last utterance, as finish() does."""
        self._feed(self._check(samples), last=last)

    def finish(self) -> list[Event]:
        """End of the stream: the last utterance's final result (if it has words). The stream is then done."""
        if not self.finished:
            self._feed(np.zeros(0, dtype=np.float32), last=True)
            self.recognizer.advance([self])
        return self.events()

    def events(self) -> list[Event]:
        """The events not yet returned (for callers that drive `advance` themselves); finals are decoded here, in
        the caller's thread, by the recognizer's decoder."""
        out: list[Event] = []
        rec = self.recognizer
        for item in self.take():
            event = item if isinstance(item, Event) else item.event(item.decoded(rec.finals, rec.second_pass))
            if event is not None:
                out.append(event)
        return out

    def take(self) -> list[Event | PendingFinal]:
        """The events not yet returned, in order, with each final still to be decoded (a PendingFinal): for
        callers that decode finals elsewhere (a server's pool)."""
        out, self._events = self._events, []
        return out

    @property
    def seconds(self) -> float:
        """Audio accepted so far, in seconds."""
        return self._received / self.recognizer.sample_rate

    def _check(self, samples: np.ndarray | Sequence[float]) -> np.ndarray:
        if self.finished:
            raise ConfigError("accept() after finish(): make a new stream")
        x = np.asarray(samples)
        if x.ndim != 1:
            raise ShapeError(f"a stream takes mono samples (n,), got shape {x.shape}")
        if x.dtype.kind not in "fiu":
            raise ShapeError(f"samples must be numbers, got dtype {x.dtype}")
        x = x.astype(np.float32, copy=False)
        if not np.isfinite(x).all():
            raise ShapeError("samples hold NaN or infinite values")
        return x

    def _feed(self, samples: np.ndarray, last: bool) -> None:
        raise NotImplementedError

    def _framing(self) -> tuple[int, int]:
        """(window shift, window size) of the model's frames, in samples (frame f starts at sample f * shift)."""
        raise NotImplementedError

    def _hear(self, samples: np.ndarray) -> None:
        """Keep the input (at the model's rate) for the second pass, when the recognizer has one."""
        if self.recognizer.second_pass is not None and samples.shape[0]:
            self._heard.append(samples)

    def _ended(self, first: int, end: int, log_probs: Any, wanted: bool) -> PendingFinal | None:
        """An ended utterance (frames first..end-1) -> its PendingFinal when `wanted` (its final is kept), else
        None. The final is decoded from the streaming model's `log_probs`, or with a second pass from that model's
        on the utterance's audio (up to the input's last sample: the end silence is not audio), computed here or,
        with the recognizer's `defer_second_pass`, by whoever decodes the final (PendingFinal.scores). Call it at
        every utterance end: it forgets the audio before frame `end`."""
        rec = self.recognizer
        # the last one ends with the input, not with the silence heard after it (Transcriber.end_silence)
        offset, seconds = first * rec.frame_seconds, min(end * rec.frame_seconds, self.seconds)
        second = rec.second_pass
        if second is None:
            return PendingFinal(log_probs, offset, seconds, self.channel, self.leg) if wanted else None
        shift, size = self._framing()
        heard = np.concatenate(self._heard) if self._heard else np.zeros(0, dtype=np.float32)
        begin = first * shift - self._heard_start
        audio = heard[begin : max(begin, end * shift + size - shift - self._heard_start)]
        drop = min(end * shift - self._heard_start, heard.shape[0])
        self._heard, self._heard_start = [heard[drop:].copy()], self._heard_start + drop
        if not wanted:
            return None
        lo, hi = second.heard_span(audio)  # as offline
        audio, offset = audio[lo:hi], offset + lo / rec.sample_rate
        if audio.shape[0] < size:  # not one frame: nothing to hear
            return PendingFinal(log_probs[:0], offset, seconds, self.channel, self.leg)
        # the vote of a second pass rescored by the stream's own model: the stream's outputs, computed already
        vote = as_votes(log_probs) if rec.votes_itself else None
        pending = PendingFinal(log_probs[:0], offset, seconds, self.channel, self.leg, audio, vote)
        if rec.defer_second_pass:
            return pending
        return replace(pending, log_probs=pending.scores(second), vote=pending.votes(second), audio=None)
