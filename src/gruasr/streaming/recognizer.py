"""Streaming recognition of live calls: one shared `StreamingRecognizer`, one `Stream` per call leg.

    from gruasr.streaming import StreamingRecognizer
    asr = StreamingRecognizer.load()                 # the bundled streaming model, device="cpu"
    leg = asr.stream(8000, channel=0, leg="A")
    events = leg.accept(chunk) + leg.finish()        # Event(type, text, start, end, words, channel, leg)

A stream takes audio in chunks of any size. Its samples go through the streaming front end (exactly the offline
frames), global CMVN, and the model's two causal stride-2 convolutions, which need 8 frames of left context to
give exactly their offline outputs on 4 new frames; the recurrent state carries everything else. So, for the same
utterance, the streamed log-probabilities equal the offline ones (to float rounding) whatever the chunk sizes.

Utterances end where the endpointer says (trailing silence, maximum length), cut on a 4-frame (40 ms) boundary;
each then gets its final result from the same decoder as offline recognition (greedy, or beam search with the
LM), and the stream starts the next utterance from a fresh state, exactly as offline recognition of that segment
would. In between, partial results (greedy) come whenever the text grows. Memory per stream is bounded by the
longest utterance (`max_utterance`), whatever the length of the call.

Finals are decoded when they are collected: `Stream.events()` decodes them in the caller's thread, and a server
that must not stall other calls on one slow beam search takes them undecoded with `Stream.take()` and decodes
each `PendingFinal` in a pool (`PendingFinal.event(hypothesis)` builds the same Event).

Two passes: with `second_pass` (e.g. the bidirectional default model), the stream keeps the open utterance's
audio and each final is that model's recognition of it, decoded by its decoder; the partials stay the streaming
model's. A final then costs one forward pass of the second model over its utterance.

Many calls at once: `StreamingRecognizer.advance(streams)` runs the recurrent steps of every stream that has audio
ready as one batch (Deep Speech 2's batch dispatch); results equal unbatched ones. A recognizer may be shared
between threads (a lock guards the model); a Stream belongs to one thread. The filterbank, CMVN, the streams'
pending frames and recurrent state live on the model's device; log-probabilities come back to the CPU for
decoding.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from gruasr.bundle import PRETRAINED
from gruasr.errors import ConfigError
from gruasr.events import Event, PendingFinal, StreamBase
from gruasr.features.cmvn import leg_normalize
from gruasr.features.framing import num_frames
from gruasr.features.streaming import StreamingFbank
from gruasr.integrity import TrustedKey
from gruasr.models.ctc_model import SUBSAMPLING
from gruasr.recognizer import DecodeOptions, OfflineRecognizer
from gruasr.transcription import Transcriber, check_second_pass, votes_itself
from gruasr.vad import EndpointConfig, Endpointer

#: frames of left context the two causal stride-2 convolutions need to give exact outputs on a new group
CONV_CONTEXT = 8
BUNDLED_STREAMING = PRETRAINED / "telephone-streaming"


def bundled_streaming_model() -> Path:
    """The bundled streaming model's folder; a clear error when it is missing (a trimmed install)."""
    if not (BUNDLED_STREAMING / "model.json").is_file():
        raise ConfigError(
            f"the bundled streaming model is missing from {BUNDLED_STREAMING} (`make model-streaming` makes it): "
            "give a unidirectional model with --model"
        )
    return BUNDLED_STREAMING


@dataclass
class _Utterance:
    start: int  # first frame (global index)
    log_probs: list[Tensor] = field(default_factory=list)
    partial: str = ""
    # the greedy best path so far, repeats merged and blanks dropped (partials grow it step by step, the same
    # text greedy_decode gives on the whole utterance)
    tokens: list[int] = field(default_factory=list)
    last: int = -1  # the best token of the last step


