"""Fbank and Mfcc against kaldi-native-fbank on real speech (FSDD at 8 kHz, AN4 at 16 kHz and resampled to 8 kHz),
with the same options and no dither. Both sides compute in float32 with different FFTs and summation orders, so
they differ by float32 rounding. The worst cells are the lowest mel bins: at 8 kHz with 64-80 bins they hold one
or two FFT bins near 30-60 Hz, where pre-emphasis and DC removal leave energies many orders of magnitude below the
frame's peak, so FFT rounding (relative to the peak) is a visible fraction of them on both sides.

Measured over 190 files (150 FSDD + 40 AN4), max / mean absolute difference (natural-log units):
8k default 4.7e-3 / 1.9e-6, 8k hanning 64 bins 4.1e-3 / 1.5e-6, 16k 80 bins 1.3e-3 / 1.5e-6, the other fbank sets
1.5e-4 .. 7.3e-4 / <= 1.9e-6, MFCC 1.1e-4 .. 4.5e-4 / <= 1.5e-5, log energy <= 1.4e-5. The tests use 24 of those
files; the tolerances leave 2-5x headroom over the numbers on all 190.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gruasr.features import Fbank, FbankConfig, Mfcc, MfccConfig, num_frames

from .helpers import knf_features

F, M = FbankConfig, MfccConfig
# name -> (config, which audio, max abs tolerance, mean abs tolerance); all in natural-log units
FBANK_SETS = {
    "8k-default-povey-80": (F(), "8k", 1e-2, 1e-5),
    "8k-hamming-40-nosnip": (F(window_type="hamming", num_mel_bins=40, snip_edges=False), "8k", 2e-3, 1e-5),
    "8k-hanning-64-energy": (
        F(window_type="hanning", num_mel_bins=64, use_energy=True, energy_floor=1.0),
        "8k",
        1e-2,
        1e-5,
    ),
    "8k-blackman-23-magnitude": (F(window_type="blackman", num_mel_bins=23, use_power=False), "8k", 1e-3, 1e-5),
    "8k-rectangular-30-plain": (
        F(
            window_type="rectangular",
            num_mel_bins=30,
            round_to_power_of_two=False,
            remove_dc_offset=False,
            preemph_coeff=0.0,
        ),
        "8k",
        1e-3,
        1e-5,
    ),
    "8k-20ms-5ms-telephone-band-windowed-energy": (
        F(frame_length_ms=20, frame_shift_ms=5, low_freq=300, high_freq=3400, use_energy=True, raw_energy=False),
        "8k",
        2e-3,
        1e-5,
    ),
    "16k-default-80": (F(sample_rate=16000), "16k", 5e-3, 1e-5),
    "16k-povey-23-energy-nosnip": (
        F(sample_rate=16000, num_mel_bins=23, use_energy=True, snip_edges=False),
        "16k",
        1e-3,
        1e-5,
    ),
    "16k-hamming-40-high-minus-400": (
        F(sample_rate=16000, num_mel_bins=40, window_type="hamming", high_freq=-400),
        "16k",
        1e-3,
        1e-5,
    ),
}
MFCC_SETS = {
    "mfcc-8k-default": (M(), "8k", 1e-3, 5e-5),
    "mfcc-8k-40-bins-20-ceps-nosnip-no-energy": (
        M(fbank=F(num_mel_bins=40, snip_edges=False, window_type="hamming"), num_ceps=20, use_energy=False),
        "8k",
        1e-3,
        5e-5,
    ),
    "mfcc-16k-23-no-lifter": (M(fbank=F(sample_rate=16000, num_mel_bins=23), cepstral_lifter=0.0), "16k", 1e-3, 5e-5),
}
ENERGY_TOL = 1e-4  # the log energy column: a plain sum of squares, so much closer


def _compare(module, config, audio, device):
    """Run both over all files; return (max abs diff, mean abs diff) of the non-energy columns, and the max abs
    diff of the energy column (0 when there is none)."""
    module = module.to(device)
    energy = config.use_energy
    worst = total = count = worst_energy = 0.0
    for name, x in audio.items():
        ours = module(torch.from_numpy(x).to(device)).cpu().double().numpy()
        ref = knf_features(x, config).astype(np.float64)
        assert ours.shape == ref.shape, f"{name}: {ours.shape} frames vs kaldi-native-fbank {ref.shape}"
        assert ours.shape[0] > 10, f"{name}: too short to be a test"
        diff = np.abs(ours - ref)
        if energy:
            worst_energy = max(worst_energy, float(diff[:, 0].max()))
            diff = diff[:, 1:]
        worst = max(worst, float(diff.max()))
        total += float(diff.sum())
        count += diff.size
    return worst, total / count, worst_energy


def _audio(kind, speech_8k, speech_16k):
    return speech_8k if kind == "8k" else speech_16k


@pytest.mark.parametrize("name", list(FBANK_SETS))
def test_fbank_matches_kaldi_native_fbank(name, speech_8k, speech_16k, device):
    config, kind, max_tol, mean_tol = FBANK_SETS[name]
    worst, mean, energy = _compare(Fbank(config), config, _audio(kind, speech_8k, speech_16k), device)
    print(f"{name}: max {worst:.2e} mean {mean:.2e} energy {energy:.2e}")
    assert worst <= max_tol, f"{name}: max abs diff {worst:.3e} > {max_tol}"
    assert mean <= mean_tol, f"{name}: mean abs diff {mean:.3e} > {mean_tol}"
    assert energy <= ENERGY_TOL


@pytest.mark.parametrize("name", list(MFCC_SETS))
def test_mfcc_matches_kaldi_native_fbank(name, speech_8k, speech_16k, device):
    config, kind, max_tol, mean_tol = MFCC_SETS[name]
    worst, mean, energy = _compare(Mfcc(config), config, _audio(kind, speech_8k, speech_16k), device)
    print(f"{name}: max {worst:.2e} mean {mean:.2e} energy {energy:.2e}")
    assert worst <= max_tol, f"{name}: max abs diff {worst:.3e} > {max_tol}"
    assert mean <= mean_tol, f"{name}: mean abs diff {mean:.3e} > {mean_tol}"
    assert energy <= ENERGY_TOL


def test_linear_fbank_matches_relatively(speech_8k):
    """use_log_fbank=False: mel energies on the int16 power scale (up to ~1e12), compared relative to each
    frame's largest bin (cells 1000x below it are noise in float32 on both sides)."""
    config = F(use_log_fbank=False)
    fbank = Fbank(config)
    worst = 0.0
    for x in speech_8k.values():
        ours, ref = fbank(x).double().numpy(), knf_features(x, config).astype(np.float64)
        scale = np.maximum(np.abs(ref), 1e-3 * np.abs(ref).max(axis=1, keepdims=True))
        worst = max(worst, float((np.abs(ours - ref) / scale).max()))
    assert worst <= 1e-3, worst


