"""Byte-level helpers shared by the protocol adapters: 16-bit PCM and G.711 mu-law to float samples."""

from __future__ import annotations

import numpy as np

from gruasr.audio.g711 import ulaw2lin

#: sample rates a streaming session may declare, Hz
MIN_RATE, MAX_RATE = 8000, 48000


def pcm16_samples(data: bytes) -> tuple[np.ndarray, bytes]:
    """16-bit little-endian mono PCM -> (float32 samples in [-1, 1), the odd byte left over for the next chunk)."""
    whole = len(data) // 2 * 2
    samples = np.frombuffer(data[:whole], dtype="<i2").astype(np.float32) / 32768.0
    return samples, data[whole:]


def mulaw_samples(data: bytes) -> np.ndarray:
    """G.711 mu-law codes (ITU-T G.711) -> float32 samples in [-1, 1)."""
    return ulaw2lin(np.frombuffer(data, dtype=np.uint8)).astype(np.float32) / 32768.0
