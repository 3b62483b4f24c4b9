"""Synthetic speech-free signals that phone calls are full of: silence, line noise, hum, tones, DTMF, music.

Every generator returns float32 samples (n,) in [-1, 1] at the given rate and takes its randomness from the
numpy Generator it is handed, so a set built from one seed is the same set everywhere. Levels are RMS in dBFS
(a full-scale sine is -3 dBFS). The model is taught to emit nothing for these (recipes add them with empty
transcripts), and the tests check that it does.

References: DTMF frequencies, ITU-T Q.23; North American call-progress tones (dial 350+440 Hz, ring-back
440+480 Hz 2 s on / 4 s off, busy 480+620 Hz 0.5 s / 0.5 s), ATIS-0300011; special information tones
913.8 / 1370.6 / 1776.7 Hz, ITU-T E.180; fax calling tone 1100 Hz and answer tone 2100 Hz, ITU-T T.30 / V.25.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gruasr.errors import ConfigError

#: DTMF keypad: key -> (row Hz, column Hz), ITU-T Q.23
DTMF = {
    "1": (697, 1209), "2": (697, 1336), "3": (697, 1477), "A": (697, 1633),
    "4": (770, 1209), "5": (770, 1336), "6": (770, 1477), "B": (770, 1633),
    "7": (852, 1209), "8": (852, 1336), "9": (852, 1477), "C": (852, 1633),
    "*": (941, 1209), "0": (941, 1336), "#": (941, 1477), "D": (941, 1633),
}  # fmt: skip


def _count(seconds: float, sample_rate: int) -> int:
    if not (isinstance(sample_rate, int) and sample_rate > 0):
        raise ConfigError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if not np.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"seconds must be a finite number >= 0, got {seconds!r}")
    return int(round(seconds * sample_rate))


def at_level(x: np.ndarray, level_dbfs: float) -> np.ndarray:
    """x scaled to an RMS of level_dbfs (silence stays silence), clipped to [-1, 1] -> float32."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    if rms == 0.0:
        return np.zeros(x.shape, dtype=np.float32)
    return np.clip(x * (10.0 ** (level_dbfs / 20.0) / rms), -1.0, 1.0).astype(np.float32)


def silence(seconds: float, sample_rate: int) -> np.ndarray:
    """Digital silence (all zeros), as a muted leg or a gateway's idle channel delivers."""
    return np.zeros(_count(seconds, sample_rate), dtype=np.float32)


def white_noise(seconds: float, sample_rate: int, level_dbfs: float, rng: np.random.Generator) -> np.ndarray:
    return at_level(rng.standard_normal(_count(seconds, sample_rate)), level_dbfs)


def colored_noise(
    seconds: float, sample_rate: int, level_dbfs: float, rng: np.random.Generator, exponent: float = 1.0
) -> np.ndarray:
    """Noise with power spectral density ~ 1 / f**exponent: 1 pink, 2 brown (red), 0 white."""
    n = _count(seconds, sample_rate)
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    freqs[0] = freqs[1] if n > 1 else 1.0
    return at_level(np.fft.irfft(spectrum / freqs ** (exponent / 2.0), n), level_dbfs)


