"""Cutting a signal into frames as Kaldi does (src/feat/feature-window.cc): counts, positions, edges, windows.

With snip_edges, frame i covers samples [i * shift, i * shift + L) and only whole frames are kept. Without it,
frame i is centred on (i + 1/2) * shift, there are round(n / shift) frames, and samples before 0 or after n - 1
are the signal reflected at its ends (-1 -> 0, -2 -> 1, n -> n - 1). The offline and the streaming front ends
both cut frames with `extract_frames`, which is why they agree bit for bit.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from gruasr.errors import ShapeError
from gruasr.features.config import FbankConfig
from gruasr.features.kaldi import window_function


def num_frames(num_samples: int, config: FbankConfig) -> int:
    """Frames in a signal of num_samples samples (Kaldi's NumFrames with flush=True).

    snip_edges: 1 + (n - L) // shift frames that fit entirely, 0 when n < L. Otherwise round(n / shift), frames
    centred on (i + 1/2) * shift with the signal reflected at both ends."""
    if num_samples < 0:
        raise ShapeError(f"num_samples must be >= 0, got {num_samples}")
    size, shift = config.window_size, config.window_shift
    if config.snip_edges:
        return 0 if num_samples < size else 1 + (num_samples - size) // shift
    return (num_samples + shift // 2) // shift


def first_sample_of_frame(frame: int, config: FbankConfig) -> int:
    """Index of the first sample of a frame; negative for the first frames when snip_edges is False."""
    shift = config.window_shift
    if config.snip_edges:
        return frame * shift
    return frame * shift + shift // 2 - config.window_size // 2


def frames_ready(num_samples: int, config: FbankConfig) -> int:
    """Frames computable from the first num_samples samples when more may follow (Kaldi's NumFrames with
    flush=False): with snip_edges the same as num_frames; otherwise only frames that end inside the signal."""
    if config.snip_edges:
        return num_frames(num_samples, config)
    count = num_frames(num_samples, config)
    while count > 0 and first_sample_of_frame(count - 1, config) + config.window_size > num_samples:
        count -= 1
    return count


def _reflect(index: Tensor, n: int) -> Tensor:
    """Kaldi's reflection at both ends (-1 -> 0, -2 -> 1, n -> n-1), repeated as needed: period 2n."""
    m = torch.remainder(index, 2 * n)
    return torch.where(m < n, m, 2 * n - 1 - m)


def extract_frames(buffer: Tensor, offset: int, first: int, count: int, total: int, config: FbankConfig) -> Tensor:
    """Frames first..first+count-1 (count, L) of a signal of `total` samples, of which `buffer` (n,) holds samples
    offset..offset+n-1. Samples outside [0, total) are reflected as in Kaldi's ExtractWindow; every sample a frame
    needs must be in the buffer (the streaming front end keeps them). Returns a view when no reflection is needed.
    """
    size, shift = config.window_size, config.window_shift
    if count == 0:
        return buffer.new_zeros(0, size)
    lo = first_sample_of_frame(first, config)
    hi = first_sample_of_frame(first + count - 1, config) + size
    if lo >= 0 and hi <= total:
        segment = buffer[lo - offset : hi - offset]
    else:
        index = _reflect(torch.arange(lo, hi, device=buffer.device), total) - offset
        if int(index.min()) < 0 or int(index.max()) >= buffer.shape[0]:
            raise ShapeError(f"frames {first}..{first + count - 1} need samples outside the buffer")
        segment = buffer[index]
    return segment.unfold(0, size, shift)  # (count, L)


def feature_window(config: FbankConfig) -> Tensor:
    """The window function (L,) float32, computed in float64 as Kaldi's GetWindow then rounded
    (gruasr.features.kaldi.window_function, shared with the torch-free runtime)."""
    return torch.from_numpy(window_function(config))


def as_samples(samples: Tensor | np.ndarray, device: torch.device) -> Tensor:
    """Check and convert 1-D float samples to a float32 tensor on `device` (numpy is moved there; a tensor must
    already be there, so that no copy between devices happens behind the caller's back)."""
    if isinstance(samples, np.ndarray):
        if samples.ndim != 1 or not np.issubdtype(samples.dtype, np.floating):
            raise ShapeError(f"expected mono float samples (n,), got {samples.dtype} array of shape {samples.shape}")
        return torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)).to(device)
    if not isinstance(samples, Tensor):
        raise ShapeError(f"expected a torch.Tensor or numpy array of samples, got {type(samples).__name__}")
    if samples.ndim != 1 or not samples.is_floating_point():
        raise ShapeError(
            f"expected mono float samples (n,), got {samples.dtype} tensor of shape {tuple(samples.shape)}"
        )
    if samples.device != device:
        raise ShapeError(f"samples are on {samples.device} but the features are on {device}: call .to(device)")
    return samples.to(torch.float32)
