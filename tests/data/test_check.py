"""Per-file checks: bad files are listed with a reason, good ones get their duration."""

from __future__ import annotations

import numpy as np
import pytest

from gruasr.audio.io import save_wav
from gruasr.data.corpora.check import CheckLimits, Rejected, check_utterances, write_rejected
from gruasr.data.manifest import Utterance
from gruasr.errors import ConfigError

from .helpers import rejected_rows, write_raw_be16, write_tone


@pytest.fixture
def corpus(tmp_path):
    """One good file and one of each kind of bad file."""
    write_tone(tmp_path / "good.wav", 1.25)
    (tmp_path / "empty.wav").write_bytes(b"")
    (tmp_path / "garbage.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunkjunkjunk" * 3)
    write_tone(tmp_path / "short.wav", 0.05)
    write_tone(tmp_path / "long.wav", 7.0)
    save_wav(tmp_path / "silent.wav", np.zeros(8000, dtype=np.float32), 8000)
    write_tone(tmp_path / "wideband.wav", 1.0, sample_rate=16000)
    (tmp_path / "odd.raw").write_bytes(b"\x00\x01\x02")
    write_raw_be16(tmp_path / "good.raw", np.full(16000, 0.1, dtype=np.float32))
    return tmp_path


def _utt(root, name, **kw):
    return Utterance(name, str(root / name), "some words", **kw)


def test_each_bad_file_is_listed_with_its_reason(corpus):
    utts = [
        _utt(corpus, "good.wav"),
        _utt(corpus, "empty.wav"),
        _utt(corpus, "garbage.wav"),
        _utt(corpus, "missing.wav"),
        _utt(corpus, "short.wav"),
        _utt(corpus, "long.wav"),
        _utt(corpus, "silent.wav"),
        _utt(corpus, "wideband.wav"),
        _utt(corpus, "odd.raw", sample_rate=16000, encoding="s16be"),
        _utt(corpus, "good.raw", sample_rate=16000, encoding="s16be"),
        Utterance("notext", str(corpus / "good.wav"), " "),
    ]
    result = check_utterances(utts, CheckLimits(min_duration=0.1, max_duration=5.0, sample_rate=8000))
    assert [u.id for u in result.good] == ["good.wav"]
    reasons = {r.id: r.reason for r in result.rejected}
    assert set(reasons) == {u.id for u in utts} - {"good.wav"}
    assert reasons["empty.wav"] == "empty file"
    assert "not readable audio" in reasons["garbage.wav"]
    assert reasons["missing.wav"] == "no such file"
    assert reasons["short.wav"].startswith("too short: 0.050 s")
    assert reasons["long.wav"].startswith("too long: 7.000 s")
    assert reasons["silent.wav"].startswith("silent")
    assert reasons["wideband.wav"] == "sample rate 16000 Hz, expected 8000 Hz"
    assert "whole number" in reasons["odd.raw"]
    assert reasons["good.raw"] == "sample rate 16000 Hz, expected 8000 Hz"
    assert reasons["notext"] == "empty transcript"
    assert result.good[0].duration == pytest.approx(1.25)


def test_raw_files_get_their_duration_and_rate_is_optional(corpus):
    utts = [_utt(corpus, "good.raw", sample_rate=16000, encoding="s16be")]
    result = check_utterances(utts, CheckLimits())
    assert not result.rejected
    assert result.good[0].duration == 1.0


def test_segments_are_checked_against_the_file(corpus):
    utts = [
        _utt(corpus, "good.wav", start=0.25, duration=0.5),
        Utterance("to-end", str(corpus / "good.wav"), "x", start=1.0),
        Utterance("overshoot-cut", str(corpus / "good.wav"), "x", start=1.0, duration=0.5),
        Utterance("past-end", str(corpus / "good.wav"), "x", start=0.5, duration=2.0),
        Utterance("starts-after", str(corpus / "good.wav"), "x", start=2.0, duration=0.5),
        Utterance("bad-channel", str(corpus / "good.wav"), "x", channel=1),
    ]
    result = check_utterances(utts, CheckLimits(min_duration=0.1))
    good = {u.id: (u.start, u.duration) for u in result.good}
    assert good == {"good.wav": (0.25, 0.5), "to-end": (1.0, 0.25), "overshoot-cut": (1.0, 0.25)}
    reasons = {r.id: r.reason for r in result.rejected}
    assert "past the audio's end" in reasons["past-end"]
    assert "outside the audio" in reasons["starts-after"]
    assert "channel 1" in reasons["bad-channel"]


def test_headers_only_does_not_decode(corpus):
    utts = [_utt(corpus, "silent.wav")]
    assert check_utterances(utts, CheckLimits(decode=False)).good  # an all-zero file has a fine header
    assert check_utterances(utts, CheckLimits(decode=True)).rejected


def test_limits_are_validated():
    with pytest.raises(ConfigError, match="max_duration"):
        CheckLimits(min_duration=2.0, max_duration=1.0)
    with pytest.raises(ConfigError, match="sample_rate"):
        CheckLimits(sample_rate=0)


def test_rejected_tsv_has_one_clean_line_per_file(corpus, tmp_path):
    result = check_utterances([_utt(corpus, "empty.wav"), _utt(corpus, "missing.wav")], CheckLimits())
    path = write_rejected(tmp_path / "out" / "rejected.tsv", [*result.rejected, Rejected("x\ty", "a\nb", "c\td")])
    rows = rejected_rows(path)
    assert rows["empty.wav"] == (str(corpus / "empty.wav"), "empty file")
    assert rows["missing.wav"][1] == "no such file"
    assert rows["x y"] == ("a b", "c d")