def tone(
    seconds: float, sample_rate: int, freqs: tuple[float, ...], level_dbfs: float, phase: float = 0.0
) -> np.ndarray:
    """The sum of equal-amplitude sines at freqs (Hz), with 5 ms raised-cosine edges (no clicks)."""
    n = _count(seconds, sample_rate)
    t = np.arange(n) / sample_rate
    x = sum(np.sin(2 * np.pi * f * t + phase * (i + 1)) for i, f in enumerate(freqs))
    ramp = min(n // 2, int(0.005 * sample_rate))
    if ramp:
        edge = 0.5 - 0.5 * np.cos(np.linspace(0.0, np.pi, ramp))
        x = np.asarray(x, dtype=np.float64)
        x[:ramp] *= edge
        x[n - ramp :] *= edge[::-1]
    return at_level(np.asarray(x, dtype=np.float64), level_dbfs)


def cadence(
    seconds: float,
    sample_rate: int,
    freqs: tuple[float, ...],
    on: float,
    off: float,
    level_dbfs: float,
    phase: float = 0.0,
) -> np.ndarray:
    """A tone switched on for `on` seconds and off for `off` seconds, repeated (ring-back, busy), starting
    `phase` seconds into its cycle (a recording joins a ring-back wherever it happens to be)."""
    n = _count(seconds, sample_rate)
    burst = tone(on, sample_rate, freqs, level_dbfs)
    period = np.concatenate([burst, np.zeros(_count(off, sample_rate), dtype=np.float32)])
    skip = _count(phase, sample_rate) % max(len(period), 1)
    reps = -(-(n + skip) // max(len(period), 1))
    return np.tile(period, reps)[skip : skip + n].astype(np.float32)


def hum(seconds: float, sample_rate: int, level_dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """Mains hum: 50 or 60 Hz and its odd harmonics falling off, with a little noise."""
    n = _count(seconds, sample_rate)
    base = 50.0 if rng.random() < 0.5 else 60.0
    t = np.arange(n) / sample_rate
    x = np.zeros(n)
    for k in (1, 2, 3, 5, 7, 9):
        if base * k < sample_rate / 2:
            x += rng.uniform(0.2, 1.0) / k * np.sin(2 * np.pi * base * k * t + rng.uniform(0, 2 * np.pi))
    x += 0.02 * rng.standard_normal(n)
    return at_level(x, level_dbfs)


def dtmf(keys: str, sample_rate: int, level_dbfs: float, tone_s: float = 0.1, gap_s: float = 0.1) -> np.ndarray:
    """Touch-tone keys (ITU-T Q.23), each a tone of tone_s seconds followed by gap_s seconds of silence."""
    parts = []
    for key in keys:
        if key not in DTMF:
            raise ConfigError(f"dtmf: {key!r} is not a DTMF key (0-9, *, #, A-D)")
        parts.append(tone(tone_s, sample_rate, DTMF[key], level_dbfs))
        parts.append(np.zeros(_count(gap_s, sample_rate), dtype=np.float32))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def music(seconds: float, sample_rate: int, level_dbfs: float, rng: np.random.Generator) -> np.ndarray:
    """Hold-music-like audio: a random melody of harmonic notes over a chord, with note envelopes and vibrato."""
    n = _count(seconds, sample_rate)
    x = np.zeros(n)
    root = 110.0 * 2 ** (rng.integers(0, 12) / 12)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])
    beat = rng.uniform(0.15, 0.5)
    start = 0
    while start < n:
        length = min(n - start, int(beat * sample_rate * rng.choice([1, 1, 2, 4])))
        t = np.arange(length) / sample_rate
        f0 = root * 2 ** (rng.choice(scale) / 12 + rng.integers(0, 2))
        vibrato = 1 + 0.004 * np.sin(2 * np.pi * 5.5 * t)
        note = np.zeros(length)
        for h in range(1, 6):
            if f0 * h < sample_rate / 2 - 100:
                note += rng.uniform(0.1, 1.0) / h * np.sin(2 * np.pi * f0 * h * t * vibrato)
        envelope = np.exp(-t * rng.uniform(1.0, 6.0)) * (1 - np.exp(-t * 200))
        x[start : start + length] += note * envelope
        start += length
    t = np.arange(n) / sample_rate
    for step in (0, 4, 7):  # a sustained major chord underneath
        x += 0.15 * np.sin(2 * np.pi * root * 2 ** (step / 12) * t)
    return at_level(x, level_dbfs)


def _random_keys(rng: np.random.Generator, low: int, high: int) -> str:
    return "".join(rng.choice(list("0123456789*#"), size=int(rng.integers(low, high + 1))))


#: kind -> generator(seconds, sample_rate, rng) with randomized settings; the kinds of a non-speech set
KINDS: dict[str, Callable[[float, int, np.random.Generator], np.ndarray]] = {
    "silence": lambda s, r, g: silence(s, r),
    "dither": lambda s, r, g: white_noise(s, r, g.uniform(-90, -60), g),
    "white": lambda s, r, g: white_noise(s, r, g.uniform(-60, -20), g),
    "pink": lambda s, r, g: colored_noise(s, r, g.uniform(-60, -20), g, 1.0),
    "brown": lambda s, r, g: colored_noise(s, r, g.uniform(-60, -25), g, 2.0),
    "hum": lambda s, r, g: hum(s, r, g.uniform(-50, -20), g),
    "tone": lambda s, r, g: tone(s, r, (g.uniform(150, min(3600, r / 2 - 200)),), g.uniform(-40, -10)),
    "dial": lambda s, r, g: tone(s, r, (350, 440), g.uniform(-30, -10)),
    "ringback": lambda s, r, g: cadence(s, r, (440, 480), 2.0, 4.0, g.uniform(-30, -10), g.uniform(0, 6)),
    "busy": lambda s, r, g: cadence(s, r, (480, 620), 0.5, 0.5, g.uniform(-30, -10), g.uniform(0, 1)),
    "sit": lambda s, r, g: np.resize(
        np.concatenate([tone(0.33, r, (f,), g.uniform(-30, -15)) for f in (913.8, 1370.6, 1776.7)]),
        _count(s, r),
    ).astype(np.float32),
    "fax": lambda s, r, g: cadence(
        s, r, (1100,) if g.random() < 0.5 else (2100,), 0.5, 3.0, g.uniform(-30, -10), g.uniform(0, 3.5)
    ),
    "dtmf": lambda s, r, g: np.resize(
        dtmf(_random_keys(g, 1, 12), r, g.uniform(-30, -8), g.uniform(0.05, 0.2), g.uniform(0.05, 0.3)),
        _count(s, r),
    ).astype(np.float32),
    "music": lambda s, r, g: music(s, r, g.uniform(-40, -12), g),
}


def nonspeech(kind: str, seconds: float, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """One random signal of a kind in KINDS, or "mix": two kinds summed (e.g. music over line noise)."""
    if kind == "mix":
        a, b = rng.choice([k for k in KINDS if k != "silence"], size=2, replace=False)
        x = nonspeech(str(a), seconds, sample_rate, rng) + nonspeech(str(b), seconds, sample_rate, rng)
        return np.clip(x, -1.0, 1.0).astype(np.float32)
    if kind not in KINDS:
        raise ConfigError(f"unknown non-speech kind {kind!r}; known: {sorted(KINDS)} and 'mix'")
    return KINDS[kind](seconds, sample_rate, rng)
