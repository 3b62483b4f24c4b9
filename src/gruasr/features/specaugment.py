"""SpecAugment time and frequency masks (Park et al. 2019, "SpecAugment: A Simple Data Augmentation Method for
Automatic Speech Recognition", arXiv:1904.08779), with the adaptive time masks of Park et al. 2020 ("SpecAugment
on Large Scale Datasets", arXiv:1912.05533): mask widths and, optionally, the number of masks scale with each
utterance's length.

A batch x (B, T, F) with lengths (B,): for utterance b of length T_b,
    frequency masks: num_freq_masks bands [f0, f0 + f), f ~ U{0..max_freq_width}, f0 ~ U{0..F - f}
    time masks:      n_b masks [t0, t0 + t), t ~ U{0..W_b}, t0 ~ U{0..T_b - t}, where
                     W_b = floor(max_time_ratio * T_b), capped at max_time_width when that is set, and
                     n_b = num_time_masks, or min(max_time_masks, floor(time_mask_multiplicity * T_b)) when the
                     multiplicity is > 0.
Masked cells get mask_value (0, the mean after CMVN, by default); padded frames (t >= T_b) are never touched.

With freq_warp = w > 0, each utterance's bins are first warped by a factor a ~ U[1 - w, 1 + w]: bin f takes the
value at bin f * a (linear interpolation, clamped at the top bin), a feature-domain stand-in for vocal tract
length perturbation (Jaitly & Hinton 2013, "Vocal Tract Length Perturbation (VTLP) improves speech recognition"),
which warps the frequency axis before the mel filterbank; padded frames are left as they are. Nothing is drawn
for it when w = 0, so recipes without it see the same masks as before.

Scaling matters here: an FSDD digit is ~40 frames, where LibriSpeech's fixed T = 100 would mask it all.
All randomness comes from an explicit torch.Generator, so a seed gives the same masks on any device.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from gruasr.errors import ConfigError, ShapeError


@dataclass(frozen=True)
class SpecAugmentConfig:
    """Mask counts and widths; see the module docstring. Widths are in frames (time) and bins (frequency)."""

    num_freq_masks: int = 2
    max_freq_width: int = 15
    num_time_masks: int = 2
    max_time_ratio: float = 0.05
    max_time_width: int | None = None
    time_mask_multiplicity: float = 0.0
    max_time_masks: int = 10
    mask_value: float = 0.0
    #: per-utterance warp of the frequency axis, factor in [1 - freq_warp, 1 + freq_warp] (0: off)
    freq_warp: float = 0.0

    def __post_init__(self) -> None:
        for name in ("num_freq_masks", "max_freq_width", "num_time_masks", "max_time_masks"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"SpecAugmentConfig.{name} must be a non-negative int, got {value!r}")
        if self.max_time_width is not None and (
            isinstance(self.max_time_width, bool) or not isinstance(self.max_time_width, int) or self.max_time_width < 0
        ):
            raise ConfigError(
                f"SpecAugmentConfig.max_time_width must be None or an int >= 0, got {self.max_time_width}"
            )
        for name in ("max_time_ratio", "time_mask_multiplicity", "mask_value", "freq_warp"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ConfigError(f"SpecAugmentConfig.{name} must be a finite number, got {value!r}")
        if not 0.0 <= self.max_time_ratio <= 1.0:
            raise ConfigError(f"SpecAugmentConfig.max_time_ratio must be in [0, 1], got {self.max_time_ratio}")
        if not 0.0 <= self.freq_warp < 0.5:
            raise ConfigError(f"SpecAugmentConfig.freq_warp must be in [0, 0.5), got {self.freq_warp}")
        if self.time_mask_multiplicity < 0:
            raise ConfigError(
                f"SpecAugmentConfig.time_mask_multiplicity must be >= 0, got {self.time_mask_multiplicity}"
            )

    def max_time_widths(self, lengths: Tensor) -> Tensor:
        """W_b (B,) int64: the widest time mask for each utterance length."""
        widths = torch.floor(lengths.double() * self.max_time_ratio).long()
        if self.max_time_width is not None:
            widths = widths.clamp_max(self.max_time_width)
        return widths

    def time_mask_counts(self, lengths: Tensor) -> Tensor:
        """n_b (B,) int64: how many time masks each utterance gets."""
        if self.time_mask_multiplicity > 0:
            counts = torch.floor(lengths.double() * self.time_mask_multiplicity).long()
            return counts.clamp_max(self.max_time_masks)
        return torch.full_like(lengths, self.num_time_masks, dtype=torch.long)


def _uniform_int(high: Tensor, generator: torch.Generator) -> Tensor:
    """Integers uniform in [0, high] elementwise (high >= 0, int64), drawn on the CPU from generator."""
    u = torch.rand(high.shape, generator=generator, dtype=torch.float64)
    return torch.minimum((u * (high + 1).double()).long(), high)


def _band_mask(starts: Tensor, widths: Tensor, size: int) -> Tensor:
    """(B, M) starts and widths -> (B, size) bool, True inside any of the M bands."""
    pos = torch.arange(size)  # (size,)
    inside = (pos >= starts[..., None]) & (pos < (starts + widths)[..., None])  # (B, M, size)
    return inside.any(dim=1)


def spec_augment_masks(
    lengths: Tensor, num_freq: int, config: SpecAugmentConfig, generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """Draw the masks for a batch, on the CPU: time (B, T_max) and frequency (B, F) bool, True where masked.
    Time masks lie inside each utterance's length. T_max = max(lengths)."""
    lengths = lengths.long().cpu()
    batch = lengths.shape[0]
    t_max = int(lengths.max()) if batch else 0
    if config.num_freq_masks and config.max_freq_width > num_freq:
        raise ConfigError(f"SpecAugment max_freq_width {config.max_freq_width} exceeds the {num_freq} feature bins")
    f_widths = _uniform_int(torch.full((batch, config.num_freq_masks), config.max_freq_width), generator)
    f_starts = _uniform_int(num_freq - f_widths, generator)
    freq = _band_mask(f_starts, f_widths, num_freq)  # (B, F)

    counts = config.time_mask_counts(lengths)  # (B,)
    slots = int(counts.max()) if batch else 0
    max_w = config.max_time_widths(lengths)[:, None].expand(batch, slots)  # (B, S)
    t_widths = _uniform_int(max_w, generator)
    t_starts = _uniform_int(lengths[:, None] - t_widths, generator)
    t_widths = torch.where(torch.arange(slots) < counts[:, None], t_widths, 0)  # unused slots mask nothing
    time = _band_mask(t_starts, t_widths, t_max)  # (B, T_max)
    return time, freq


