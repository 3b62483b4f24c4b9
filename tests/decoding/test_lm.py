"""Modified Kneser-Ney against probabilities computed by hand, normalization, pruning, and the ARPA round trip."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gruasr import ConfigError
from gruasr.decoding.lm import (
    FALLBACK,
    Discounts,
    NGramLM,
    build_arpa,
    build_kneser_ney,
    modified_discounts,
    write_arpa,
)

#: Bigram counts of this corpus: (<s> b) 4, (b </s>) 3, (a </s>) 2, (<s> a) 1, (b a) 1, so the counts of counts
#: are n1=2, n2=1, n3=1, n4=1: Y = 2/(2+2) = 1/2, D1 = 1 - 2(1/2)(1/2) = 1/2, D2 = 2 - 3(1/2)(1/1) = 1/2,
#: D3+ = 3 - 4(1/2)(1/1) = 1. Unigram continuation counts: a 2 (after <s>, b), b 1 (after <s>), </s> 2 (after a, b),
#: total 5; their counts of counts (n1=1, n2=2, n3=0) give no valid discounts: the fallback (1/2, 1, 3/2).
#: Unigram gamma = (1/2 * 1 + 1 * 2) / 5 = 1/2, spread over 4 words (a, b, </s>, <unk>): 1/8 each.
CORPUS = ["b a", "b", "b", "b", "a"]
UNIGRAM = {"a": (2 - 1) / 5 + 1 / 8, "b": (1 - 0.5) / 5 + 1 / 8, "</s>": (2 - 1) / 5 + 1 / 8, "<unk>": 1 / 8}


def _lm(tmp_path, sentences, order, prune=None) -> NGramLM:
    return NGramLM.from_arpa(write_arpa(build_kneser_ney(sentences, order, prune), tmp_path / "lm.arpa"))


def _p(lm: NGramLM, history: tuple[str, ...], word: str) -> float:
    return math.exp(lm.score(history, word)[0])


def test_discounts_follow_chen_and_goodman():
    # n1=3, n2=2, n3=1, n4=1: Y = 3/7; D1 = 1 - 2(3/7)(2/3) = 3/7; D2 = 2 - 3(3/7)(1/2) = 19/14; D3+ = 3 - 4(3/7) = 9/7
    d = modified_discounts([1, 1, 1, 2, 2, 3, 4, 9])
    assert (d.d1, d.d2, d.d3) == pytest.approx((3 / 7, 19 / 14, 9 / 7))
    assert (d(0), d(1), d(2), d(3), d(50)) == pytest.approx((0, 3 / 7, 19 / 14, 9 / 7, 9 / 7))
    assert modified_discounts([1, 2, 3]) == FALLBACK  # no n4
    assert modified_discounts([1, 2, 3, 3, 3, 3, 3, 4]) == FALLBACK  # D2 = 2 - 3 (1/3) 5 < 0
    assert Discounts(0.5, 1.0, 1.5)(2) == 1.0


def test_unigram_model_by_hand(tmp_path):
    """Order 1, raw counts a 3, b 1, c 1, </s> 2 (total 7): fallback discounts; gamma = (0.5*2 + 1 + 1.5)/7 = 1/2
    over 5 words (a, b, c, </s>, <unk>)."""
    lm = _lm(tmp_path, ["a a b", "a c"], 1)
    expected = {"a": 1.5 / 7 + 0.1, "b": 0.5 / 7 + 0.1, "c": 0.5 / 7 + 0.1, "</s>": 1 / 7 + 0.1, "<unk>": 0.1}
    for word, p in expected.items():
        assert _p(lm, (), word) == pytest.approx(p, rel=1e-5), word
    assert _p(lm, (), "never-seen") == pytest.approx(0.1, rel=1e-5)


def test_bigram_model_by_hand(tmp_path):
    lm = _lm(tmp_path, CORPUS, 2)
    for word, p in UNIGRAM.items():
        assert _p(lm, ("zz",), word) == pytest.approx(p, rel=1e-5), word  # an unseen history backs off fully
    # after <s>: b 4, a 1 (total 5); gamma = (D1 * 1 + D3 * 1) / 5 = 3/10
    assert _p(lm, ("<s>",), "b") == pytest.approx((4 - 1) / 5 + 0.3 * UNIGRAM["b"], rel=1e-5)
    assert _p(lm, ("<s>",), "a") == pytest.approx((1 - 0.5) / 5 + 0.3 * UNIGRAM["a"], rel=1e-5)
    assert _p(lm, ("<s>",), "</s>") == pytest.approx(0.3 * UNIGRAM["</s>"], rel=1e-5)
    # after b: </s> 3, a 1 (total 4); gamma = (D1 + D3) / 4 = 3/8
    assert _p(lm, ("b",), "</s>") == pytest.approx((3 - 1) / 4 + 3 / 8 * UNIGRAM["</s>"], rel=1e-5)
    assert _p(lm, ("b",), "b") == pytest.approx(3 / 8 * UNIGRAM["b"], rel=1e-5)
    # after a: </s> 2 (total 2); gamma = D2 / 2 = 1/4
    assert _p(lm, ("a",), "</s>") == pytest.approx((2 - 0.5) / 2 + 1 / 4 * UNIGRAM["</s>"], rel=1e-5)
    assert _p(lm, ("a",), "a") == pytest.approx(1 / 4 * UNIGRAM["a"], rel=1e-5)


def test_count_cutoffs_move_pruned_mass_to_the_backoff(tmp_path):
    """prune=(0, 1) drops the bigrams seen once, (<s> a) and (b a); their discounted mass joins the back-off:
    after <s>, gamma = 1 - (4 - 1)/5 = 2/5; after b, gamma = 1 - (3 - 1)/4 = 1/2."""
    model = build_kneser_ney(CORPUS, 2, prune=[0, 1])
    assert set(model[2]) == {("<s>", "b"), ("b", "</s>"), ("a", "</s>")}
    lm = NGramLM(model)
    assert _p(lm, ("<s>",), "a") == pytest.approx(0.4 * UNIGRAM["a"], rel=1e-5)
    assert _p(lm, ("<s>",), "b") == pytest.approx(3 / 5 + 0.4 * UNIGRAM["b"], rel=1e-5)
    assert _p(lm, ("b",), "a") == pytest.approx(0.5 * UNIGRAM["a"], rel=1e-5)
    assert _p(lm, ("b",), "</s>") == pytest.approx(2 / 4 + 0.5 * UNIGRAM["</s>"], rel=1e-5)


def test_pruning_keeps_the_histories_of_kept_ngrams():
    corpus = ["a b c"] * 3 + ["a b d", "x b d"]
    model = build_kneser_ney(corpus, 3, prune=[0, 2, 0])  # bigrams seen at most twice go, trigrams stay
    assert ("x", "b", "d") in model[3]
    assert ("x", "b") in model[2]  # continuation count 1, kept as the history of (x b d)


_SENTENCES = st.lists(st.lists(st.sampled_from("abcde"), max_size=6).map(" ".join), min_size=1, max_size=12)


@settings(max_examples=40, deadline=None)
@given(_SENTENCES, st.integers(1, 4), st.sampled_from([None, [0, 1], [0, 0, 1], [0, 2, 1, 1]]))
def test_every_history_sums_to_one(sentences, order, prune):
    if not any(s.split() for s in sentences):
        with pytest.raises(ConfigError):
            build_kneser_ney(sentences, order, prune)
        return
    lm = NGramLM(build_kneser_ney(sentences, order, prune))
    words = sorted(lm.vocab)
    histories = [(), ("<s>",), ("a",), ("e", "a"), ("zz",), ("b", "zz"), ("<s>", "a", "b"), ("c", "c", "c")]
    for history in histories:
        total = sum(_p(lm, history, w) for w in words)
        assert total == pytest.approx(1.0, abs=1e-6), history


def test_empty_lines_are_skipped(tmp_path):
    with_blanks = tmp_path / "blanks.txt"
    with_blanks.write_text("yes no\n\n   \nno\n\n")
    plain = tmp_path / "plain.txt"
    plain.write_text("yes no\nno\n")
    a = build_arpa(with_blanks, 2, tmp_path / "a.arpa").read_text()
    b = build_arpa(plain, 2, tmp_path / "b.arpa").read_text()
    assert a == b
    assert "<s> </s>" not in a


def test_build_arpa_prunes_and_rejects_bad_cutoffs(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("a b c\na b c\na b d\n")
    full = NGramLM.from_arpa(build_arpa(text, 3, tmp_path / "full.arpa"))
    pruned = NGramLM.from_arpa(build_arpa(text, 3, tmp_path / "pruned.arpa", prune=[0, 1, 1]))
    assert len(pruned._tables[3]) < len(full._tables[3])
    with pytest.raises(ConfigError, match="unigrams"):
        build_kneser_ney(["a b"], 2, prune=[1, 1])
    with pytest.raises(ConfigError, match=">= 0"):
        build_kneser_ney(["a b"], 2, prune=[0, -1])


def test_lm_build_command_prunes(tmp_path, capsys):
    from gruasr.cli.main import main

    text = tmp_path / "t.txt"
    text.write_text("a b c\na b c\na b d\n\n")
    out = tmp_path / "lm.arpa"
    assert main(["lm", "build", "--text", str(text), "--order", "3", "--prune", "0", "1", "--out", str(out)]) == 0
    assert set(NGramLM.from_arpa(out)._tables[3]) == {("<s>", "a", "b"), ("a", "b", "c"), ("b", "c", "</s>")}
    assert main(["lm", "build", "--text", str(text), "--prune", "2", "--out", str(out)]) == 1
    assert "unigrams" in capsys.readouterr().err
