"""The telephone channel, measured: band-limit response, SNR, packet loss, determinism, gain, rates."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gruasr.audio import (
    TelephoneChannel,
    add_noise,
    apply_gain,
    band_limit,
    g711_roundtrip,
    load_audio,
    packet_loss,
    spectral_tilt,
)
from gruasr.audio.g711 import ulaw_decode, ulaw_encode
from gruasr.audio.telephony import long_term_slope
from gruasr.errors import ConfigError, ShapeError

from .helpers import amplitude_at, db, snr_db, tone

#: every step off: an 8 kHz line that changes nothing
CLEAN = TelephoneChannel(low_hz=None, high_hz=None, codec=None)


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.fixture(scope="module")
def speech(fsdd_files) -> np.ndarray:
    """About 9 s of real 8 kHz speech (FSDD takes of several speakers, joined)."""
    takes = [load_audio(p).samples[0] for p in fsdd_files[5::150]]
    return np.concatenate(takes)


def response_db(channel: TelephoneChannel, freq: float, rate: int = 8000) -> float:
    """Gain of the channel for a steady tone, in dB, measured after the filter's transient."""
    y = channel.apply(tone(freq, rate, 2.0, amplitude=0.5), rate, rng())
    return db(amplitude_at(y, freq, channel.output_rate, skip=0.5) / 0.5)


def test_band_limit_response():
    """G.712 voice band, order-4 Butterworth sections: measured -39.2 dB at 100 Hz, -39.6 dB at 3.8 kHz,
    -3.01 dB at both cut-offs, 0.00 dB at 1 kHz, -0.03 dB at 3 kHz."""
    channel = dataclasses.replace(CLEAN, low_hz=300.0, high_hz=3400.0)
    at_1k = response_db(channel, 1000.0)
    assert abs(at_1k) < 0.05
    assert response_db(channel, 100.0) - at_1k < -35
    assert response_db(channel, 3800.0) - at_1k < -35
    assert response_db(channel, 300.0) - at_1k == pytest.approx(-3.01, abs=0.1)
    assert response_db(channel, 3400.0) - at_1k == pytest.approx(-3.01, abs=0.1)
    assert abs(response_db(channel, 2000.0) - at_1k) < 0.1
    # a higher order is steeper, a lower one gentler
    assert response_db(dataclasses.replace(channel, filter_order=8), 100.0) < -70
    assert -25 < response_db(dataclasses.replace(channel, filter_order=2), 100.0) < -15


def test_band_limit_one_sided_and_causal():
    x = tone(100.0, 8000, 2.0) + tone(3800.0, 8000, 2.0)
    high_passed = band_limit(x, 8000, low_hz=300.0, high_hz=None)
    low_passed = band_limit(x, 8000, low_hz=None, high_hz=3400.0)
    assert amplitude_at(high_passed, 100.0, 8000) < 0.01 and amplitude_at(high_passed, 3800.0, 8000) > 0.49
    assert amplitude_at(low_passed, 3800.0, 8000) < 0.01 and amplitude_at(low_passed, 100.0, 8000) > 0.49
    np.testing.assert_array_equal(band_limit(x, 8000, None, None), x.astype(np.float32))
    impulse = np.zeros(400)
    impulse[200] = 1.0
    y = band_limit(impulse, 8000)
    assert np.all(y[:200] == 0) and np.abs(y[200:]).max() > 0.1  # nothing before the input: a causal line


