"""Config validation (ConfigError with the field named), input checks (ShapeError), config round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gruasr.errors import ConfigError, ShapeError
from gruasr.features import Fbank, FbankConfig, Mfcc, MfccConfig, mel_banks, num_frames


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"sample_rate": 0}, "sample_rate"),
        ({"sample_rate": 8000.0}, "sample_rate must be an int"),
        ({"num_mel_bins": 2}, "num_mel_bins"),
        ({"frame_length_ms": 0.1}, "frame_length_ms"),
        ({"frame_shift_ms": 0.0}, "frame_shift_ms"),
        ({"frame_shift_ms": float("nan")}, "finite"),
        ({"dither": -1.0}, "dither"),
        ({"preemph_coeff": 1.5}, "preemph_coeff"),
        ({"window_type": "hann"}, "window_type"),
        ({"energy_floor": -0.1}, "energy_floor"),
        ({"low_freq": 4000.0}, "low_freq"),
        ({"high_freq": 5000.0}, "high_freq"),
        ({"low_freq": 3000.0, "high_freq": 2000.0}, "low_freq"),
        ({"high_freq": -4000.0}, "high_freq"),
        ({"snip_edges": 1}, "snip_edges must be a bool"),
        ({"use_energy": "yes"}, "use_energy must be a bool"),
    ],
)
def test_fbank_config_errors(changes, message):
    with pytest.raises(ConfigError, match=message):
        FbankConfig(**changes)


def test_too_many_mel_bins_is_a_config_error():
    assert mel_banks(FbankConfig()).shape == (129, 80)  # the 8 kHz default: every bin holds an FFT bin
    with pytest.raises(ConfigError, match="empty"):
        Fbank(FbankConfig(num_mel_bins=128))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_ceps": 0}, "num_ceps"),
        ({"num_ceps": 24}, "num_ceps"),
        ({"cepstral_lifter": -1.0}, "cepstral_lifter"),
        ({"use_energy": 1}, "use_energy"),
        ({"fbank": FbankConfig(num_mel_bins=23, use_energy=True)}, "use_energy=False"),
        ({"fbank": FbankConfig(num_mel_bins=23, use_log_fbank=False)}, "use_log_fbank"),
        ({"fbank": {"num_mel_bins": 23}}, "FbankConfig"),
    ],
)
def test_mfcc_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        MfccConfig(**kwargs)


def test_derived_sizes_and_round_trip():
    c = FbankConfig()
    assert (c.window_size, c.window_shift, c.padded_window_size, c.dim) == (200, 80, 256, 80)
    c16 = FbankConfig(sample_rate=16000, use_energy=True, round_to_power_of_two=False)
    assert (c16.window_size, c16.window_shift, c16.padded_window_size, c16.dim) == (400, 160, 400, 81)
    assert FbankConfig.from_dict(c16.to_dict()) == c16
    m = MfccConfig(fbank=FbankConfig(num_mel_bins=30), num_ceps=20)
    assert MfccConfig.from_dict(m.to_dict()) == m
    with pytest.raises(ConfigError, match="unknown keys"):
        FbankConfig.from_dict({**c.to_dict(), "num_bins": 23})
    with pytest.raises(ConfigError, match="unknown keys"):
        MfccConfig.from_dict({"ceps": 3})
    assert num_frames(0, c) == 0 and num_frames(199, c) == 0 and num_frames(200, c) == 1 and num_frames(280, c) == 2
    with pytest.raises(ShapeError):
        num_frames(-1, c)


def test_input_checks():
    fbank = Fbank()
    with pytest.raises(ShapeError, match="mono"):
        fbank(np.zeros((2, 800), dtype=np.float32))
    with pytest.raises(ShapeError, match="mono"):
        fbank(np.zeros(800, dtype=np.int16))
    with pytest.raises(ShapeError, match="mono"):
        fbank(torch.zeros(1, 800))
    with pytest.raises(ShapeError, match="numpy"):
        fbank([0.0] * 800)
    assert fbank(np.zeros(100, dtype=np.float64)).shape == (0, 80)
    silence = fbank(torch.zeros(800))
    assert silence.shape == (8, 80) and torch.all(silence == np.log(np.finfo(np.float32).eps))


def test_device(device):
    """The module follows .to(device); a tensor on another device is refused rather than copied silently."""
    x = torch.rand(4000) - 0.5
    cpu = Fbank()(x)
    fbank = Fbank().to(device)
    there = fbank(x.to(device))
    assert there.device.type == device.type
    torch.testing.assert_close(there.cpu(), cpu, atol=1e-3, rtol=0)
    assert Mfcc().to(device)(x.to(device)).shape == (48, 13)
    if device.type != "cpu":
        with pytest.raises(ShapeError, match="call .to"):
            fbank(x)
