"""A simulated telephone channel: what a call does to speech between the talker's microphone and the recognizer.

The chain, in order (each step is also a function of its own):
1. resample to the network rate (8 kHz narrowband) with gruasr.audio.resample;
2. `apply_gain`: a level change (a quiet talker, a hot line), in dB, and `spectral_tilt`: the handset's or
   microphone's spectral shape, a slope in dB per octave (brighter or duller than the recordings' own);
3. `add_noise`: additive noise at a signal-to-noise ratio, measured on the speech as it enters (white Gaussian
   noise, or a given noise recording);
4. `band_limit`: the ITU-T G.712 voice band, 300-3400 Hz, as a causal Butterworth band-pass (a real line
   delays and phase-shifts; it does not run a zero-phase filter);
5. `g711_roundtrip`: ITU-T G.711 mu-law (North America, Japan) or A-law (elsewhere) 8-bit companding, which
   also clips everything beyond full scale;
6. `packet_loss`: VoIP frames of 20 ms lost independently at a given rate and concealed (see `packet_loss`).

Every random choice comes from the caller's numpy Generator, so one seed gives the same audio on every run.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from gruasr.audio.g711 import alaw_decode, alaw_encode, ulaw_decode, ulaw_encode
from gruasr.audio.resample import resample
from gruasr.errors import ConfigError, ShapeError

#: the G.711 laws: "ulaw" (mu-law: North America, Japan) and "alaw" (A-law: elsewhere)
CODECS = ("ulaw", "alaw")
#: the steepest spectral tilt accepted, dB per octave
TILT_MAX_DB = 12.0
#: below this frequency a tilt's gain stays flat (it would otherwise boost or cut DC without bound)
TILT_FLOOR_HZ = 100.0


def _mono(samples: np.ndarray, what: str) -> np.ndarray:
    """samples as float64 (n,), refusing anything that is not finite mono audio."""
    x = np.asarray(samples)
    if x.ndim != 1:
        raise ShapeError(f"{what}: expected mono samples (n,), got shape {x.shape}")
    if not (np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)):
        raise ShapeError(f"{what}: expected float samples, got dtype {x.dtype}")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise ShapeError(f"{what}: samples contain NaN or infinite values")
    return x


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(float(value)):
        raise ConfigError(f"{name} must be finite, got {value!r}")
    return float(value)


def _rate(value: object, name: str = "sample_rate") -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer number of Hz, got {value!r}")
    return int(value)


def _generator(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ConfigError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
        )
    return rng


def _check_band(low_hz: float | None, high_hz: float | None, order: int, sample_rate: int) -> None:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or not 1 <= order <= 12:
        raise ConfigError(f"filter order must be an integer in 1..12, got {order!r}")
    nyquist = sample_rate / 2
    if low_hz is not None and not 0 < _number(low_hz, "low_hz") < nyquist:
        raise ConfigError(f"low_hz must lie in (0, {nyquist:g}) Hz at {sample_rate} Hz, got {low_hz!r}")
    if high_hz is not None and not 0 < _number(high_hz, "high_hz") < nyquist:
        raise ConfigError(f"high_hz must lie in (0, {nyquist:g}) Hz at {sample_rate} Hz, got {high_hz!r}")
    if low_hz is not None and high_hz is not None and low_hz >= high_hz:
        raise ConfigError(f"low_hz ({low_hz} Hz) must be below high_hz ({high_hz} Hz)")


def band_limit(
    samples: np.ndarray,
    sample_rate: int,
    low_hz: float | None = 300.0,
    high_hz: float | None = 3400.0,
    order: int = 4,
) -> np.ndarray:
    """Causal Butterworth band-pass (n,) -> float32 (n,): the telephone voice band of ITU-T G.712, 300-3400 Hz.

    low_hz/high_hz are the -3 dB points in Hz (None drops that side: high-pass or low-pass only, or a copy);
    `order` is the order of each side, so order 4 falls ~24 dB per octave outside the band: at 8 kHz about
    -39 dB at 100 Hz and at 3.8 kHz. Second-order sections (scipy.signal.butter + sosfilt) keep it stable.
    """
    rate = _rate(sample_rate)
    _check_band(low_hz, high_hz, order, rate)
    x = _mono(samples, "band_limit")
    if x.shape[0] == 0:
        return x.astype(np.float32)
    if low_hz is not None and high_hz is not None:
        sos = signal.butter(order, [low_hz, high_hz], btype="bandpass", fs=rate, output="sos")
    elif low_hz is not None:
        sos = signal.butter(order, low_hz, btype="highpass", fs=rate, output="sos")
    elif high_hz is not None:
        sos = signal.butter(order, high_hz, btype="lowpass", fs=rate, output="sos")
    else:
        return x.astype(np.float32)
    return signal.sosfilt(sos, x).astype(np.float32)


def g711_roundtrip(samples: np.ndarray, codec: str = "ulaw") -> np.ndarray:
    """Encode float samples (n,) in [-1, 1] to ITU-T G.711 8-bit codes and decode them again -> float32 (n,).

    mu-law keeps ~14 bits of dynamic range in 8 (SNR ~38 dB over a wide range of levels); A-law ~13 bits.
    Samples beyond full scale are clipped, as the codec does. Bit-exact with the standard (gruasr.audio.g711).
    """
    if codec not in CODECS:
        raise ConfigError(f"codec must be one of {CODECS} or None, got {codec!r}")
    x = _mono(samples, "g711_roundtrip")
    if codec == "ulaw":
        return ulaw_decode(ulaw_encode(x))
    return alaw_decode(alaw_encode(x))


def apply_gain(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale samples (n,) by gain_db decibels (amplitude factor 10 ** (gain_db / 20)) -> float32 (n,).
    Nothing is clipped here; the G.711 codec clips at full scale."""
    gain = _number(gain_db, "gain_db")
    return (_mono(samples, "apply_gain") * 10.0 ** (gain / 20.0)).astype(np.float32)


