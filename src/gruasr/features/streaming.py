"""Streaming filterbank: samples arrive in chunks of any size, frames leave as soon as they are complete.

The frames are those of the offline `Fbank` (or `Mfcc`) on the whole signal, whatever the chunking: a frame is
cut from the same samples, at the same positions, by the same code (`extract_frames`), and each frame's features
depend on that frame alone. Only the samples that frames not yet produced still need are kept, so memory is
bounded however long the call: one frame plus the last chunk with snip_edges, two frames and a shift plus the
last chunk without (Kaldi's OnlineGenericBaseFeature keeps its remainder the same way).

    stream = StreamingFbank(FbankConfig())
    for chunk in chunks:            # any sizes, 0 included
        feats = stream.accept(chunk)  # (k, dim), k >= 0 new frames
    feats = stream.finalize()       # the frames that needed the end of the signal; then accept() is refused

snip_edges=True (the setting for streaming): a frame is complete once its last sample has arrived, and finalize()
never adds a frame (the trailing partial frame is dropped, as offline). snip_edges=False is supported too:
frames are centred and the signal is reflected at both ends, so the first frames come out once half a frame
plus a little has arrived, and the last one or two frames (which reflect the end of the signal) only at
finalize(), when the end is known. With dither > 0 the frames are statistically, not bitwise, equal to offline.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gruasr.errors import ConfigError
from gruasr.features.config import FbankConfig
from gruasr.features.fbank import INT16_SCALE, Fbank, Mfcc
from gruasr.features.framing import as_samples, extract_frames, first_sample_of_frame, frames_ready, num_frames


class StreamingFbank:
    """Chunked front end giving exactly the offline frames; see the module docstring.

    `features` is the Fbank or Mfcc that computes the frames (shared between streams; it holds no stream state),
    or a FbankConfig for a new Fbank. The stream lives on the features' device; `accept` takes numpy or torch
    samples (n,) float in [-1, 1] there and returns (k, dim) float32 frames there."""

    def __init__(self, features: Fbank | Mfcc | FbankConfig | None = None, generator: torch.Generator | None = None):
        if features is None or isinstance(features, FbankConfig):
            features = Fbank(features)
        self.features = features
        self.config = features.frame_config
        features.check_generator(generator)
        self.generator = generator
        self.reset()

    def reset(self) -> None:
        """Forget everything: the next sample is sample 0 of a new signal."""
        self._buffer = torch.zeros(0, device=self.features.device)  # samples offset.. (int16 scale)
        self._offset = 0  # index of the buffer's first sample in the whole signal
        self._received = 0  # samples accepted so far
        self._emitted = 0  # frames returned so far
        self._finished = False

    @property
    def num_samples(self) -> int:
        """Samples accepted since the start (or the last reset)."""
        return self._received

    @property
    def num_frames(self) -> int:
        """Frames returned since the start (or the last reset)."""
        return self._emitted

    @property
    def buffered_samples(self) -> int:
        """Samples held for frames to come (bounded: see the module docstring)."""
        return int(self._buffer.shape[0])

    @property
    def finished(self) -> bool:
        return self._finished

    def accept(self, samples: Tensor | np.ndarray) -> Tensor:
        """Append samples (n,) float in [-1, 1]; return the frames (k, dim) completed by them (k may be 0)."""
        return self._compute(self.cut(samples))

    def finalize(self) -> Tensor:
        """Declare the end of the signal; return the frames (k, dim) that needed it (none with snip_edges).
        After this the stream holds num_frames(num_samples) frames in all, as offline; accept() is refused."""
        return self._compute(self.cut_final())

    flush = finalize

    def cut(self, samples: Tensor | np.ndarray) -> Tensor:
        """`accept` without the arithmetic: the completed frames as cut samples (k, window) on the int16 scale.
        `features.compute_frames` of them gives accept's result; as every frame's features depend on that frame
        alone, the frames of many streams can be computed in one call (what batch dispatch does)."""
        if self._finished:
            raise ConfigError("accept() after finalize(): call reset() to start a new signal")
        x = as_samples(samples, self.features.device) * INT16_SCALE
        if x.shape[0]:
            self._buffer = torch.cat([self._buffer, x])
            self._received += x.shape[0]
        return self._cut(frames_ready(self._received, self.config))

    def cut_final(self) -> Tensor:
        """`finalize` without the arithmetic (see `cut`)."""
        if self._finished:
            return self._buffer.new_zeros(0, self.config.window_size)
        self._finished = True
        return self._cut(num_frames(self._received, self.config))

    def _compute(self, frames: Tensor) -> Tensor:
        if frames.shape[0] == 0:
            return frames.new_zeros(0, self.features.dim)
        return self.features.compute_frames(frames, self.generator)

    def _cut(self, ready: int) -> Tensor:
        cfg = self.config
        count = ready - self._emitted
        if count == 0:
            return self._buffer.new_zeros(0, cfg.window_size)
        frames = extract_frames(self._buffer, self._offset, self._emitted, count, self._received, cfg)  # (count, L)
        self._emitted = ready
        # keep what the next frames need; one frame more for snip_edges=False, whose last frames reflect the end
        # of the signal back over up to half a frame before their own start
        keep_from = first_sample_of_frame(self._emitted, cfg) - (0 if cfg.snip_edges else cfg.window_size)
        drop = min(max(0, keep_from - self._offset), int(self._buffer.shape[0]))
        if drop:
            self._buffer = self._buffer[drop:].clone()
            self._offset += drop
        return frames