@pytest.mark.parametrize("snip_edges", [True, False])
@pytest.mark.parametrize("rate", [8000, 16000])
def test_frame_counts_match_kaldi(snip_edges, rate):
    """num_frames and the frames produced equal kaldi-native-fbank's for every length around the edge cases."""
    config = F(sample_rate=rate, snip_edges=snip_edges, num_mel_bins=23)
    fbank = Fbank(config)
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 3 * config.window_size).astype(np.float32)
    for n in list(range(0, 2 * config.window_size + 3)) + [3 * config.window_size]:
        expected = knf_features(x[:n], config).shape[0]
        assert num_frames(n, config) == expected, n
        assert fbank(x[:n]).shape == (expected, 23), n


def test_long_input_is_computed_in_blocks_without_change(speech_16k, monkeypatch):
    """Inputs longer than BLOCK_FRAMES frames are processed block by block; the result is the same."""
    import gruasr.features.fbank as fbank_module

    x = np.concatenate(list(speech_16k.values()))
    fbank = Fbank(F(sample_rate=16000))
    whole = fbank(x)
    monkeypatch.setattr(fbank_module, "BLOCK_FRAMES", 37)
    assert torch.equal(fbank(x), whole)


def test_dither_needs_a_generator_and_is_reproducible(speech_8k):
    x = next(iter(speech_8k.values()))
    fbank = Fbank(F(dither=1.0))
    with pytest.raises(Exception, match="Generator"):
        fbank(x)
    a = fbank(x, torch.Generator().manual_seed(3))
    b = fbank(x, torch.Generator().manual_seed(3))
    c = fbank(x, torch.Generator().manual_seed(4))
    plain = Fbank(F())(x)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 0 < (a - plain).abs().mean() < 0.5  # noise of 1 int16 step changes speech features only a little
