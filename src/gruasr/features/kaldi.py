"""Kaldi's filterbank in numpy, without torch: the window, the mel matrix, and `NumpyFbank`, the same arithmetic as
gruasr.features.fbank.Fbank (which uses the window and mel matrix from here) for the torch-free runtime.

    fbank = NumpyFbank(FbankConfig())
    feats = fbank(samples)                        # samples (n,) float in [-1, 1] -> (T, dim) float32
    feats = fbank.compute_frames(frames)          # frames already cut (T, L), int16 scale: rows independent

Each row depends on its own frame only, whatever the number of rows (elementwise steps and per-band sums, no
matrix product whose rounding depends on the batch), so frames of many streams computed in one call equal frames
computed one stream at a time, bit for bit. Against kaldi-native-fbank and Fbank it agrees to float32 rounding
(tests/features/test_kaldi_numpy.py). No dither: recognition is deterministic.
"""

from __future__ import annotations

import math

import numpy as np

from gruasr.errors import ConfigError, ShapeError
from gruasr.features.config import FLT_EPSILON, FbankConfig

#: float samples in [-1, 1] are multiplied by this to reach Kaldi's int16 scale
INT16_SCALE = 32768.0


def window_function(config: FbankConfig) -> np.ndarray:
    """The window function (L,) float32, computed in float64 as Kaldi's GetWindow then rounded."""
    n = config.window_size
    i = np.arange(n, dtype=np.float64)
    a = 2.0 * math.pi / (n - 1)
    kind = config.window_type
    if kind == "hanning":
        w = 0.5 - 0.5 * np.cos(a * i)
    elif kind == "hamming":
        w = 0.54 - 0.46 * np.cos(a * i)
    elif kind == "povey":
        w = (0.5 - 0.5 * np.cos(a * i)) ** 0.85
    elif kind == "rectangular":
        w = np.ones(n)
    else:  # blackman
        c = float(np.float32(config.blackman_coeff))
        w = c - 0.5 * np.cos(a * i) + (0.5 - c) * np.cos(2 * a * i)
    return w.astype(np.float32)


def _mel(freq: np.ndarray | np.float32) -> np.ndarray:
    return np.float32(1127.0) * np.log(np.float32(1.0) + np.asarray(freq, dtype=np.float32) / np.float32(700.0))


def mel_matrix(config: FbankConfig) -> np.ndarray:
    """Kaldi's triangular mel filters (N/2 + 1, num_mel_bins) float32 over the rfft bins of the padded frame
    (N = padded_window_size); the Nyquist row is zero, as in Kaldi. Computed in float32 like Kaldi's MelBanks so
    that bin edges fall on the same FFT bins. ConfigError when a triangle holds no FFT bin."""
    n_fft = config.padded_window_size
    num_fft_bins = n_fft // 2
    num_bins = config.num_mel_bins
    bin_width = np.float32(config.sample_rate) / np.float32(n_fft)
    mel_low, mel_high = _mel(np.float32(config.low_freq)), _mel(np.float32(config.high_freq_hz))
    delta = (mel_high - mel_low) / np.float32(num_bins + 1)
    b = np.arange(num_bins, dtype=np.float32)[:, None]
    left, center, right = mel_low + b * delta, mel_low + (b + 1) * delta, mel_low + (b + 2) * delta  # (M, 1)
    mel = _mel(bin_width * np.arange(num_fft_bins, dtype=np.float32))[None, :]  # (1, K)
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    weights = np.where((mel > left) & (mel < right), np.where(mel <= center, up, down), 0.0).astype(np.float32)
    empty = np.flatnonzero(~weights.any(axis=1))
    if empty.size:
        raise ConfigError(
            f"{num_bins} mel bins between {config.low_freq} and {config.high_freq_hz} Hz with a {n_fft}-point FFT "
            f"leave bins {empty.tolist()[:5]} empty: use fewer mel bins or a longer frame"
        )
    matrix = np.zeros((num_fft_bins + 1, num_bins), dtype=np.float32)
    matrix[:num_fft_bins] = weights.T
    return matrix


