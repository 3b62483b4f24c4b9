"""Feature options: Kaldi's FbankOptions and MfccOptions as frozen dataclasses, checked once when built.

Names, meanings and units follow Kaldi (src/feat/feature-window.h, mel-computations.h, feature-fbank.h,
feature-mfcc.h); derived sizes (samples per frame and shift, FFT length) are computed in float32 exactly as Kaldi
does, so that a config gives the same frames here and there. The defaults are for 8 kHz telephone speech.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from gruasr.errors import ConfigError

WINDOW_TYPES = ("povey", "hamming", "hanning", "rectangular", "blackman")


#: Kaldi's floor before every log
FLT_EPSILON = float(np.finfo(np.float32).eps)


def _f32(x: float) -> np.float32:
    return np.float32(x)


@dataclass(frozen=True)
class FbankConfig:
    """Options of Kaldi's FbankOptions with the same meaning and names; defaults are for 8 kHz telephone speech.

    80 mel bins from 20 Hz to Nyquist (4 kHz) over a 256-point FFT (31.25 Hz bins): every mel triangle holds at
    least one FFT bin (the lowest ones only one or two), and 80 keeps the model input the same as for 16 kHz
    recipes. dither is 0 so that inference is deterministic; training may set it (int16 units, Kaldi's default is
    1.0) and must then pass a torch.Generator. Frames are frame_length_ms long every frame_shift_ms.
    """

    sample_rate: int = 8000
    num_mel_bins: int = 80
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    dither: float = 0.0
    preemph_coeff: float = 0.97
    window_type: str = "povey"
    blackman_coeff: float = 0.42
    remove_dc_offset: bool = True
    round_to_power_of_two: bool = True
    snip_edges: bool = True
    low_freq: float = 20.0
    high_freq: float = 0.0  # > 0: Hz; <= 0: offset from Nyquist (0 means Nyquist), as in Kaldi
    use_energy: bool = False
    raw_energy: bool = True
    energy_floor: float = 0.0
    use_log_fbank: bool = True
    use_power: bool = True
    #: floor of the mel energies before the log, on the int16 scale (0: Kaldi's FLT_EPSILON). Exact digital zeros
    #: (VoIP silence suppression, a muted leg, zero padding) otherwise give log-mel -15.9, 10 below the quietest
    #: frame of real telephone audio; 1.0 (log 0) keeps them near it (benchmarks/digital_silence.py)
    mel_floor: float = 0.0

    @property
    def log_floor(self) -> float:
        """The floor before the log of the mel energies: max(mel_floor, FLT_EPSILON)."""
        return max(self.mel_floor, FLT_EPSILON)

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.type == "bool" and not isinstance(value, bool):
                raise ConfigError(f"FbankConfig.{f.name} must be a bool, got {value!r}")
            if f.type == "int" and (isinstance(value, bool) or not isinstance(value, int)):
                raise ConfigError(f"FbankConfig.{f.name} must be an int, got {value!r}")
            if f.type == "float" and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ConfigError(f"FbankConfig.{f.name} must be a number, got {value!r}")
            if f.type == "float" and not math.isfinite(value):
                raise ConfigError(f"FbankConfig.{f.name} must be finite, got {value!r}")
        if self.sample_rate <= 0:
            raise ConfigError(f"FbankConfig.sample_rate must be positive, got {self.sample_rate}")
        if self.num_mel_bins < 3:
            raise ConfigError(f"FbankConfig.num_mel_bins must be at least 3, got {self.num_mel_bins}")
        if self.frame_shift_ms <= 0 or self.window_shift < 1:
            raise ConfigError(f"FbankConfig.frame_shift_ms={self.frame_shift_ms} gives less than one sample")
        if self.frame_length_ms <= 0 or self.window_size < 2:
            raise ConfigError(f"FbankConfig.frame_length_ms={self.frame_length_ms} gives fewer than two samples")
        if self.dither < 0:
            raise ConfigError(f"FbankConfig.dither must be >= 0, got {self.dither}")
        if not 0.0 <= self.preemph_coeff <= 1.0:
            raise ConfigError(f"FbankConfig.preemph_coeff must be in [0, 1], got {self.preemph_coeff}")
        if self.window_type not in WINDOW_TYPES:
            raise ConfigError(f"FbankConfig.window_type must be one of {WINDOW_TYPES}, got {self.window_type!r}")
        if self.energy_floor < 0:
            raise ConfigError(f"FbankConfig.energy_floor must be >= 0, got {self.energy_floor}")
        if self.mel_floor < 0:
            raise ConfigError(f"FbankConfig.mel_floor must be >= 0, got {self.mel_floor}")
        nyquist = 0.5 * self.sample_rate
        high = self.high_freq_hz
        if not (0.0 <= self.low_freq < nyquist and 0.0 < high <= nyquist and high > self.low_freq):
            raise ConfigError(
                f"FbankConfig: need 0 <= low_freq < high_freq <= Nyquist; got low_freq={self.low_freq}, "
                f"high_freq={self.high_freq} (= {high} Hz), Nyquist {nyquist} Hz"
            )

    @property
    def window_size(self) -> int:
        """Frame length in samples, computed in float32 as Kaldi does (200 at 8 kHz, 25 ms)."""
        return int(_f32(self.sample_rate) * _f32(0.001) * _f32(self.frame_length_ms))

    @property
    def window_shift(self) -> int:
        """Frame shift in samples (80 at 8 kHz, 10 ms)."""
        return int(_f32(self.sample_rate) * _f32(0.001) * _f32(self.frame_shift_ms))

    @property
    def padded_window_size(self) -> int:
        """FFT length: the window size, rounded up to a power of two when round_to_power_of_two."""
        size = self.window_size
        return 1 << (size - 1).bit_length() if self.round_to_power_of_two else size

    @property
    def high_freq_hz(self) -> float:
        return self.high_freq if self.high_freq > 0 else 0.5 * self.sample_rate + self.high_freq

    @property
    def dim(self) -> int:
        """Feature dimension: num_mel_bins, plus one (the log energy, column 0) with use_energy."""
        return self.num_mel_bins + int(self.use_energy)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FbankConfig:
        """The inverse of to_dict; unknown keys are errors (a config stored with a model must mean one thing)."""
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"FbankConfig: unknown keys {unknown}")
        return cls(**data)


@dataclass(frozen=True)
class MfccConfig:
    """Kaldi's MfccOptions: `fbank` gives framing, window, mel bins (Kaldi's MFCC default is 23) and energy_floor /
    raw_energy; num_ceps cepstra are kept, liftered with cepstral_lifter (0 turns liftering off); use_energy puts
    the raw log energy in place of C0. The fbank part must keep use_log_fbank and use_power on and use_energy off
    (MFCC in Kaldi always takes the log of mel power; its own use_energy says what C0 holds)."""

    fbank: FbankConfig = FbankConfig(num_mel_bins=23)
    num_ceps: int = 13
    cepstral_lifter: float = 22.0
    use_energy: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.fbank, FbankConfig):
            raise ConfigError(f"MfccConfig.fbank must be a FbankConfig, got {type(self.fbank).__name__}")
        if not self.fbank.use_log_fbank or not self.fbank.use_power or self.fbank.use_energy:
            raise ConfigError("MfccConfig.fbank must have use_log_fbank=True, use_power=True, use_energy=False")
        if isinstance(self.num_ceps, bool) or not isinstance(self.num_ceps, int):
            raise ConfigError(f"MfccConfig.num_ceps must be an int, got {self.num_ceps!r}")
        if not 1 <= self.num_ceps <= self.fbank.num_mel_bins:
            raise ConfigError(
                f"MfccConfig.num_ceps must be in [1, num_mel_bins={self.fbank.num_mel_bins}], got {self.num_ceps}"
            )
        if not isinstance(self.cepstral_lifter, int | float) or not math.isfinite(self.cepstral_lifter):
            raise ConfigError(f"MfccConfig.cepstral_lifter must be a finite number, got {self.cepstral_lifter!r}")
        if self.cepstral_lifter < 0:
            raise ConfigError(f"MfccConfig.cepstral_lifter must be >= 0, got {self.cepstral_lifter}")
        if not isinstance(self.use_energy, bool):
            raise ConfigError(f"MfccConfig.use_energy must be a bool, got {self.use_energy!r}")

    @property
    def dim(self) -> int:
        return self.num_ceps

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MfccConfig:
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise ConfigError(f"MfccConfig: unknown keys {unknown}")
        fbank = data.get("fbank", {})
        if not isinstance(fbank, dict):
            raise ConfigError(f"MfccConfig.fbank must be a mapping, got {type(fbank).__name__}")
        return cls(**{**data, "fbank": FbankConfig.from_dict(fbank)})