def warp_frequency(x: Tensor, factors: Tensor) -> Tensor:
    """x (B, T, F) with its frequency axis warped per utterance: out[b, :, f] = x[b, :, f * factors[b]], linearly
    interpolated between bins and clamped at the top bin. factors (B,) > 0; 1 leaves an utterance unchanged."""
    bins = x.shape[-1]
    where = (torch.arange(bins, dtype=torch.float64)[None, :] * factors.double()[:, None]).clamp(0, bins - 1)
    low = where.floor().long()
    high = (low + 1).clamp_max(bins - 1)
    frac = (where - low.double()).to(x.dtype).to(x.device)[:, None, :]  # (B, 1, F)
    size = (-1, x.shape[1], -1)
    below = x.gather(2, low.to(x.device)[:, None, :].expand(size))
    above = x.gather(2, high.to(x.device)[:, None, :].expand(size))
    return below + frac * (above - below)


class SpecAugment:
    """`SpecAugment(config)(x (B, T, F), lengths (B,), generator) -> x'` (B, T, F), a new tensor; x is unchanged.

    Masks are drawn on the CPU from `generator` (a CPU torch.Generator), then applied on x's device."""

    def __init__(self, config: SpecAugmentConfig | None = None) -> None:
        self.config = config or SpecAugmentConfig()

    def __call__(self, x: Tensor, lengths: Tensor, generator: torch.Generator) -> Tensor:
        if x.ndim != 3:
            raise ShapeError(f"SpecAugment expects features (B, T, F), got shape {tuple(x.shape)}")
        if lengths.ndim != 1 or lengths.shape[0] != x.shape[0] or lengths.is_floating_point():
            raise ShapeError(f"SpecAugment expects integer lengths ({x.shape[0]},), got {tuple(lengths.shape)}")
        if lengths.numel() and (int(lengths.min()) < 0 or int(lengths.max()) > x.shape[1]):
            raise ShapeError(f"SpecAugment lengths must be in [0, {x.shape[1]}], got {lengths.tolist()}")
        if not isinstance(generator, torch.Generator) or generator.device.type != "cpu":
            raise ConfigError("SpecAugment needs an explicit CPU torch.Generator")
        batch, steps, bins = x.shape
        valid = (torch.arange(steps, device=x.device)[None, :] < lengths.to(x.device)[:, None])[:, :, None]
        if self.config.freq_warp > 0:
            w = self.config.freq_warp
            factors = 1 - w + 2 * w * torch.rand(batch, generator=generator, dtype=torch.float64)
            x = torch.where(valid, warp_frequency(x, factors), x)
        time, freq = spec_augment_masks(lengths, bins, self.config, generator)
        time = torch.nn.functional.pad(time, (0, steps - time.shape[1]))  # (B, T); padded frames stay False
        mask = (time[:, :, None] | freq[:, None, :]).to(x.device)  # (B, T, F)
        return x.masked_fill(mask & valid, self.config.mask_value)
