"""Alignment and error rates, cross-checked against jiwer; the report files."""

from __future__ import annotations

import json
import random

import jiwer
import pytest

from gruasr.evaluation.align import align, edit_distance
from gruasr.evaluation.metrics import ErrorCounts, score
from gruasr.evaluation.report import Recog, Report, aligned_line, write_report


def _random_pairs(seed: int, n: int = 300):
    rng = random.Random(seed)
    words = ["one", "two", "three", "four", "five", "oh", "yes", "no", "stop"]
    return [
        (" ".join(rng.choices(words, k=rng.randint(1, 9))), " ".join(rng.choices(words, k=rng.randint(0, 9))))
        for _ in range(n)
    ]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_wer_and_cer_equal_jiwer(seed):
    pairs = _random_pairs(seed)
    counts = score(pairs)
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    words = jiwer.process_words(refs, hyps)
    assert counts.wer == pytest.approx(words.wer, abs=1e-12)
    assert counts.errors == words.substitutions + words.deletions + words.insertions
    assert counts.cer == pytest.approx(jiwer.cer(refs, hyps), abs=1e-12)


def test_alignment_counts_and_pairs():
    a = align(["a", "b", "c", "d"], ["a", "c", "d", "e"])
    assert (a.hits, a.sub, a.dels, a.ins) == (3, 0, 1, 1)
    assert a.pairs == (("a", "a"), ("b", None), ("c", "c"), ("d", "d"), (None, "e"))
    tied = align(["the", "cat", "sat", "on", "the", "mat"], ["the", "cat", "sit", "on", "mat", "today"])
    assert (
        tied.errors
        == 3
        == edit_distance(["the", "cat", "sat", "on", "the", "mat"], ["the", "cat", "sit", "on", "mat", "today"])
    )
    assert aligned_line("a b c", "a x c d") == "a (b->x) c (*->d)"
    assert aligned_line("a b c", "a c") == "a (b->*) c"


def test_summary_line_format():
    counts = ErrorCounts()
    counts.add("a b c d", "a x c")
    assert counts.summary_line() == "WER 50.00% [2 / 4, 1 sub, 1 del, 0 ins]"
    assert counts.ser == 1.0


def test_report_files(tmp_path):
    report = Report(
        recogs=[Recog("u1", "yes no", "yes no", "spk1"), Recog("u2", "one two", "one", "spk2")],
        audio_seconds=4.0,
        decode_seconds=0.2,
        failed=[("u3", "empty file")],
    )
    data = write_report(report, tmp_path)
    for name in ("recogs.txt", "errs.txt", "wer-summary.txt", "report.json"):
        assert (tmp_path / name).is_file()
    loaded = json.loads((tmp_path / "report.json").read_text())
    assert loaded == json.loads(json.dumps(data))
    assert {"wer", "cer", "ser", "words", "sub", "del", "ins", "rtf"} <= set(loaded)
    assert loaded["wer"] == 0.25 and loaded["rtf"] == pytest.approx(0.05)
    assert loaded["per_speaker"]["spk2"]["wer"] == 0.5
    assert "u2:\tone (two->*)" in (tmp_path / "errs.txt").read_text()
    assert (tmp_path / "wer-summary.txt").read_text().startswith("WER 25.00% [1 / 4, 0 sub, 1 del, 0 ins]")
