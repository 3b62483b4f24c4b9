"""`gruasr data stats`: numbers, histogram, JSON, and exit codes."""

from __future__ import annotations

import json

import pytest

from gruasr.cli.main import main
from gruasr.data.manifest import Utterance, write_manifest
from gruasr.data.stats import histogram, manifest_stats

from .helpers import tone, write_raw_be16, write_tone


@pytest.fixture
def manifest(tmp_path):
    write_tone(tmp_path / "a.wav", 1.0)
    write_tone(tmp_path / "b.wav", 0.5)  # no duration field: read from the header
    write_raw_be16(tmp_path / "c.raw", tone(3.0, 16000))
    utts = [
        Utterance("a", str(tmp_path / "a.wav"), "yes no yes", duration=1.0, speaker="s1"),
        Utterance("b", str(tmp_path / "b.wav"), "yes", speaker="s2"),
        Utterance(
            "c", str(tmp_path / "c.raw"), "stop yes", start=1.0, speaker="s1", sample_rate=16000, encoding="s16be"
        ),
        Utterance("d", str(tmp_path / "a.wav"), "go", start=0.0, duration=0.25),
    ]
    return write_manifest(tmp_path / "m.jsonl", utts)


def test_numbers(manifest):
    stats = manifest_stats(manifest, top=2, bins=4)
    assert stats.utterances == 4
    assert stats.seconds == pytest.approx(1.0 + 0.5 + 2.0 + 0.25)
    assert stats.hours == pytest.approx(3.75 / 3600)
    assert (stats.speakers, stats.without_speaker) == (2, 1)
    assert (stats.min_duration, stats.max_duration) == (0.25, 2.0)
    assert stats.mean_duration == pytest.approx(3.75 / 4)
    assert stats.durations_from_headers == 2
    assert (stats.words, stats.vocabulary) == (7, 4)
    assert stats.top_words == [("yes", 4), ("go", 1)]
    assert [b.count for b in stats.histogram] == [2, 1, 0, 1]
    assert not stats.unreadable


def test_histogram_edges():
    bins = histogram([0.0, 1.0, 2.0, 10.0], 5)
    assert [b.count for b in bins] == [2, 1, 0, 0, 1] and bins[-1].hi == 10.0  # [0, 2) [2, 4) ... [8, 10]
    assert [b.count for b in histogram([3.0, 3.0], 5)] == [2]
    assert histogram([], 3) == []


def test_cli_text(manifest, capsys):
    assert main(["data", "stats", str(manifest), "--bins", "4", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "utterances    4" in out
    assert "speakers      2 (1 utterances without one)" in out
    assert "min 0.25" in out and "max 2.00" in out
    assert "words         7 (vocabulary 4)" in out
    assert "top words     yes 4, go 1, no 1" in out
    bars = [line for line in out.splitlines() if line.startswith("  ") and " - " in line]
    assert len(bars) == 4 and bars[0].count("█") == 40 and bars[2].count("█") == 0


def test_cli_json(manifest, capsys):
    assert main(["data", "stats", str(manifest), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["utterances"] == 4 and data["seconds"] == pytest.approx(3.75)
    assert data["top_words"][0] == {"word": "yes", "count": 4}
    assert sum(b["count"] for b in data["histogram"]) == 4


def test_unreadable_audio_is_listed_and_fails(tmp_path, capsys):
    path = write_manifest(tmp_path / "m.jsonl", [Utterance("gone", str(tmp_path / "gone.wav"), "x")])
    assert main(["data", "stats", str(path)]) == 1
    out = capsys.readouterr().out
    assert "unreadable    1" in out and "gone: " in out and "no such file" in out


def test_missing_or_bad_manifest_is_one_line_error(tmp_path, capsys):
    assert main(["data", "stats", str(tmp_path / "nope.jsonl")]) == 1
    assert capsys.readouterr().err.strip() == f"gruasr data: error: manifest not found: {tmp_path / 'nope.jsonl'}"
    (tmp_path / "bad.jsonl").write_text('{"id": "x"}\n')
    assert main(["data", "stats", str(tmp_path / "bad.jsonl")]) == 1
    assert "missing or non-string audio, text" in capsys.readouterr().err


def test_data_needs_a_subcommand(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["data"])
    assert stop.value.code == 2
    with pytest.raises(SystemExit):
        main(["data", "--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in ("an4", "fsdd", "kaldi", "folder", "stats"))
