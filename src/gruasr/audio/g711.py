"""ITU-T G.711 companding, mu-law and A-law, in numpy (the telephone network's 8-bit sample codes).

The arithmetic is the classic reference implementation (Sun Microsystems' g711.c, which CCITT/ITU tables and
Python's former audioop module follow): 16-bit linear samples are reduced to 14 bits (mu-law) or 13 bits
(A-law), split into 8 exponent segments with 16 steps each, and the code is bit-inverted (mu-law) or XOR-ed
with 0x55 (A-law), as sent on the line. The tests compare every code and every 16-bit input with audioop.

Float helpers take and give float samples in [-1, 1] (int16 / 32768).
"""

from __future__ import annotations

import numpy as np

_SEG_UEND = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])  # mu-law segment ends (14-bit)
_SEG_AEND = np.array([0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF])  # A-law segment ends (13-bit)
_BIAS = 0x84  # mu-law bias (132), on the 16-bit scale
_CLIP = 8159  # largest 14-bit magnitude mu-law codes


def _to_int16(samples: np.ndarray) -> np.ndarray:
    x = np.asarray(samples)
    if np.issubdtype(x.dtype, np.floating):
        x = np.clip(np.round(x * 32768.0), -32768, 32767)
    return x.astype(np.int32)


def lin2ulaw(pcm16: np.ndarray) -> np.ndarray:
    """16-bit linear samples (any integer array) -> mu-law codes (uint8)."""
    val = np.asarray(pcm16).astype(np.int32) >> 2  # 14-bit
    negative = val < 0
    mask = np.where(negative, 0x7F, 0xFF)
    val = np.minimum(np.where(negative, -val, val), _CLIP) + (_BIAS >> 2)
    seg = np.searchsorted(_SEG_UEND, val)  # first segment whose end >= val
    code = (np.minimum(seg, 7) << 4) | ((val >> (np.minimum(seg, 7) + 1)) & 0xF)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def ulaw2lin(codes: np.ndarray) -> np.ndarray:
    """mu-law codes -> 16-bit linear samples (int16)."""
    u = ~np.asarray(codes).astype(np.int32) & 0xFF
    t = (((u & 0x0F) << 3) + _BIAS) << ((u & 0x70) >> 4)
    return np.where(u & 0x80, _BIAS - t, t - _BIAS).astype(np.int16)


def lin2alaw(pcm16: np.ndarray) -> np.ndarray:
    """16-bit linear samples (any integer array) -> A-law codes (uint8)."""
    val = np.asarray(pcm16).astype(np.int32) >> 3  # 13-bit
    negative = val < 0
    mask = np.where(negative, 0x55, 0xD5)
    val = np.where(negative, -val - 1, val)
    seg = np.searchsorted(_SEG_AEND, val)
    s = np.minimum(seg, 7)
    code = (s << 4) | np.where(s < 2, (val >> 1) & 0xF, (val >> s) & 0xF)
    code = np.where(seg >= 8, 0x7F, code)
    return (code ^ mask).astype(np.uint8)


def alaw2lin(codes: np.ndarray) -> np.ndarray:
    """A-law codes -> 16-bit linear samples (int16)."""
    a = np.asarray(codes).astype(np.int32) ^ 0x55
    t = (a & 0x0F) << 4
    seg = (a & 0x70) >> 4
    t = np.where(seg == 0, t + 8, np.where(seg == 1, t + 0x108, (t + 0x108) << np.maximum(seg - 1, 0)))
    return np.where(a & 0x80, t, -t).astype(np.int16)


def ulaw_encode(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] (or int16) -> mu-law codes (uint8)."""
    return lin2ulaw(_to_int16(samples))


def ulaw_decode(codes: np.ndarray) -> np.ndarray:
    """mu-law codes -> float32 samples in [-1, 1]."""
    return ulaw2lin(codes).astype(np.float32) / 32768.0


def alaw_encode(samples: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] (or int16) -> A-law codes (uint8)."""
    return lin2alaw(_to_int16(samples))


def alaw_decode(codes: np.ndarray) -> np.ndarray:
    """A-law codes -> float32 samples in [-1, 1]."""
    return alaw2lin(codes).astype(np.float32) / 32768.0
