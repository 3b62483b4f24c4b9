"""The library-backed aligner against a plain dynamic programme kept here, and against jiwer.

The reference DP is the textbook Levenshtein table with Kaldi's backtrace rule written out (from the end: a
match or substitution only when strictly cheaper than both gaps, else a deletion when cheaper than an insertion,
else an insertion), so the S/D/I split of every random case must agree, not only the total.
"""

from __future__ import annotations

import random

import jiwer
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gruasr.evaluation.align import align, edit_distance
from gruasr.evaluation.metrics import ErrorCounts
from gruasr.evaluation.report import aligned_line

Pair = tuple[str | None, str | None]


def reference_align(ref: list[str], hyp: list[str]) -> tuple[list[Pair], tuple[int, int, int, int]]:
    """O(n m) Levenshtein table and Kaldi's backtrace; returns the pairs and (hits, sub, del, ins)."""
    n, m = len(ref), len(hyp)
    cost = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        cost[i][0] = i
    for j in range(m + 1):
        cost[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            diagonal = cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1])
            cost[i][j] = min(diagonal, cost[i - 1][j] + 1, cost[i][j - 1] + 1)
    pairs: list[Pair] = []
    hits = sub = dels = ins = 0
    i, j = n, m
    while i or j:
        diagonal = cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]) if i and j else None
        deletion = cost[i - 1][j] + 1 if i else None
        insertion = cost[i][j - 1] + 1 if j else None
        gaps = min(x for x in (deletion, insertion) if x is not None)
        if diagonal is not None and diagonal < gaps:
            hits, sub = (hits + 1, sub) if ref[i - 1] == hyp[j - 1] else (hits, sub + 1)
            pairs.append((ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif deletion is not None and (insertion is None or deletion < insertion):
            dels += 1
            pairs.append((ref[i - 1], None))
            i -= 1
        else:
            ins += 1
            pairs.append((None, hyp[j - 1]))
            j -= 1
    pairs.reverse()
    return pairs, (hits, sub, dels, ins)


def _random_case(rng: random.Random, vocab: int, longest: int) -> tuple[list[str], list[str]]:
    words = [f"w{k}" for k in range(vocab)]
    return rng.choices(words, k=rng.randint(0, longest)), rng.choices(words, k=rng.randint(0, longest))


@pytest.mark.parametrize("seed", range(4))
def test_alignment_equals_the_reference_dp_on_random_cases(seed):
    rng = random.Random(seed)
    for _ in range(500):
        ref, hyp = _random_case(rng, vocab=rng.choice([2, 4, 8]), longest=12)
        a = align(ref, hyp)
        pairs, counts = reference_align(ref, hyp)
        assert (a.hits, a.sub, a.dels, a.ins) == counts, (ref, hyp)
        assert list(a.pairs) == pairs
        assert edit_distance(ref, hyp) == a.errors
        assert a.hits + a.sub + a.dels == len(ref) and a.hits + a.sub + a.ins == len(hyp)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from("abcde"), max_size=10), st.lists(st.sampled_from("abcde"), max_size=10))
def test_error_totals_equal_jiwer(ref, hyp):
    """jiwer (rapidfuzz inside) may split a tie differently, but the number of errors is the same."""
    if not ref:  # jiwer refuses an empty reference
        return
    words = jiwer.process_words(" ".join(ref), " ".join(hyp))
    assert align(ref, hyp).errors == words.substitutions + words.deletions + words.insertions
    assert edit_distance(ref, hyp) == sum(reference_align(ref, hyp)[1][1:])


def test_a_thousand_word_transcript_scores_like_the_reference():
    rng = random.Random(7)
    words = [f"w{k}" for k in range(40)]
    ref = rng.choices(words, k=1000)
    hyp = [w if rng.random() < 0.8 else rng.choice(words) for w in ref]
    del hyp[100:110]
    hyp[500:500] = ["extra"] * 5
    counts = ErrorCounts()
    counts.add(" ".join(ref), " ".join(hyp))
    _, (_, sub, dels, ins) = reference_align(ref, hyp)
    assert (counts.sub, counts.dels, counts.ins) == (sub, dels, ins)
    assert counts.wer == pytest.approx(jiwer.wer(" ".join(ref), " ".join(hyp)), abs=1e-12)
    assert counts.char_errors == round(jiwer.cer(" ".join(ref), " ".join(hyp)) * len(" ".join(ref)))


def test_errs_lines_keep_the_ref_hyp_notation():
    assert aligned_line("a b c", "a x c d") == "a (b->x) c (*->d)"
    assert aligned_line("the cat", "") == "(the->*) (cat->*)"
    assert aligned_line("", "hello") == "(*->hello)"