class NumpyFbank:
    """Kaldi log-mel filterbank in numpy (see the module docstring); `config.dither` must be 0."""

    def __init__(self, config: FbankConfig) -> None:
        if config.dither != 0:
            raise ConfigError("NumpyFbank computes without dither (recognition); got dither > 0")
        self.config = config
        self.dim = config.dim
        self.window = window_function(config)
        weights = mel_matrix(config).T  # (M, K)
        nonzero = weights != 0
        first = nonzero.argmax(axis=1)
        last = weights.shape[1] - 1 - nonzero[:, ::-1].argmax(axis=1)
        width = int((last - first).max()) + 1
        index = np.minimum(first[:, None] + np.arange(width), weights.shape[1] - 1)  # (M, W)
        inside = index <= last[:, None]
        self._band_index = index.T.copy()  # (W, M): each mel bin's FFT bins, ascending, as Kaldi sums them
        self._band_weight = np.where(inside, np.take_along_axis(weights, index, 1), 0).T.astype(np.float32)

    def __call__(self, samples: np.ndarray) -> np.ndarray:
        """Mono float samples (n,) in [-1, 1] -> (T, dim) float32, T = Kaldi's NumFrames(n) (flush)."""
        x = np.asarray(samples, dtype=np.float32)
        if x.ndim != 1:
            raise ShapeError(f"expected mono samples (n,), got shape {x.shape}")
        return self.compute_frames(self.frames(x * np.float32(INT16_SCALE)))

    def frames(self, signal: np.ndarray) -> np.ndarray:
        """All frames (T, L) of a whole signal (int16 scale), reflected at the ends without snip_edges."""
        cfg = self.config
        size, shift, n = cfg.window_size, cfg.window_shift, signal.shape[0]
        if cfg.snip_edges:
            count = 0 if n < size else 1 + (n - size) // shift
            start = np.arange(count) * shift
        else:
            count = (n + shift // 2) // shift
            start = np.arange(count) * shift + shift // 2 - size // 2
        if count == 0:
            return np.zeros((0, size), dtype=np.float32)
        index = start[:, None] + np.arange(size)  # (T, L)
        if not cfg.snip_edges:  # Kaldi's reflection: -1 -> 0, -2 -> 1, n -> n - 1 (period 2n)
            index = np.remainder(index, 2 * n)
            index = np.where(index < n, index, 2 * n - 1 - index)
        return signal[index].astype(np.float32, copy=False)

    def compute_frames(self, frames: np.ndarray) -> np.ndarray:
        """Frames already cut (T, L) on the int16 scale -> features (T, dim) float32; rows are independent."""
        cfg = self.config
        if frames.shape[0] == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        f = frames.astype(np.float32, copy=True)
        if cfg.remove_dc_offset:
            f -= f.mean(axis=1, keepdims=True, dtype=np.float32)
        energy = None
        if cfg.use_energy and cfg.raw_energy:
            energy = np.log(np.maximum(np.square(f).sum(axis=1), FLT_EPSILON))
        if cfg.preemph_coeff != 0.0:
            c = np.float32(cfg.preemph_coeff)
            f[:, 1:] -= c * f[:, :-1].copy()
            f[:, 0] *= np.float32(1.0) - c
        f *= self.window
        if cfg.use_energy and not cfg.raw_energy:
            energy = np.log(np.maximum(np.square(f).sum(axis=1), FLT_EPSILON))
        if energy is not None and cfg.energy_floor > 0:
            energy = np.maximum(energy, math.log(cfg.energy_floor))
        spectrum = np.fft.rfft(f, n=cfg.padded_window_size, axis=1)  # (T, N/2 + 1)
        spec = (spectrum.real.astype(np.float32) ** 2 + spectrum.imag.astype(np.float32) ** 2).astype(np.float32)
        if not cfg.use_power:
            spec = np.sqrt(spec)
        mel = spec[:, self._band_index[0]] * self._band_weight[0]  # (T, M), band by band as Kaldi sums
        for index, weight in zip(self._band_index[1:], self._band_weight[1:], strict=True):
            mel += spec[:, index] * weight
        if cfg.use_log_fbank:
            mel = np.log(np.maximum(mel, np.float32(cfg.log_floor)))
        if energy is not None:
            mel = np.concatenate([energy[:, None].astype(np.float32), mel], axis=1)
        return mel.astype(np.float32, copy=False)
