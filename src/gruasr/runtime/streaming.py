"""Streaming recognition on ONNX Runtime: one shared `OnnxStreamingRecognizer`, one `OnnxStream` per call leg,
the same interface and events as gruasr.streaming (accept / feed / finish / events / take, `advance(streams)`).

    asr = OnnxStreamingRecognizer.load("exports/telephone-streaming")
    leg = asr.stream(8000, channel=0, leg="A")
    events = leg.accept(chunk) + leg.finish()

Each stream cuts its frames as soon as they are complete (those of the whole signal: snip_edges framing) and
`advance` computes the filterbank of every stream's new frames in one NumpyFbank call (rows are independent, so
this equals stream by stream); a stream's state between chunks is what streaming.onnx takes and gives back: the
last 2 normalized frames and the last 2 outputs of the first convolution (zeros at an utterance's start, which is
exactly the convolutions' left padding) and the GRU state. Frames go through in groups of 4 (one output step
each); an utterance's last group may be shorter. `advance` runs the steps of every stream with frames ready as one
batch: one session run per round, whatever the number of streams. Utterance ends, partials and finals follow
gruasr.streaming exactly, so for the same audio the events are those of the torch engine up to float rounding.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gruasr.errors import ConfigError
from gruasr.events import Event, PendingFinal, StreamBase
from gruasr.features.kaldi import INT16_SCALE
from gruasr.integrity import TrustedKey
from gruasr.runtime.offline import OnnxRecognizer
from gruasr.transcription import DecodeOptions, Transcriber, check_second_pass, votes_itself
from gruasr.vad import EndpointConfig, Endpointer


@dataclass
class _Utterance:
    start: int  # first frame (global index)
    log_probs: list[np.ndarray] = field(default_factory=list)
    partial: str = ""
    tokens: list[int] = field(default_factory=list)  # the greedy best path so far (repeats merged, no blanks)
    last: int = -1


class OnnxStream(StreamBase):
    """One call leg; see gruasr.streaming.Stream, whose interface this is."""

    def __init__(
        self,
        recognizer: OnnxStreamingRecognizer,
        sample_rate: int,
        leg: str | None = None,
        record: bool = False,
        channel: int = 0,
    ) -> None:
        if not isinstance(sample_rate, int) or sample_rate < 1000:
            raise ConfigError(f"sample_rate must be an int >= 1000 Hz, got {sample_rate!r}")
        if isinstance(channel, bool) or not isinstance(channel, int) or channel < 0:
            raise ConfigError(f"channel must be an int >= 0, got {channel!r}")
        self.recognizer = recognizer
        self.sample_rate = sample_rate
        self.leg = leg
        self.channel = channel
        model = recognizer.model
        self._resampler = None
        if sample_rate != model.sample_rate:
            import soxr

            self._resampler = soxr.ResampleStream(sample_rate, model.sample_rate, 1, dtype="float32", quality="HQ")
        self._samples = np.zeros(0, dtype=np.float32)  # int16 scale, from sample _offset: what frames to come need
        self._offset = 0
        self._frames = 0  # frames cut so far (global index of the next one)
        self._raw: list[np.ndarray] = []  # frames cut (k, L), filterbank not computed yet
        self._endpointer = Endpointer(recognizer.endpoint, model.sample_rate)
        self._pending = np.zeros((0, model.dim), dtype=np.float32)  # frames not yet through the network
        self._pending_start = 0  # global index of _pending[0]
        self._utterance = _Utterance(0)
        self._reset_state()
        self._cuts: deque[tuple[int, bool]] = deque()
        self._last_cut = 0
        self._received = 0
        self._heard: list[np.ndarray] = []  # for a second pass (StreamBase)
        self._heard_start = 0
        self._events: list[Event | PendingFinal] = []
        self.finished = False
        self.recorded: list[tuple[int, int, np.ndarray]] | None = [] if record else None

    def _reset_state(self) -> None:
        model = self.recognizer.model
        self._context1 = np.zeros((model.context, model.dim), dtype=np.float32)
        self._context2 = np.zeros((model.context, model.channels), dtype=np.float32)
        self._state = np.zeros((model.layers, model.hidden), dtype=np.float32)

    # -- the engine's side (the caller's side is gruasr.events.StreamBase) ----------------------------------

    def _feed(self, samples: np.ndarray, last: bool) -> None:
        model = self.recognizer.model
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=last)
        self._received += samples.shape[0]
        self._hear(samples)
        self._cut_frames(samples)
        for cut, voiced in self._endpointer.accept(samples):
            ready = self.recognizer.num_frames(cut)
            sub = model.subsampling
            frame = self._last_cut + (ready - self._last_cut) // sub * sub
            if frame > self._last_cut:
                self._cuts.append((frame, voiced))
                self._last_cut = frame
        if last:
            silence = self.recognizer.offline.end_silence  # heard after the last utterance, as offline
            if silence and self._frames > self._last_cut:
                self._cut_frames(np.zeros(silence, dtype=np.float32))
            end = self._frames
            if end > self._last_cut or not self._cuts:
                voiced = self._endpointer.in_speech or not self.recognizer.endpoint.enabled
                self._cuts.append((end, voiced))
            self._last_cut = end
            self.finished = True

    def _framing(self) -> tuple[int, int]:
        return self.recognizer.window_shift, self.recognizer.window_size

    # -- the recognizer's side ----------------------------------------------------------------------------

    def _cut_frames(self, samples: np.ndarray) -> None:
        """Cut the frames the new samples complete (snip_edges: frame i is samples i*shift .. i*shift+L-1) and keep
        only the samples later frames need: memory stays bounded."""
        rec = self.recognizer
        if samples.shape[0]:
            self._samples = np.concatenate([self._samples, samples * np.float32(INT16_SCALE)])
        ready = rec.num_frames(self._offset + self._samples.shape[0])  # samples cut so far, silence heard included
        if ready > self._frames:
            starts = np.arange(self._frames, ready) * rec.window_shift - self._offset
            self._raw.append(self._samples[starts[:, None] + rec.window_offsets])
            self._frames = ready
            drop = ready * rec.window_shift - self._offset
            self._samples = self._samples[drop:]
            self._offset += drop

    def _add_features(self, new: np.ndarray) -> None:
        self._pending = np.concatenate([self._pending, new]) if self._pending.shape[0] else new

    def _ready(self) -> int:
        """Frames that go through the network now: whole groups of 4, up to the next cut (all of them there)."""
        available = self._pending.shape[0]
        sub = self.recognizer.model.subsampling
        if self._cuts:
            to_cut = self._cuts[0][0] - self._pending_start
            return to_cut if available >= to_cut else available // sub * sub
        return available // sub * sub

    def _at_cut(self) -> bool:
        return bool(self._cuts) and self._cuts[0][0] == self._pending_start

    def _end_utterance(self) -> None:
        cut, voiced = self._cuts.popleft()
        utt = self._utterance
        rec = self.recognizer
        keep = voiced or not rec.endpoint.drop_unvoiced
        vocab = len(rec.model.tokens)
        log_probs = np.concatenate(utt.log_probs) if utt.log_probs else np.zeros((0, vocab), dtype=np.float32)
        if self.recorded is not None:
            self.recorded.append((utt.start, cut, log_probs))
        # an utterance without speech that is dropped is not decoded (nor heard by a second pass) either
        pending = self._ended(utt.start, cut, log_probs, wanted=bool(utt.log_probs) and keep)
        if pending is not None:
            self._events.append(pending)
        self._utterance = _Utterance(cut)
        self._reset_state()

    def _partial(self) -> None:
        utt = self._utterance
        if not utt.log_probs:
            return
        rec = self.recognizer
        text = " ".join(rec.model.tokens.decode(utt.tokens).split())
        if text and text != utt.partial:
            utt.partial = text
            start, end = utt.start * rec.frame_seconds, self._pending_start * rec.frame_seconds
            self._events.append(Event("partial", text, start, end, channel=self.channel, leg=self.leg))


class OnnxStreamingRecognizer:
    """The shared model of many streams on ONNX Runtime (streaming.onnx); see the module docstring. `offline` is
    the OnnxRecognizer that decodes finals (as StreamingRecognizer.offline)."""

    engine = "onnx"

    def __init__(
        self, offline: OnnxRecognizer, endpoint: EndpointConfig | None = None, second_pass: Transcriber | None = None
    ) -> None:
        model = offline.bundle
        if not model.features.snip_edges:
            raise ConfigError(f"{model.path}: streaming in the runtime needs snip_edges framing (the model has not)")
        if not model.has_streaming:
            raise ConfigError(
                f"{model.path}: no streaming.onnx: streaming needs an exported unidirectional model "
                "(gruasr model export --onnx telephone-streaming)"
            )
        self.offline = offline
        self.model = model
        session = model.streaming  # the whole-utterance graph is not loaded: the finals come from these steps
        if session is None:
            raise ConfigError(f"{model.path}: no streaming.onnx")
        self._session = session
        self.endpoint = endpoint or EndpointConfig()
        self.frame_seconds = model.frame_seconds
        self.step_seconds = model.step_seconds
        # framing as plain ints (FbankConfig computes them in float32 on every access, as Kaldi does)
        self.window_size, self.window_shift = model.features.window_size, model.features.window_shift
        self.window_offsets = np.arange(self.window_size)
        self._lock = threading.Lock()
        self.batches = 0
        #: None, or the recognizer that decodes each final from its utterance's audio (StreamingRecognizer's)
        self.second_pass = check_second_pass(offline, second_pass)
        self.votes_itself = votes_itself(offline, self.second_pass)  # as StreamingRecognizer's
        self.defer_second_pass = False  # as StreamingRecognizer's

    @property
    def finals(self) -> Transcriber:
        """The recognizer whose decoder makes the finals: the second pass, else `offline`."""
        return self.second_pass or self.offline

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        endpoint: EndpointConfig | None = None,
        lm: str | os.PathLike[str] | None = None,
        lexicon: str | os.PathLike[str] | None = None,
        options: DecodeOptions | None = None,
        *,
        trusted_keys: Sequence[TrustedKey] | None = None,
        threads: int = 1,
        second_pass: Transcriber | None = None,
    ) -> OnnxStreamingRecognizer:
        """A streaming recognizer from an exported unidirectional model folder (finals decoded by its LM, or by
        a `second_pass`)."""
        offline = OnnxRecognizer.load(Path(path), lm, lexicon, options, trusted_keys=trusted_keys, threads=threads)
        return cls(offline, endpoint, second_pass)

    @property
    def sample_rate(self) -> int:
        return self.model.sample_rate

    def num_frames(self, num_samples: int) -> int:
        """Frames in the first num_samples samples (snip_edges framing, which streaming requires)."""
        return 0 if num_samples < self.window_size else 1 + (num_samples - self.window_size) // self.window_shift

    def stream(
        self, sample_rate: int | None = None, leg: str | None = None, record: bool = False, channel: int = 0
    ) -> OnnxStream:
        return OnnxStream(self, self.sample_rate if sample_rate is None else sample_rate, leg, record, channel)

    def advance(self, streams: Sequence[OnnxStream]) -> None:
        """Run every stream's ready frames through streaming.onnx, all streams as one batch per round."""
        with self._lock:
            todo = [s for s in streams if s._raw]
            if todo:  # the filterbank of every stream's new frames in one call
                raw = [np.concatenate(s._raw) for s in todo]
                features = self.model.front_end.compute_frames(np.concatenate(raw))
                for s, new in zip(todo, np.split(features, np.cumsum([r.shape[0] for r in raw])[:-1]), strict=True):
                    s._add_features(new)
                    s._raw = []
            touched: set[int] = set()
            while True:
                for s in streams:
                    while s._at_cut():
                        s._end_utterance()
                work = [(s, n) for s in streams if (n := s._ready()) > 0]
                if not work:
                    break
                self._step(work)
                touched.update(id(s) for s, _ in work)
            for s in streams:
                if id(s) in touched:
                    s._partial()

    def _step(self, work: list[tuple[OnnxStream, int]]) -> None:
        model = self.model
        sub = model.subsampling
        width = -(-max(n for _, n in work) // sub) * sub
        batch = len(work)
        fbank = np.zeros((batch, width, model.dim), dtype=np.float32)
        for i, (s, n) in enumerate(work):
            fbank[i, :n] = s._pending[:n]
        inputs = {
            "fbank": fbank,
            "lengths": np.array([n for _, n in work], dtype=np.int64),
            "context1": np.stack([s._context1 for s, _ in work]),
            "context2": np.stack([s._context2 for s, _ in work]),
            "state": np.stack([s._state for s, _ in work], axis=1),
        }
        log_probs, steps, context1, context2, state = self._session.run(None, inputs)
        best = log_probs.argmax(axis=-1)  # (B, T') the greedy path of every stream's new steps
        for i, (s, n) in enumerate(work):
            count = int(steps[i])
            utt = s._utterance
            utt.log_probs.append(log_probs[i, :count].copy())
            for token in best[i, :count].tolist():
                if token != 0 and token != utt.last:
                    utt.tokens.append(token)
                utt.last = token
            s._context1, s._context2, s._state = context1[i], context2[i], state[:, i]
            s._pending = s._pending[n:]
            s._pending_start += n
        self.batches += 1
