"""Kaldi-compatible log-mel filterbank and MFCC features, in torch, vectorised over frames (CPU or GPU).

The arithmetic follows Kaldi's `compute-fbank-feats` / `compute-mfcc-feats` (src/feat/feature-window.cc,
mel-computations.cc, feature-fbank.cc, feature-mfcc.cc) and kaldi-native-fbank, its standalone copy, step by step:

    frames (T, L)   cut every `shift` samples (snip_edges) or centred with reflected edges (not snip_edges)
    dither          + dither * N(0, 1) per sample of each frame (int16 units; only when dither > 0)
    DC removal      - the frame's mean
    raw log energy  log(max(sum x^2, FLT_EPSILON)), before pre-emphasis and window (raw_energy)
    pre-emphasis    x[i] -= c * x[i-1], x[0] -= c * x[0]
    window          povey (hann^0.85), hamming, hanning, rectangular, blackman; a = 2 pi / (L - 1)
    |rfft|^2        zero-padded to the next power of two (round_to_power_of_two)
    mel             triangles on Kaldi's mel scale 1127 ln(1 + f/700), equal width in mel between low_freq and
                    high_freq, evaluated at FFT bin centres k * sr / N for k < N/2 (Kaldi skips the Nyquist bin)
    log             log(max(e, FLT_EPSILON))
    MFCC            orthonormal DCT-II of the log-mel energies, first num_ceps rows, lifter 1 + Q/2 sin(pi i/Q),
                    C0 replaced by the raw log energy when use_energy

Input samples are float in [-1, 1] (what gruasr.audio.load_audio returns). Kaldi reads waveforms as int16
values, so the samples are multiplied by 32768 first: log energies, `dither` and `energy_floor` are therefore in
Kaldi's units and the features equal Kaldi's for the same file. kaldi-native-fbank is fed `samples * 32768` in
the parity tests (tests/features/test_fbank_parity.py), which measure the agreement on real speech.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from gruasr.errors import ConfigError
from gruasr.features.config import FLT_EPSILON, FbankConfig, MfccConfig
from gruasr.features.framing import as_samples, extract_frames, feature_window, num_frames
from gruasr.features.kaldi import mel_matrix

__all__ = ["Fbank", "FbankConfig", "Mfcc", "MfccConfig", "mel_banks", "num_frames"]

#: float samples in [-1, 1] are multiplied by this to reach Kaldi's int16 scale
INT16_SCALE = 32768.0
#: frames computed at once; bounds the memory of a long file to a few tens of MB
BLOCK_FRAMES = 8192


def _f32(x: float) -> np.float32:
    return np.float32(x)


def mel_banks(config: FbankConfig) -> Tensor:
    """Kaldi's triangular mel filters as a matrix (N/2 + 1, num_mel_bins) float32 over the rfft bins of the padded
    frame (N = padded_window_size); the Nyquist row is zero, as in Kaldi (gruasr.features.kaldi.mel_matrix, shared
    with the torch-free runtime). Raises ConfigError when a triangle holds no FFT bin."""
    return torch.from_numpy(mel_matrix(config))


def mel_bands(matrix: Tensor) -> tuple[Tensor, Tensor]:
    """The mel matrix (K, M) as bands: index (M, W) of the FFT bins each mel bin covers (W the widest band) and
    their weights (M, W), zero where a band is narrower than W. spec[:, index] * weight summed over W is
    spec @ matrix, computed row by row."""
    weights = matrix.T  # (M, K)
    nonzero = weights != 0
    first = nonzero.float().argmax(dim=1)  # (M,)
    last = weights.shape[1] - 1 - nonzero.flip(1).float().argmax(dim=1)
    width = int((last - first).max()) + 1
    index = (first[:, None] + torch.arange(width)).clamp_max(weights.shape[1] - 1)  # (M, W)
    inside = index <= last[:, None]
    return index, torch.where(inside, weights.gather(1, index), torch.zeros(()))


def dct_matrix(num_ceps: int, num_bins: int) -> Tensor:
    """Kaldi's orthonormal DCT-II: its first num_ceps rows (num_ceps, num_bins) float32."""
    n = np.arange(num_bins, dtype=np.float64)
    k = np.arange(num_ceps, dtype=np.float64)[:, None]
    d = math.sqrt(2.0 / num_bins) * np.cos(math.pi / num_bins * (n + 0.5) * k)
    d[0] = math.sqrt(1.0 / num_bins)
    return torch.from_numpy(d.astype(np.float32))


