"""Sample-rate conversion between any two rates (8 kHz <-> 16 kHz at least), through libsoxr (python-soxr).

soxr's "HQ" quality is a linear-phase polyphase filter with ~-100 dB stop band, so 16 kHz -> 8 kHz removes what
lies above 4 kHz instead of folding it back into the telephone band.
"""

from __future__ import annotations

import numpy as np
import soxr

from gruasr.errors import AudioFormatError


def resample(samples: np.ndarray, orig_rate: int, new_rate: int, quality: str = "HQ") -> np.ndarray:
    """Resample float audio (n,) or (channels, n) from orig_rate to new_rate Hz; returns float32, same layout."""
    if orig_rate <= 0 or new_rate <= 0:
        raise AudioFormatError(f"resample: rates must be positive, got {orig_rate} -> {new_rate}")
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim not in (1, 2):
        raise AudioFormatError(f"resample expects (n,) or (channels, n), got shape {data.shape}")
    if orig_rate == new_rate:
        return data.copy()
    if data.ndim == 1:
        return soxr.resample(data, orig_rate, new_rate, quality=quality).astype(np.float32, copy=False)
    out = soxr.resample(np.ascontiguousarray(data.T), orig_rate, new_rate, quality=quality)  # soxr: (n, channels)
    return np.ascontiguousarray(out.T, dtype=np.float32)
