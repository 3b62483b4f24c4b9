"""Measurements shared by the audio tests: tones, the amplitude of one frequency, SNR."""

from __future__ import annotations

import numpy as np


def tone(freq: float, rate: int, seconds: float, amplitude: float = 0.5, phase: float = 0.0) -> np.ndarray:
    """A sine of `freq` Hz, float64 (n,)."""
    t = np.arange(int(round(seconds * rate))) / rate
    return amplitude * np.sin(2 * np.pi * freq * t + phase)


def amplitude_at(x: np.ndarray, freq: float, rate: int, skip: float = 0.25) -> float:
    """Peak amplitude of the `freq` Hz component of x, after skipping `skip` s at both ends (filter transients),
    by projection on sin/cos over a whole number of cycles (exact for a pure tone at freq)."""
    x = np.asarray(x, dtype=np.float64)
    start, stop = int(skip * rate), len(x) - int(skip * rate)
    cycles = int((stop - start) * freq / rate)
    stop = start + int(round(cycles * rate / freq))
    t = np.arange(start, stop) / rate
    seg = x[start:stop]
    c = 2 * np.mean(seg * np.cos(2 * np.pi * freq * t))
    s = 2 * np.mean(seg * np.sin(2 * np.pi * freq * t))
    return float(np.hypot(c, s))


def db(ratio: float) -> float:
    return float(20 * np.log10(ratio))


def snr_db(clean: np.ndarray, other: np.ndarray) -> float:
    """10 log10(sum clean^2 / sum (other - clean)^2)."""
    clean = np.asarray(clean, dtype=np.float64)
    err = np.asarray(other, dtype=np.float64) - clean
    return float(10 * np.log10(np.sum(clean**2) / np.sum(err**2)))


def zero_crossing_freq(x: np.ndarray, rate: int, skip: float = 0.25) -> float:
    """Frequency of a tone from its upward zero crossings (linear interpolation), in Hz."""
    x = np.asarray(x, dtype=np.float64)[int(skip * rate) : len(x) - int(skip * rate)]
    idx = np.flatnonzero((x[:-1] < 0) & (x[1:] >= 0))
    crossings = idx + x[idx] / (x[idx] - x[idx + 1])
    return float((len(crossings) - 1) / ((crossings[-1] - crossings[0]) / rate))
