"""Generated non-speech signals: levels, frequencies, cadences and determinism; the non-speech corpus builder."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gruasr.audio.io import load_audio
from gruasr.audio.signals import DTMF, KINDS, at_level, cadence, colored_noise, dtmf, nonspeech, tone
from gruasr.data.corpora.nonspeech import GENERATED, NonSpeechConfig, build_nonspeech
from gruasr.data.manifest import Utterance, write_manifest
from gruasr.errors import ConfigError

RATE = 8000


def rms_dbfs(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def peaks(x: np.ndarray, count: int) -> list[float]:
    """The `count` strongest frequencies (Hz) of x, at least 30 Hz apart."""
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    found: list[float] = []
    for i in np.argsort(spectrum)[::-1]:
        if all(abs(freqs[i] - f) > 30 for f in found):
            found.append(float(freqs[i]))
        if len(found) == count:
            break
    return sorted(found)


@pytest.mark.parametrize("level", [-60.0, -40.0, -20.0])
def test_levels_are_rms_dbfs(level):
    rng = np.random.default_rng(0)
    for kind in ("white", "pink", "brown", "hum", "music"):
        x = nonspeech(kind, 2.0, RATE, rng)
        assert x.dtype == np.float32 and x.shape == (2 * RATE,) and np.abs(x).max() <= 1.0
    assert rms_dbfs(at_level(np.random.default_rng(1).standard_normal(RATE), level)) == pytest.approx(level, abs=0.01)


def test_dtmf_keys_have_their_two_frequencies_and_gaps():
    for key in "159*0#D":
        x = dtmf(key, RATE, -10.0, tone_s=0.2, gap_s=0.0)
        row, col = DTMF[key]
        assert peaks(x, 2) == pytest.approx([row, col], abs=6)
    x = dtmf("12", RATE, -10.0, tone_s=0.1, gap_s=0.05)
    assert len(x) == int(0.3 * RATE) and np.all(x[int(0.1 * RATE) : int(0.15 * RATE)] == 0)
    with pytest.raises(ConfigError, match="not a DTMF key"):
        dtmf("x", RATE, -10.0)


def test_call_progress_tones_and_cadence():
    assert peaks(tone(1.0, RATE, (350, 440), -10.0), 2) == pytest.approx([350, 440], abs=3)
    busy = cadence(3.0, RATE, (480, 620), 0.5, 0.5, -10.0)
    on, off = busy[int(0.1 * RATE) : int(0.4 * RATE)], busy[int(0.6 * RATE) : int(0.9 * RATE)]
    assert rms_dbfs(on) == pytest.approx(-10.0, abs=0.5) and np.all(off == 0)
    joined = cadence(2.0, RATE, (480, 620), 0.5, 0.5, -10.0, phase=0.7)  # 0.2 s into the pause
    assert np.all(joined[: int(0.29 * RATE)] == 0) and np.any(joined[int(0.31 * RATE) : int(0.4 * RATE)])
    assert np.array_equal(joined[int(0.3 * RATE) :], busy[: len(joined) - int(0.3 * RATE)])
    ringback = cadence(6.0, RATE, (440, 480), 2.0, 4.0, -10.0)
    assert np.all(ringback[int(2.1 * RATE) :] == 0) and rms_dbfs(ringback[: 2 * RATE]) > -11


def test_pink_noise_loses_3_db_per_octave():
    x = colored_noise(20.0, RATE, -20.0, np.random.default_rng(0), exponent=1.0)
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)

    def band(lo: float) -> float:
        return float(spectrum[(freqs >= lo) & (freqs < 2 * lo)].sum())

    # equal power per octave: 1/f density integrated over an octave is constant
    assert 10 * np.log10(band(1000) / band(250)) == pytest.approx(0.0, abs=1.0)


def test_every_kind_is_deterministic_and_bounded():
    for kind in (*KINDS, "mix"):
        a = nonspeech(kind, 1.5, RATE, np.random.default_rng(7))
        b = nonspeech(kind, 1.5, RATE, np.random.default_rng(7))
        assert np.array_equal(a, b) and a.shape == (12000,) and np.isfinite(a).all() and np.abs(a).max() <= 1.0
    assert not np.any(nonspeech("silence", 1.0, RATE, np.random.default_rng(0)))
    with pytest.raises(ConfigError, match="unknown non-speech kind"):
        nonspeech("speech", 1.0, RATE, np.random.default_rng(0))


def test_corpus_builder_writes_empty_transcripts_of_every_kind(tmp_path, fsdd_files):
    speech = write_manifest(
        tmp_path / "speech.jsonl", [Utterance(f.stem, str(f), f.stem.split("_")[0]) for f in fsdd_files[:5]]
    )
    config = NonSpeechConfig(count=20, seed=3, min_seconds=0.5, max_seconds=1.0, crosstalk_share=0.2)
    path = build_nonspeech(tmp_path, "train", config, speech)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 20 and all(r["text"] == "" for r in rows)
    kinds = {r["speaker"] for r in rows}
    assert "crosstalk" in kinds and len(kinds & set(GENERATED)) >= 12
    for r in rows[:5]:
        audio = load_audio(tmp_path / r["audio"])
        assert audio.sample_rate == RATE and 0.5 <= audio.duration <= 1.0
        assert audio.duration == pytest.approx(r["duration"], abs=1e-3)
    crosstalk = [r for r in rows if r["speaker"] == "crosstalk"]
    assert all(rms_dbfs(load_audio(tmp_path / r["audio"]).channel(0)) < -38 for r in crosstalk)
    build_nonspeech(tmp_path / "again", "train", config, speech)  # the same config: the same files
    for a, b in zip(
        sorted((tmp_path / "train").iterdir()), sorted((tmp_path / "again" / "train").iterdir()), strict=True
    ):
        assert a.name == b.name and np.array_equal(load_audio(a).samples, load_audio(b).samples)
    with pytest.raises(ConfigError):
        NonSpeechConfig(count=0)
