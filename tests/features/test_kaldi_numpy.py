"""NumpyFbank (gruasr.features.kaldi, the torch-free runtime's front end) against gruasr's Fbank and
kaldi-native-fbank on real speech, and its rows independent of the batch (many streams' frames in one call).

Measured on 10 AN4 test utterances at 8 kHz (default povey, 80 bins): max / mean absolute difference against Fbank
4.6e-4 / 6.4e-7, max against kaldi-native-fbank 4.0e-4; the worst cells are the lowest mel bins, as in
test_fbank_parity.py, whose tolerances these reuse."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gruasr.features import Fbank, FbankConfig
from gruasr.features.kaldi import NumpyFbank

from .helpers import knf_features

F = FbankConfig
CONFIGS = {
    "8k-default-povey-80": (F(), 1e-2, 1e-5),
    "8k-hamming-40-nosnip": (F(window_type="hamming", num_mel_bins=40, snip_edges=False), 2e-3, 1e-5),
    "8k-hanning-64-energy": (F(window_type="hanning", num_mel_bins=64, use_energy=True, energy_floor=1.0), 1e-2, 1e-5),
    "8k-blackman-23-magnitude": (F(window_type="blackman", num_mel_bins=23, use_power=False), 1e-3, 1e-5),
    "8k-telephone-band-windowed-energy": (
        F(frame_length_ms=20, frame_shift_ms=5, low_freq=300, high_freq=3400, use_energy=True, raw_energy=False),
        2e-3,
        1e-5,
    ),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_numpy_fbank_matches_fbank_and_kaldi_native_fbank(name: str, speech_8k: dict[str, np.ndarray]) -> None:
    config, max_tol, mean_tol = CONFIGS[name]
    ours, numpy_fbank = Fbank(config), NumpyFbank(config)
    for key, samples in speech_8k.items():
        got = numpy_fbank(samples)
        with torch.no_grad():
            expected = ours(torch.from_numpy(samples)).numpy()
        reference = knf_features(samples, config)
        assert got.shape == expected.shape == reference.shape, key
        for other in (expected, reference):
            diff = np.abs(got - other)
            assert diff.max() < max_tol and diff.mean() < mean_tol, (key, float(diff.max()), float(diff.mean()))


def test_rows_do_not_depend_on_the_batch(speech_8k: dict[str, np.ndarray]) -> None:
    fbank = NumpyFbank(FbankConfig())
    frames = np.concatenate([fbank.frames(x * 32768.0) for x in list(speech_8k.values())[:4]])
    whole = fbank.compute_frames(frames)
    for size in (1, 3, 7, 64):
        parts = np.concatenate([fbank.compute_frames(frames[i : i + size]) for i in range(0, len(frames), size)])
        assert np.array_equal(parts, whole)