@pytest.mark.parametrize("target", [0.0, 10.0, 20.0, 35.0])
def test_white_noise_snr(speech, target):
    channel = dataclasses.replace(CLEAN, snr_db=target)
    y = channel.apply(speech, 8000, rng(1))
    assert abs(snr_db(speech, y) - target) < 0.2
    noise = y - speech
    assert abs(np.mean(noise)) < 0.1 * np.std(noise)  # zero-mean
    spectrum = np.abs(np.fft.rfft(noise)) ** 2
    low, high = spectrum[: len(spectrum) // 2].mean(), spectrum[len(spectrum) // 2 :].mean()
    assert 0.9 < low / high < 1.1  # white: as much power above 2 kHz as below


def test_noise_from_a_recording(speech, fsdd_files):
    babble = load_audio(fsdd_files[-1]).samples[0]  # a short take: it is repeated to cover the speech
    assert len(babble) < len(speech)
    y = add_noise(speech, 15.0, rng(2), noise=babble)
    assert abs(snr_db(speech, y) - 15.0) < 0.2
    residual = (y - speech).astype(np.float64)
    start = int(np.argmax(np.correlate(residual[: 2 * len(babble)], babble, mode="valid")))
    piece = residual[start : start + len(babble)]
    scale = piece @ babble / (babble @ babble)
    np.testing.assert_allclose(piece, scale * babble, atol=1e-6)  # the added noise is the recording, scaled
    np.testing.assert_allclose(residual[start + len(babble) :][: len(babble)], piece, atol=1e-6)  # and repeats
    # through the channel too, and silence stays silent
    channel = dataclasses.replace(CLEAN, snr_db=15.0, noise=babble)
    assert abs(snr_db(speech, channel.apply(speech, 8000, rng(2))) - 15.0) < 0.2
    np.testing.assert_array_equal(add_noise(np.zeros(100), 10.0, rng()), np.zeros(100))


@pytest.mark.parametrize("rate", [0.02, 0.1, 0.3])
def test_packet_loss_drops_the_requested_fraction(rate):
    x = rng(3).standard_normal(8000 * 120) * 0.1  # 120 s: 6000 frames of 20 ms; no two frames alike
    channel = dataclasses.replace(CLEAN, packet_loss=rate)
    y = channel.apply(x, 8000, rng(4))
    changed = np.any((y != x.astype(np.float32)).reshape(-1, 160), axis=1)
    sigma = np.sqrt(rate * (1 - rate) / changed.size)
    assert abs(changed.mean() - rate) < 4 * sigma, (changed.mean(), rate)
    assert np.array_equal(y, channel.apply(x, 8000, rng(4)))


def test_packet_loss_concealment():
    """A lost frame repeats the last good one, faded 6 dB per frame; after 3 in a row, and before any good
    frame, silence."""
    x = rng(5).standard_normal(160 * 2000) * 0.1
    y = packet_loss(x, 0.3, rng(6), sample_rate=8000, frame_ms=20.0, fade_db=6.0, max_concealed=3)
    frames_in, frames_out = x.reshape(-1, 160), y.reshape(-1, 160).astype(np.float64)
    lost = np.any(frames_out != frames_in.astype(np.float32), axis=1)
    ramp = np.arange(1, 161) / 160
    last_good, run, checked = None, 0, {1: 0, 2: 0, 3: 0, "silent": 0}
    for i, is_lost in enumerate(lost):
        if not is_lost:
            last_good, run = frames_in[i], 0
            continue
        run += 1
        if last_good is None or run > 3:
            assert np.all(frames_out[i] == 0)
            checked["silent"] += 1
        else:
            expected = last_good * 10 ** (-6.0 * (run - 1 + ramp) / 20)
            np.testing.assert_allclose(frames_out[i], expected, rtol=1e-5, atol=1e-7)
            checked[run] += 1
    assert all(count > 0 for count in checked.values()), checked  # every case was met
    assert np.array_equal(packet_loss(x, 0.0, rng()), x.astype(np.float32))
    assert not np.any(packet_loss(x, 1.0, rng()))  # every frame lost: silence


def test_same_seed_same_audio_other_seed_other_audio(speech):
    channel = TelephoneChannel(codec="alaw", packet_loss=0.05, snr_db=20.0, gain_db=-3.0)
    a = channel.apply(speech, 8000, rng(7))
    b = channel.apply(speech, 8000, rng(7))
    c = channel.apply(speech, 8000, rng(8))
    assert a.dtype == np.float32 and a.shape == speech.shape
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    # nothing random when no step draws: the seed does not matter
    quiet = TelephoneChannel()
    np.testing.assert_array_equal(quiet.apply(speech, 8000, rng(1)), quiet.apply(speech, 8000, rng(2)))


@pytest.mark.parametrize("gain", [-20.0, -6.0, 0.0, 6.0])
def test_gain(speech, gain):
    y = dataclasses.replace(CLEAN, gain_db=gain).apply(speech, 8000, rng())
    measured = 10 * np.log10(np.sum(y.astype(np.float64) ** 2) / np.sum(speech.astype(np.float64) ** 2))
    assert measured == pytest.approx(gain, abs=0.01)
    np.testing.assert_allclose(apply_gain(speech, gain), speech * 10 ** (gain / 20), rtol=1e-6)


@pytest.mark.parametrize("slope", [-6.0, 4.0])
def test_tilt_slopes_the_spectrum_by_its_db_per_octave_and_keeps_the_level(slope):
    rate = 8000
    noise = np.random.default_rng(1).standard_normal(rate * 4) * 0.1
    out = spectral_tilt(noise, rate, slope)
    assert out.dtype == np.float32 and out.shape == noise.shape
    assert np.sqrt(np.mean(out.astype(np.float64) ** 2)) == pytest.approx(np.sqrt(np.mean(noise**2)), rel=1e-4)

    def band_db(x: np.ndarray, low: float, high: float) -> float:  # mean power in a band, 512-sample frames
        frames = x[: len(x) // 512 * 512].reshape(-1, 512) * np.hanning(512)
        power = (np.abs(np.fft.rfft(frames, axis=1)) ** 2).mean(0)
        freqs = np.fft.rfftfreq(512, 1 / rate)
        return 10 * np.log10(power[(freqs >= low) & (freqs < high)].mean())

    # 500-700 Hz against 2000-2800 Hz, two octaves apart: the input is white, so the difference is the tilt's
    high = band_db(out, 2000, 2800) - band_db(noise, 2000, 2800)
    assert high - (band_db(out, 500, 700) - band_db(noise, 500, 700)) == pytest.approx(2 * slope, abs=0.5)
    # and the long-term slope a speaker's recordings are measured by moves by the tilt
    assert long_term_slope([out], rate) - long_term_slope([noise], rate) == pytest.approx(slope, abs=0.3)
    # the channel's handset stage is the same filter, before the line
    channel = dataclasses.replace(CLEAN, tilt_db=slope)
    np.testing.assert_allclose(channel.apply(noise, rate, rng()), out, atol=1e-6)
    np.testing.assert_array_equal(spectral_tilt(noise, rate, 0.0), noise.astype(np.float32))
    with pytest.raises(ConfigError, match="tilt"):
        spectral_tilt(noise, rate, 13.0)


def test_loud_line_clips_in_the_codec():
    y = TelephoneChannel(low_hz=None, high_hz=None, gain_db=20.0).apply(tone(1000.0, 8000, 0.5), 8000, rng())
    assert np.abs(y).max() <= 1.0
    assert np.abs(y).max() > 0.97


def test_16k_input_gives_8k_output():
    x = tone(1000.0, 16000, 2.0, amplitude=0.5) + tone(6000.0, 16000, 2.0, amplitude=0.5)
    y = dataclasses.replace(CLEAN).apply(x, 16000, rng())
    assert y.dtype == np.float32 and y.shape == (16000,)
    assert db(amplitude_at(y, 1000.0, 8000) / 0.5) == pytest.approx(0.0, abs=0.01)
    spectrum = np.abs(np.fft.rfft(y[2000:-2000].astype(np.float64) * np.hanning(12000)))
    freqs = np.fft.rfftfreq(12000, 1 / 8000)
    assert db(spectrum[np.abs(freqs - 2000) < 50].max() / spectrum.max()) < -90  # 6 kHz did not fold to 2 kHz
    # and the default channel at another output rate keeps its band
    wide = TelephoneChannel(codec=None, output_rate=16000)
    assert wide.apply(x, 16000, rng()).shape == (32000,)


def test_real_speech_at_16k_through_the_default_channel(an4_files):
    from gruasr.audio import AN4_RAW

    audio = load_audio(an4_files[0], raw=AN4_RAW)
    y = TelephoneChannel(packet_loss=0.02, snr_db=25.0).apply(audio.samples[0], 16000, rng())
    assert y.shape == (audio.samples.shape[1] // 2,) and y.dtype == np.float32
    assert np.all(np.isfinite(y)) and np.abs(y).max() <= 1.0
    reference = TelephoneChannel(codec=None).apply(audio.samples[0], 16000, rng())
    assert 15 < snr_db(reference, y) < 26  # noise at 25 dB, the codec and a few lost frames


def test_clean_channel_is_identity(speech):
    y = CLEAN.apply(speech, 8000, rng())
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, speech)
    codec_only = dataclasses.replace(CLEAN, codec="ulaw").apply(speech, 8000, rng())
    np.testing.assert_array_equal(codec_only, ulaw_decode(ulaw_encode(speech)))
    np.testing.assert_array_equal(g711_roundtrip(speech, "ulaw"), codec_only)
    assert 30 < snr_db(speech, codec_only) < 40


def test_empty_input():
    assert TelephoneChannel(packet_loss=0.5, snr_db=10.0).apply(np.zeros(0), 16000, rng()).shape == (0,)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"codec": "gsm"},
        {"packet_loss": -0.1},
        {"packet_loss": 1.5},
        {"packet_loss": float("nan")},
        {"low_hz": 3400.0, "high_hz": 300.0},
        {"low_hz": 0.0},
        {"high_hz": 4000.0},
        {"high_hz": 3400.0, "output_rate": 6000},
        {"filter_order": 0},
        {"filter_order": 2.5},
        {"filter_order": 40},
        {"output_rate": 0},
        {"output_rate": 8000.0},
        {"snr_db": float("nan")},
        {"snr_db": "20"},
        {"gain_db": float("inf")},
        {"tilt_db": 20.0},
        {"tilt_db": float("nan")},
        {"frame_ms": 0.0},
        {"conceal_fade_db": -1.0},
        {"max_concealed": -1},
        {"noise": np.ones(100)},  # noise without an SNR
        {"noise": np.zeros(100), "snr_db": 10.0},
        {"noise": np.ones((2, 100)), "snr_db": 10.0},
    ],
)
def test_bad_parameters_raise_config_error(kwargs):
    with pytest.raises(ConfigError) as info:
        TelephoneChannel(**kwargs)
    assert any(name.split("_")[0] in str(info.value) for name in kwargs)  # the message names the parameter


def test_bad_calls():
    channel = TelephoneChannel()
    with pytest.raises(ShapeError, match="mono"):
        channel.apply(np.zeros((2, 100)), 8000, rng())
    with pytest.raises(ShapeError, match="NaN"):
        channel.apply(np.array([0.0, np.nan]), 8000, rng())
    with pytest.raises(ConfigError, match="Generator"):
        channel.apply(np.zeros(100), 8000, np.random.RandomState(0))
    with pytest.raises(ConfigError, match="sample_rate"):
        channel.apply(np.zeros(100), 0, rng())
    with pytest.raises(ConfigError):
        g711_roundtrip(np.zeros(10), "gsm")
    with pytest.raises(ConfigError):
        add_noise(np.zeros(10), 10.0, rng(), noise=np.zeros(5))
    with pytest.raises(ConfigError):
        packet_loss(np.zeros(10), 2.0, rng())
