"""Sample-rate conversion: tones in band keep amplitude and frequency, tones above the new Nyquist vanish."""

from __future__ import annotations

import numpy as np
import pytest

from gruasr.audio import resample
from gruasr.errors import AudioFormatError

from .helpers import amplitude_at, db, tone, zero_crossing_freq

# (from, to, a tone in the shared band)
CONVERSIONS = [(16000, 8000, 1000.0), (8000, 16000, 1000.0), (44100, 8000, 3000.0), (8000, 16000, 3400.0)]


@pytest.mark.parametrize(("orig", "new", "freq"), CONVERSIONS)
def test_tone_in_band_keeps_amplitude_and_frequency(orig, new, freq):
    x = tone(freq, orig, 2.0, amplitude=0.5)
    y = resample(x, orig, new)
    assert y.dtype == np.float32
    assert abs(db(amplitude_at(y, freq, new) / 0.5)) < 0.01  # measured <= 0.002 dB
    assert zero_crossing_freq(y, new) == pytest.approx(freq, rel=2e-5)
    # nothing else appears: the residual after removing the tone is ~100 dB down (soxr HQ)
    t = np.arange(len(y)) / new
    fit = np.linalg.lstsq(
        np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], 1)[new // 4 : -new // 4],
        y[new // 4 : -new // 4],
        rcond=None,
    )
    residual = fit[1][0] / (len(y) - new // 2)
    assert 10 * np.log10(residual / 0.125) < -80


@pytest.mark.parametrize(("orig", "new", "freq"), [(16000, 8000, 5000.0), (16000, 8000, 7000.0), (44100, 8000, 4500.0)])
def test_tone_above_the_new_nyquist_is_removed(orig, new, freq):
    x = tone(freq, orig, 2.0, amplitude=0.5)
    y = resample(x, orig, new).astype(np.float64)
    mid = y[new // 4 : -new // 4]  # (the ends carry the filter's edge transients)
    level = db(np.sqrt(2 * np.mean(mid**2)) / 0.5)  # everything left, aliases included, vs the tone
    assert level < -90, level  # measured -141 to -147 dB: the float32 floor


@pytest.mark.parametrize(
    ("orig", "new", "n"),
    [(16000, 8000, 16000), (16000, 8000, 16001), (8000, 16000, 8000), (44100, 8000, 44100), (22050, 16000, 12345)],
)
def test_lengths(orig, new, n):
    y = resample(np.zeros(n), orig, new)
    assert abs(len(y) - n * new / orig) <= 1


def test_multichannel_resamples_each_channel():
    x = np.stack([tone(500.0, 16000, 1.0), tone(1500.0, 16000, 1.0, amplitude=0.25)])  # (2, n)
    y = resample(x, 16000, 8000)
    assert y.shape == (2, 8000) and y.dtype == np.float32 and y.flags.c_contiguous
    for channel in range(2):
        np.testing.assert_allclose(y[channel], resample(x[channel], 16000, 8000), atol=1e-6)
    assert amplitude_at(y[0], 500.0, 8000) == pytest.approx(0.5, rel=0.01)
    assert amplitude_at(y[1], 1500.0, 8000) == pytest.approx(0.25, rel=0.01)
    assert amplitude_at(y[0], 1500.0, 8000) < 1e-4  # no leakage between legs


def test_same_rate_is_a_copy():
    x = np.linspace(-1, 1, 100, dtype=np.float32)
    y = resample(x, 8000, 8000)
    np.testing.assert_array_equal(x, y)
    y[0] = 5
    assert x[0] == -1


@pytest.mark.parametrize(
    ("samples", "orig", "new"), [(np.zeros(10), 0, 8000), (np.zeros(10), 8000, -1), (np.zeros((2, 2, 10)), 8000, 16000)]
)
def test_bad_arguments(samples, orig, new):
    with pytest.raises(AudioFormatError):
        resample(samples, orig, new)