def spectral_tilt(samples: np.ndarray, sample_rate: int, db_per_octave: float) -> np.ndarray:
    """`samples` (n,) through a zero-phase filter whose gain is `db_per_octave` x log2(f / 1 kHz) dB (flat below
    TILT_FLOOR_HZ), the level (RMS) kept -> float32 (n,): another microphone or handset, brighter (> 0) or duller
    (< 0), changing the spectrum's shape, not its level (that is `apply_gain`). A fixed filter is a fixed offset
    per mel bin, which global CMVN does not remove. Applied by FFT over the whole input, zero-padded so that the
    filter is linear, not circular; 0 returns the samples as float32."""
    x = _mono(samples, "spectral_tilt")
    slope = _number(db_per_octave, "db_per_octave")
    if abs(slope) > TILT_MAX_DB:
        raise ConfigError(f"a spectral tilt must lie within +-{TILT_MAX_DB} dB/octave, got {slope}")
    if slope == 0.0 or len(x) == 0:
        return x.astype(np.float32)
    size = 1 << int(np.ceil(np.log2(2 * len(x))))
    freqs = np.maximum(np.fft.rfftfreq(size, 1.0 / _rate(sample_rate, "sample_rate")), TILT_FLOOR_HZ)
    gain = 10.0 ** (slope * np.log2(freqs / 1000.0) / 20.0)
    out = np.fft.irfft(np.fft.rfft(x, size) * gain, size)[: len(x)]
    before, after = math.sqrt(float(np.mean(x**2))), math.sqrt(float(np.mean(out**2)))
    return (out * (before / after if after > 0 else 1.0)).astype(np.float32)