class Stream(StreamBase):
    """One call leg. Make it with `StreamingRecognizer.stream()`; feed it with `accept(samples)` (float in [-1, 1],
    mono, at the declared rate, any chunk size) and end it with `finish()`; both return the new events."""

    def __init__(
        self,
        recognizer: StreamingRecognizer,
        sample_rate: int,
        leg: str | None = None,
        record: bool = False,
        channel: int = 0,
    ):
        if not isinstance(sample_rate, int) or sample_rate < 1000:
            raise ConfigError(f"sample_rate must be an int >= 1000 Hz, got {sample_rate!r}")
        if isinstance(channel, bool) or not isinstance(channel, int) or channel < 0:
            raise ConfigError(f"channel must be an int >= 0, got {channel!r}")
        self.recognizer = recognizer
        self.sample_rate = sample_rate
        self.leg = leg
        self.channel = channel
        rate = recognizer.sample_rate
        self._resampler = None
        if sample_rate != rate:
            import soxr

            self._resampler = soxr.ResampleStream(sample_rate, rate, 1, dtype="float32", quality="HQ")
        self._front = StreamingFbank(recognizer.offline.fbank)
        self._endpointer = Endpointer(recognizer.endpoint, rate)
        dim, device = recognizer.offline.bundle.features.dim, recognizer.device
        self._raw: list[Tensor] = []  # frames cut from the samples, features not yet computed
        self._pending = torch.zeros(0, dim, device=device)  # normalized frames not yet through the convolutions
        #: the leg's normalized features summed so far, and their count (StreamingRecognizer.leg_cmvn)
        self._leg_sum = torch.zeros(dim, device=device)
        self._leg_count = 0
        self._pending_start = 0  # global index of _pending[0]
        self._context = torch.zeros(0, dim, device=device)  # the utterance's last frames through the convolutions
        self._state: Tensor | tuple[Tensor, ...] | None = None
        self._utterance = _Utterance(0)
        # frames where utterances end (4-frame aligned but the last), and whether the VAD heard speech before
        self._cuts: deque[tuple[int, bool]] = deque()
        self._last_cut = 0
        self._received = 0  # samples at the model rate
        self._heard: list[np.ndarray] = []  # for a second pass (StreamBase)
        self._heard_start = 0
        self._events: list[Event | PendingFinal] = []
        self.finished = False
        #: with record=True: (first frame, end frame, log-probs (T', V)) of every ended utterance (for tests and
        #: analysis; it grows with the stream)
        self.recorded: list[tuple[int, int, Tensor]] | None = [] if record else None

    # -- the engine's side (the caller's side is gruasr.events.StreamBase) ----------------------------------

    def _feed(self, samples: np.ndarray, last: bool) -> None:
        if self._resampler is not None:
            samples = self._resampler.resample_chunk(samples, last=last)
        self._received += samples.shape[0]
        self._hear(samples)
        self._raw.append(self._front.cut(samples))
        config = self.recognizer.offline.bundle.features
        for cut, voiced in self._endpointer.accept(samples):
            ready = num_frames(cut, config)
            frame = self._last_cut + (ready - self._last_cut) // SUBSAMPLING * SUBSAMPLING
            if frame > self._last_cut:
                self._cuts.append((frame, voiced))
                self._last_cut = frame
        if last:
            silence = self.recognizer.offline.end_silence  # heard after the last utterance, as offline
            if silence and num_frames(self._received, config) > self._last_cut:
                self._raw.append(self._front.cut(np.zeros(silence, dtype=np.float32)))
            self._raw.append(self._front.cut_final())
            end = self._front.num_frames
            if end > self._last_cut or not self._cuts:
                voiced = self._endpointer.in_speech or not self.recognizer.endpoint.enabled
                self._cuts.append((end, voiced))
            self._last_cut = end
            self.finished = True

    def _framing(self) -> tuple[int, int]:
        config = self.recognizer.offline.bundle.features
        return config.window_shift, config.window_size

    # -- the recognizer's side ---------------------------------------------------------------------------

    def _leg_normalize(self, new: Tensor, prior: int) -> Tensor:
        """new (T, F) globally normalized frames minus the leg's running mean (StreamingRecognizer.leg_cmvn)."""
        out, self._leg_sum, self._leg_count = leg_normalize(new, prior, self._leg_sum, self._leg_count)
        return out

    def _ready(self) -> int:
        """Frames that can go through the convolutions now (up to the next cut)."""
        available = self._pending.shape[0]
        if self._cuts:
            return min(self._cuts[0][0] - self._pending_start, available)
        return available // SUBSAMPLING * SUBSAMPLING

    def _at_cut(self) -> bool:
        return bool(self._cuts) and self._cuts[0][0] == self._pending_start

    def _window(self, count: int) -> tuple[Tensor, int]:
        """Take `count` ready frames: (the convolutions' input window: context + new frames, how many outputs
        of the window are new: ceil(count / 4), its last ones)."""
        window = torch.cat([self._context, self._pending[:count]])
        self._context = window[-CONV_CONTEXT:]
        self._pending = self._pending[count:]
        self._pending_start += count
        return window, -(-count // SUBSAMPLING)

    def _end_utterance(self) -> None:
        cut, voiced = self._cuts.popleft()
        utt = self._utterance
        rec = self.recognizer
        keep = voiced or not rec.endpoint.drop_unvoiced
        log_probs = torch.cat(utt.log_probs) if utt.log_probs else torch.zeros(0, rec.model.config.vocab_size)
        if self.recorded is not None:
            self.recorded.append((utt.start, cut, log_probs))
        # an utterance without speech that is dropped is not decoded (nor heard by a second pass) either
        pending = self._ended(utt.start, cut, log_probs, wanted=bool(utt.log_probs) and keep)
        if pending is not None:
            self._events.append(pending)
        self._utterance = _Utterance(cut)
        self._state = None
        self._context = self._context[:0]

    def _partial(self) -> None:
        utt = self._utterance
        if not utt.log_probs:
            return
        rec = self.recognizer
        text = " ".join(rec.offline.bundle.tokens.decode(utt.tokens).split())
        if text and text != utt.partial:
            utt.partial = text
            start = utt.start * rec.frame_seconds
            end = self._pending_start * rec.frame_seconds
            self._events.append(Event("partial", text, start, end, channel=self.channel, leg=self.leg))


class StreamingRecognizer:
    """The shared model of many streams; see the module docstring. Make one with
    `StreamingRecognizer.load(path, device=...)`, or wrap an OfflineRecognizer of a unidirectional model."""

    def __init__(
        self, offline: OfflineRecognizer, endpoint: EndpointConfig | None = None, second_pass: Transcriber | None = None
    ) -> None:
        model = offline.model
        if model.config.bidirectional:
            raise ConfigError(
                "streaming needs a unidirectional model (model.bidirectional = false); this one is bidirectional"
            )
        self.offline = offline
        self.model = model.eval()
        self.endpoint = endpoint or EndpointConfig()
        self.frame_seconds = offline.bundle.frame_seconds
        self.step_seconds = offline.bundle.step_seconds
        self._lock = threading.Lock()
        self.batches = 0  # batched recurrent calls so far (for benchmarks)
        #: per-leg mean normalization at test time (0: the model's own, cmvn.leg_prior, which is 0 unless it was
        #: trained with it): each frame, after the global CMVN, minus the mean of its leg's frames so far shrunk
        #: towards the global mean by this many frames of prior, (sum of frames 1..t) / (prior + t): causal, no
        #: lookahead, carried across the leg's utterances (benchmarks/leg_cmvn.py measures it)
        self.leg_cmvn = 0
        #: None, or the recognizer (either engine, any model at this rate) that decodes each final from the ended
        #: utterance's audio: the streaming model gives the partials, e.g. the bidirectional default model the
        #: finals (two passes; docs/streaming.md, "Two passes")
        self.second_pass = check_second_pass(offline, second_pass)
        #: the second pass is rescored by this stream's own model: its outputs are each final's vote
        self.votes_itself = votes_itself(offline, self.second_pass)
        #: True: a final's PendingFinal carries its utterance's audio and the second pass runs where the final is
        #: decoded (PendingFinal.scores; the server's decoding threads), not in `advance`
        self.defer_second_pass = False

    @property
    def finals(self) -> Transcriber:
        """The recognizer whose decoder makes the finals: the second pass, else `offline`."""
        return self.second_pass or self.offline

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        device: str | torch.device = "cpu",
        endpoint: EndpointConfig | None = None,
        lm: str | os.PathLike[str] | None = None,
        lexicon: str | os.PathLike[str] | None = None,
        options: DecodeOptions | None = None,
        *,
        trusted_keys: Sequence[TrustedKey] | None = None,
        second_pass: Transcriber | None = None,
    ) -> StreamingRecognizer:
        """A streaming recognizer from a unidirectional model folder (None: the bundled streaming model) on
        `device`; LM, lexicon, decoding options and `trusted_keys` (the folder must be signed by one of them) as
        OfflineRecognizer.load (they decode the finals, unless a `second_pass` does)."""
        folder = Path(path) if path is not None else bundled_streaming_model()
        offline = OfflineRecognizer.load(folder, device, lm, lexicon, options, trusted_keys=trusted_keys)
        return cls(offline, endpoint, second_pass)

    @property
    def sample_rate(self) -> int:
        return self.offline.sample_rate

    @property
    def device(self) -> torch.device:
        """Where the model, filterbank, CMVN and the streams' state are."""
        return self.offline.device

    def stream(
        self, sample_rate: int | None = None, leg: str | None = None, record: bool = False, channel: int = 0
    ) -> Stream:
        """A new stream at `sample_rate` (default: the model's) for the call leg `channel` (labelled `leg`);
        see Stream."""
        return Stream(self, self.sample_rate if sample_rate is None else sample_rate, leg, record, channel)

    def advance(self, streams: Sequence[Stream]) -> None:
        """Run every stream's ready audio through the network, the recurrent steps of all streams as one batch
        per round (a round ends at the next utterance end of each stream); emit their events."""
        with self._lock, torch.inference_mode():
            self._features(streams)
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

    def _features(self, streams: Sequence[Stream]) -> None:
        """The features of every stream's new frames in one call (each frame's features depend on that frame
        alone, so this equals computing them stream by stream), normalized onto each stream's pending frames."""
        todo = [s for s in streams if s._raw]
        if not todo:
            return
        raw = [torch.cat(s._raw) for s in todo]
        cmvn = self.offline.bundle.cmvn
        features = cmvn.normalize(self.offline.fbank.compute_frames(torch.cat(raw)))
        prior = self.leg_cmvn or cmvn.leg_prior
        for s, new in zip(todo, features.split([r.shape[0] for r in raw]), strict=True):
            if prior > 0:
                new = s._leg_normalize(new, prior)
            s._pending = torch.cat([s._pending, new])
            s._raw = []

    def _convolve(self, work: list[tuple[Stream, int]]) -> tuple[Tensor, Tensor]:
        """The causal convolutions' new outputs of every stream's window, as one padded batch (B, T', C) and
        lengths (B,): only the outputs of the new frames are computed, each layer one matrix product for all
        streams (`Subsampling.last_outputs`)."""
        xs = self.model.subsampling.last_outputs([s._window(n) for s, n in work])
        return pad_sequence(xs, batch_first=True), torch.tensor([x.shape[0] for x in xs])  # lengths on the CPU

    def _step(self, work: list[tuple[Stream, int]]) -> None:
        model = self.model
        encoder = model.encoder
        batch, lengths = self._convolve(work)
        state = self._stack([s._state for s, _ in work])
        y, _, state = encoder(batch, lengths if len(work) > 1 else None, state)
        log_probs = model.output(y).log_softmax(-1)
        best = log_probs.max(dim=-1).indices.tolist()  # (B, T') the greedy path of every stream's new steps
        for i, (s, _) in enumerate(work):
            n = int(lengths[i])
            utt = s._utterance
            utt.log_probs.append(log_probs[i, :n].to("cpu", copy=True))
            for token in best[i][:n]:
                if token != 0 and token != utt.last:
                    utt.tokens.append(token)
                utt.last = token
            s._state = (
                tuple(p[:, i : i + 1].clone() for p in state)
                if isinstance(state, tuple)
                else state[:, i : i + 1].clone()
            )
        self.batches += 1

    def _stack(self, states: list[Tensor | tuple[Tensor, ...] | None]) -> Tensor | tuple[Tensor, ...]:
        encoder = self.model.encoder
        shape = (encoder.num_layers * encoder.num_directions, 1, encoder.hidden_size)
        parts = encoder.state_parts
        filled = [
            (s if isinstance(s, tuple) else (s,))
            if s is not None
            else tuple(torch.zeros(shape, device=self.device) for _ in range(parts))
            for s in states
        ]
        stacked = tuple(torch.cat([f[k] for f in filled], dim=1) for k in range(parts))
        return stacked if parts > 1 else stacked[0]
