"""On-the-fly waveform augmentation for training: speed perturbation, spectral tilt, gain, the telephone channel
and noise.

Every random choice comes from the numpy Generator passed in. The dataset makes one generator per
(seed, epoch, utterance index), so an utterance gets the same augmentation whichever worker process loads it
and however many workers there are: a run is reproducible, and a resumed run sees what it would have seen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

from gruasr.audio.resample import resample
from gruasr.audio.telephony import TILT_MAX_DB, TelephoneChannel, add_noise, spectral_tilt
from gruasr.errors import ConfigError


@dataclass(frozen=True)
class AugmentConfig:
    """What to do to each training waveform, and how often (probabilities in [0, 1])."""

    #: speed factors to draw from uniformly (Ko et al. 2015 used 0.9, 1.0, 1.1); tempo and pitch change together
    speeds: tuple[float, ...] = (0.9, 1.0, 1.1)
    #: probability of passing through a simulated telephone channel (band-limit, G.711, packet loss)
    telephone_prob: float = 0.0
    #: G.711 codecs to draw from for the channel
    codecs: tuple[str, ...] = ("ulaw", "alaw")
    #: packet-loss rates are drawn uniformly from this range when the channel is applied
    packet_loss: tuple[float, float] = (0.0, 0.05)
    #: probability of additive white noise, at an SNR drawn uniformly from snr_db
    noise_prob: float = 0.0
    snr_db: tuple[float, float] = (10.0, 40.0)
    #: gain drawn uniformly from this range in dB (0, 0 = off)
    gain_db: tuple[float, float] = (0.0, 0.0)
    #: spectral tilt drawn uniformly from this range in dB per octave around 1 kHz (0, 0 = off): another
    #: microphone or handset, brighter (> 0) or duller (< 0); gruasr.audio.telephony.spectral_tilt
    tilt_db: tuple[float, float] = (0.0, 0.0)
    #: the channel's other settings (band edges, filter order)
    channel: TelephoneChannel = field(default_factory=lambda: TelephoneChannel(codec=None, packet_loss=0.0))

    def __post_init__(self) -> None:
        if not self.speeds or any(not 0.5 <= s <= 2.0 for s in self.speeds):
            raise ConfigError(f"augment: speeds must be in [0.5, 2], got {self.speeds}")
        for name in ("telephone_prob", "noise_prob"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"augment: {name} must be in [0, 1], got {value}")
        for name in ("packet_loss", "snr_db", "gain_db", "tilt_db"):
            low, high = getattr(self, name)
            if not (math.isfinite(low) and math.isfinite(high)):
                raise ConfigError(f"augment: {name} must be finite numbers, got {(low, high)}")
            if low > high:
                raise ConfigError(f"augment: {name} range is empty: {low} > {high}")
        if not 0.0 <= self.packet_loss[0] <= self.packet_loss[1] < 1.0:
            raise ConfigError(f"augment: packet_loss must lie in [0, 1), got {self.packet_loss}")
        if max(abs(t) for t in self.tilt_db) > TILT_MAX_DB:
            raise ConfigError(f"augment: tilt_db must lie in +-{TILT_MAX_DB} dB/octave, got {self.tilt_db}")

    @property
    def active(self) -> bool:
        return (
            self.speeds != (1.0,)
            or self.telephone_prob > 0
            or self.noise_prob > 0
            or self.gain_db != (0.0, 0.0)
            or self.tilt_db != (0.0, 0.0)
        )


def speed_perturb(samples: np.ndarray, sample_rate: int, factor: float) -> np.ndarray:
    """Play `samples` `factor` times faster (shorter for factor > 1), pitch moving with it, as sox's `speed`."""
    if factor == 1.0:
        return samples
    return resample(samples, int(round(sample_rate * factor)), sample_rate)


def augment(samples: np.ndarray, sample_rate: int, config: AugmentConfig, rng: np.random.Generator) -> np.ndarray:
    """Apply the configured augmentations to mono float audio (n,) at sample_rate; returns float32 (m,)."""
    out = np.asarray(samples, dtype=np.float32)
    factor = float(config.speeds[int(rng.integers(len(config.speeds)))])
    out = speed_perturb(out, sample_rate, factor)
    if config.tilt_db != (0.0, 0.0):
        out = spectral_tilt(out, sample_rate, float(rng.uniform(*config.tilt_db)))
    low, high = config.gain_db
    if high > low or low != 0.0:
        out = out * np.float32(10.0 ** (rng.uniform(low, high) / 20.0))
    if rng.random() < config.telephone_prob:
        channel = replace(
            config.channel,
            codec=config.codecs[int(rng.integers(len(config.codecs)))] if config.codecs else None,
            packet_loss=float(rng.uniform(*config.packet_loss)),
            snr_db=None,
            output_rate=sample_rate,
        )
        out = channel.apply(out, sample_rate, rng)
    if rng.random() < config.noise_prob:
        out = add_noise(out, float(rng.uniform(*config.snr_db)), rng)
    return np.clip(out, -1.0, 1.0).astype(np.float32, copy=False)