def long_term_slope(chunks: Sequence[np.ndarray], sample_rate: int, frame: int = 256) -> float:
    """The slope, in dB per octave, of the long-term spectrum of `chunks` (one speaker's or handset's recordings)
    over 300-3400 Hz: the power spectra of each chunk's Hann frames within 10 dB of its loudest, summed, and a
    least-squares line through them in dB against log2(frequency). What `spectral_tilt` changes: tilting audio
    by t dB/octave moves this slope by t."""
    total = np.zeros(frame // 2 + 1)
    for chunk in chunks:
        x = _mono(chunk, "long_term_slope")
        x = x[: len(x) // frame * frame]
        if len(x) == 0:
            continue
        spectra = np.abs(np.fft.rfft(x.reshape(-1, frame) * np.hanning(frame), axis=1)) ** 2
        energy = spectra.sum(axis=1)
        total += spectra[energy > 0.1 * energy.max()].sum(axis=0)
    freqs = np.fft.rfftfreq(frame, 1 / _rate(sample_rate, "sample_rate"))
    band = (freqs >= 300) & (freqs <= 3400)
    return float(np.polyfit(np.log2(freqs[band] / 1000), 10 * np.log10(total[band] + 1e-20), 1)[0])


def add_noise(
    samples: np.ndarray, snr_db: float, rng: np.random.Generator, noise: np.ndarray | None = None
) -> np.ndarray:
    """Add noise to samples (n,) at a signal-to-noise ratio of snr_db decibels -> float32 (n,).

    SNR = 10 log10(mean(s**2) / mean(v**2)), with the signal power taken over all of `samples` (a plain mean
    square, not the ITU-T P.56 active speech level: trim long silences first if that matters). The noise v is
    white Gaussian from `rng`, or `noise` (float (m,), same sample rate): a random stretch of it when longer than
    the signal, repeated from a random offset when shorter. Silence (all zeros) comes back unchanged.
    """
    snr = _number(snr_db, "snr_db")
    x = _mono(samples, "add_noise")
    rng = _generator(rng)
    n = x.shape[0]
    if noise is None:
        v = np.asarray(rng.standard_normal(n))
    else:
        source = _mono(noise, "add_noise noise")
        if source.shape[0] == 0 or not np.any(source):
            raise ConfigError("noise must hold some non-zero samples")
        offset = int(rng.integers(source.shape[0]))
        v = np.resize(np.roll(source, -offset), n)  # repeats the noise when it is shorter than the signal
    power = float(np.mean(x**2)) if n else 0.0
    noise_power = float(np.mean(v**2)) if n else 0.0
    if power == 0.0 or noise_power == 0.0:
        return x.astype(np.float32)
    scale = math.sqrt(power / (noise_power * 10.0 ** (snr / 10.0)))
    return (x + scale * v).astype(np.float32)


def _check_loss(loss_rate: float, frame_ms: float, fade_db: float, max_concealed: int) -> None:
    if not 0.0 <= _number(loss_rate, "packet_loss") <= 1.0:
        raise ConfigError(f"packet_loss is a fraction of frames, 0..1, got {loss_rate!r}")
    if not 0.0 < _number(frame_ms, "frame_ms") <= 1000.0:
        raise ConfigError(f"frame_ms must lie in (0, 1000] ms, got {frame_ms!r}")
    if _number(fade_db, "conceal_fade_db") < 0:
        raise ConfigError(f"conceal_fade_db must be >= 0 dB, got {fade_db!r}")
    if isinstance(max_concealed, bool) or not isinstance(max_concealed, (int, np.integer)) or max_concealed < 0:
        raise ConfigError(f"max_concealed must be an integer >= 0, got {max_concealed!r}")


def packet_loss(
    samples: np.ndarray,
    loss_rate: float,
    rng: np.random.Generator,
    sample_rate: int = 8000,
    frame_ms: float = 20.0,
    fade_db: float = 6.0,
    max_concealed: int = 3,
) -> np.ndarray:
    """Drop frames of frame_ms (20 ms: one RTP packet of G.711) independently with probability loss_rate, and
    conceal them -> float32 (n,).

    Concealment (a simplification of ITU-T G.711 Appendix I): the k-th lost frame in a row repeats the last
    received frame, faded by fade_db per lost frame (a linear ramp from -(k-1)*fade_db to -k*fade_db dB across
    the frame, so no step appears inside it); after max_concealed lost frames in a row (60 ms by default), and
    before the first received frame, the output is silence. A last partial frame is a frame too.
    """
    _check_loss(loss_rate, frame_ms, fade_db, max_concealed)
    rate = _rate(sample_rate)
    x = _mono(samples, "packet_loss")
    rng = _generator(rng)
    size = max(1, int(round(frame_ms * rate / 1000.0)))
    n_frames = -(-x.shape[0] // size)
    lost = rng.random(n_frames) < loss_rate
    out = x.copy()
    last_good: np.ndarray | None = None
    run = 0
    for i in range(n_frames):
        frame = slice(i * size, min((i + 1) * size, x.shape[0]))
        length = frame.stop - frame.start
        if not lost[i]:
            last_good, run = x[frame], 0
            continue
        run += 1
        if last_good is None or run > max_concealed:
            out[frame] = 0.0
            continue
        ramp_db = -fade_db * (run - 1 + np.arange(1, length + 1) / length)
        repeated = np.resize(last_good, length)  # the last good frame may be the short one at the end
        out[frame] = repeated * 10.0 ** (ramp_db / 20.0)
    return out.astype(np.float32)


@dataclass(frozen=True)
class TelephoneChannel:
    """What a phone call does to speech, as parameters; `apply` runs it (see the module docstring for the chain).

    Frequencies in Hz, levels in dB, loss as a fraction of 20 ms frames. None switches a step off:
    `TelephoneChannel(low_hz=None, high_hz=None, codec=None)` with the defaults otherwise is a clean 8 kHz line.
    `noise` is a float array (m,) at `output_rate`, used instead of white noise when snr_db is set.
    """

    low_hz: float | None = 300.0
    high_hz: float | None = 3400.0
    filter_order: int = 4
    codec: str | None = "ulaw"  # one of CODECS, or None
    packet_loss: float = 0.0
    frame_ms: float = 20.0
    conceal_fade_db: float = 6.0
    max_concealed: int = 3
    snr_db: float | None = None
    noise: np.ndarray | None = field(default=None, compare=False, repr=False)
    gain_db: float = 0.0
    tilt_db: float = 0.0  # the handset's spectral tilt, dB per octave around 1 kHz (spectral_tilt)
    output_rate: int = 8000

    def __post_init__(self) -> None:
        rate = _rate(self.output_rate, "output_rate")
        _check_band(self.low_hz, self.high_hz, self.filter_order, rate)
        if self.codec is not None and self.codec not in CODECS:
            raise ConfigError(f"codec must be one of {CODECS} or None, got {self.codec!r}")
        _check_loss(self.packet_loss, self.frame_ms, self.conceal_fade_db, self.max_concealed)
        if self.snr_db is not None:
            _number(self.snr_db, "snr_db")
        if self.noise is not None:
            if self.snr_db is None:
                raise ConfigError("noise was given without snr_db: set the SNR at which to add it")
            try:
                noise = _mono(self.noise, "TelephoneChannel noise")
            except ShapeError as err:  # a parameter, not an input: report it as configuration
                raise ConfigError(str(err)) from None
            if not np.any(noise):
                raise ConfigError("noise must hold some non-zero samples")
            object.__setattr__(self, "noise", noise.astype(np.float32))
        _number(self.gain_db, "gain_db")
        if abs(_number(self.tilt_db, "tilt_db")) > TILT_MAX_DB:
            raise ConfigError(f"tilt_db must lie within +-{TILT_MAX_DB} dB/octave, got {self.tilt_db}")

    def apply(self, samples: np.ndarray, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
        """Pass speech (n,) at sample_rate Hz through the channel -> float32 (m,) at self.output_rate Hz.
        Random draws (noise, then lost frames) come from `rng` only: the same seed gives identical output."""
        rate = _rate(sample_rate, "input sample_rate")
        x = _mono(samples, "TelephoneChannel.apply")
        rng = _generator(rng)
        if rate != self.output_rate:
            x = resample(x, rate, self.output_rate).astype(np.float64)
        if self.gain_db:
            x = apply_gain(x, self.gain_db)
        if self.tilt_db:
            x = spectral_tilt(x, self.output_rate, self.tilt_db)
        if self.snr_db is not None:
            x = add_noise(x, self.snr_db, rng, self.noise)
        if self.low_hz is not None or self.high_hz is not None:
            x = band_limit(x, self.output_rate, self.low_hz, self.high_hz, self.filter_order)
        if self.codec is not None:
            x = g711_roundtrip(x, self.codec)
        if self.packet_loss > 0:
            x = packet_loss(
                x,
                self.packet_loss,
                rng,
                self.output_rate,
                self.frame_ms,
                self.conceal_fade_db,
                self.max_concealed,
            )
        return np.asarray(x, dtype=np.float32)