def lifter_coeffs(num_ceps: int, q: float) -> Tensor:
    """Kaldi's cepstral lifter 1 + Q/2 sin(pi i / Q), (num_ceps,) float32; all ones when Q is 0."""
    i = np.arange(num_ceps, dtype=np.float64)
    c = np.ones(num_ceps) if q == 0 else 1.0 + 0.5 * q * np.sin(math.pi * i / q)
    return torch.from_numpy(c.astype(np.float32))


class _FrameFeatures(nn.Module):
    """What Fbank and Mfcc share: input checks, framing, and each frame's processing up to the mel energies."""

    window: Tensor
    band_index: Tensor
    band_weight: Tensor

    def __init__(self, config: FbankConfig, dim: int, energy: bool) -> None:
        super().__init__()
        self.frame_config = config
        self.dim = dim  # features per frame
        self._energy = energy  # whether the log energy is part of the output
        self.register_buffer("window", feature_window(config), persistent=False)  # (L,)
        index, weight = mel_bands(mel_banks(config))
        self.register_buffer("band_index", index.T.contiguous(), persistent=False)  # (W, M)
        self.register_buffer("band_weight", weight.T.contiguous(), persistent=False)  # (W, M)

    @property
    def device(self) -> torch.device:
        return self.window.device

    def check_generator(self, generator: torch.Generator | None) -> None:
        """Raise ConfigError when dither needs a generator and none is given."""
        if self.frame_config.dither > 0 and generator is None:
            raise ConfigError("dither > 0 needs an explicit torch.Generator (pass generator=...)")

    def forward(self, samples: Tensor | np.ndarray, generator: torch.Generator | None = None) -> Tensor:
        """samples (n,) float in [-1, 1] at config.sample_rate -> features (T, dim) float32, T = num_frames(n).

        A numpy array is moved to this module's device; a tensor must already be on it. With dither > 0 the noise
        is drawn from `generator` (required then)."""
        self.check_generator(generator)
        x = as_samples(samples, self.device) * INT16_SCALE
        cfg = self.frame_config
        total = num_frames(x.shape[0], cfg)
        out = [x.new_zeros(0, self.dim)]
        for first in range(0, total, BLOCK_FRAMES):
            count = min(BLOCK_FRAMES, total - first)
            out.append(self.compute_frames(extract_frames(x, 0, first, count, x.shape[0], cfg), generator))
        return out[-1] if len(out) <= 2 else torch.cat(out)

    def compute_frames(self, frames: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Features of frames already cut (T, L), on the int16 scale -> (T, dim). Each row depends on its frame
        only, bit for bit, whatever T (which is what lets StreamingFbank equal the offline features)."""
        if frames.shape[0] == 0:
            return frames.new_zeros(0, self.dim)
        mel, energy = self._mel_energies(frames, generator)
        return self._finish(mel, energy)

    def _finish(self, mel: Tensor, energy: Tensor | None) -> Tensor:
        raise NotImplementedError

    def _mel_energies(self, frames: Tensor, generator: torch.Generator | None) -> tuple[Tensor, Tensor | None]:
        """frames (T, L) -> (mel energies (T, M), log energy (T,) or None), as Kaldi's ProcessWindow and
        FbankComputer: linear mel energies (power or magnitude as configured); the log is taken by _finish."""
        cfg = self.frame_config
        if cfg.dither > 0:
            noise = torch.randn(frames.shape, generator=generator, device=generator.device)  # type: ignore[union-attr]
            frames = frames + cfg.dither * noise.to(frames.device)
        if cfg.remove_dc_offset:
            frames = frames - frames.mean(dim=1, keepdim=True)
        energy = None
        if self._energy and cfg.raw_energy:
            energy = frames.square().sum(dim=1).clamp_min(FLT_EPSILON).log()  # (T,)
        if cfg.preemph_coeff != 0.0:
            c = cfg.preemph_coeff
            frames = torch.cat([frames[:, :1] * (1.0 - c), frames[:, 1:] - c * frames[:, :-1]], dim=1)
        frames = frames * self.window
        if self._energy and not cfg.raw_energy:
            energy = frames.square().sum(dim=1).clamp_min(FLT_EPSILON).log()
        if energy is not None and cfg.energy_floor > 0:
            energy = energy.clamp_min(math.log(cfg.energy_floor))
        spectrum = torch.fft.rfft(frames, n=cfg.padded_window_size)  # (T, N/2 + 1)
        spec = spectrum.real.square() + spectrum.imag.square()
        if not cfg.use_power:
            spec = spec.sqrt()
        # each mel bin sums its own band of FFT bins in ascending order, as Kaldi's MelBanks::Compute does. A
        # matrix product would be shorter, but BLAS rounds a row differently depending on how many rows it is
        # given, and streaming must equal offline bit for bit; W steps of (T, M) are also faster than a gather.
        mel = spec.index_select(1, self.band_index[0]) * self.band_weight[0]  # (T, M)
        for index, weight in zip(self.band_index[1:], self.band_weight[1:], strict=True):
            mel = mel + spec.index_select(1, index) * weight
        return mel, energy


class Fbank(_FrameFeatures):
    """Kaldi log-mel filterbank: `Fbank(config)(samples (n,)) -> (T, config.dim)` float32, T = num_frames(n).

    With use_energy, column 0 holds the log energy and columns 1.. the log-mel energies (Kaldi, htk_compat off).
    Move it to a GPU with `.to("cuda")` and pass samples there; the filter matrices are non-persistent buffers
    (they follow from the config, which is what a checkpoint stores)."""

    def __init__(self, config: FbankConfig | None = None) -> None:
        config = config or FbankConfig()
        super().__init__(config, config.dim, config.use_energy)
        self.config = config

    def _finish(self, mel: Tensor, energy: Tensor | None) -> Tensor:
        if self.config.use_log_fbank:
            mel = mel.clamp_min(self.config.log_floor).log()
        if energy is not None:
            mel = torch.cat([energy[:, None], mel], dim=1)
        return mel  # (T, dim)


class Mfcc(_FrameFeatures):
    """Kaldi MFCC: `Mfcc(config)(samples (n,)) -> (T, num_ceps)` float32; see MfccConfig."""

    dct: Tensor
    lifter: Tensor

    def __init__(self, config: MfccConfig | None = None) -> None:
        config = config or MfccConfig()
        super().__init__(config.fbank, config.dim, config.use_energy)
        self.config = config
        self.register_buffer("dct", dct_matrix(config.num_ceps, config.fbank.num_mel_bins), persistent=False)
        self.register_buffer("lifter", lifter_coeffs(config.num_ceps, config.cepstral_lifter), persistent=False)

    def _finish(self, mel: Tensor, energy: Tensor | None) -> Tensor:
        log_mel = mel.clamp_min(self.config.fbank.log_floor).log()  # (T, M)
        ceps = (log_mel[:, None, :] * self.dct).sum(dim=2) * self.lifter  # (T, C, M) -> (T, C); not @, see above
        if energy is not None:
            ceps = torch.cat([energy[:, None], ceps[:, 1:]], dim=1)
        return ceps
