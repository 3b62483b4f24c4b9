"""The prefix beam search with an unlimited beam and no pruning equals enumerating every CTC path.

For a tiny alphabet (blank, space, "a", "l") and a few steps, every one of the V**T label paths is collapsed
(repeats merged, blanks dropped), turned into its text (spaces normalised: a leading, trailing or doubled space
spells the same words), and its probability summed per text. The beam search must return exactly those texts
with exactly those log-probabilities (plus, with an LM, each text's weighted LM score and word bonuses), and
with a lexicon exactly the texts whose words are all in it. Doubled letters ("ll" needs a blank between the two
l's), repeats and spaces anywhere are all among the enumerated paths.
"""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gruasr.data.tokens import BLANK, TokenTable
from gruasr.decoding.beam import BeamConfig, Lexicon, prefix_beam_search, prefix_beam_search_nbest
from gruasr.decoding.lm import EOS, NGramLM, build_kneser_ney

TABLE = TokenTable((BLANK, " ", "a", "l"))
UNLIMITED = BeamConfig(beam_size=10**9, prune=-math.inf, lm_weight=0.7, word_bonus=0.3)
LM = NGramLM(build_kneser_ney(["a la", "all a", "la la la", "a", "al all"], order=2))
LEXICON = Lexicon(["a", "la", "all"])


def _logaddexp(a: float, b: float) -> float:
    return b if a == -math.inf else a + math.log1p(math.exp(b - a)) if a >= b else b + math.log1p(math.exp(a - b))


def enumerate_texts(log_probs: torch.Tensor) -> dict[str, float]:
    """text -> log of the summed probability of every path spelling it (brute force over V**T paths)."""
    lp = log_probs.double().tolist()
    out: dict[str, float] = {}
    for path in itertools.product(range(len(TABLE)), repeat=len(lp)):
        collapsed = [k for i, k in enumerate(path) if k != TABLE.blank and (i == 0 or path[i - 1] != k)]
        text = " ".join(TABLE.decode(collapsed).split())
        logp = sum(lp[t][k] for t, k in enumerate(path))
        out[text] = _logaddexp(out.get(text, -math.inf), logp)
    return out


def lm_score(text: str, config: BeamConfig) -> float:
    """What shallow fusion adds to a text: alpha * (LM log-probability with </s>) + beta per word."""
    words = text.split()
    state, total = LM.start(), 0.0
    for w in [*words, EOS]:
        logp, state = LM.score(state, w)
        total += config.lm_weight * logp
    return total + config.word_bonus * len(words)


_posteriors = st.integers(1, 6).flatmap(
    lambda steps: st.lists(
        st.lists(st.floats(0.01, 1.0), min_size=len(TABLE), max_size=len(TABLE)), min_size=steps, max_size=steps
    )
)


def _log_probs(rows: list[list[float]]) -> torch.Tensor:
    p = torch.tensor(rows, dtype=torch.float64)
    return (p / p.sum(dim=1, keepdim=True)).log().float()  # (T, V)


def _check(lp: torch.Tensor, expected: dict[str, float], lm: NGramLM | None, lexicon: Lexicon | None) -> None:
    got = prefix_beam_search_nbest(lp, TABLE, 0.04, UNLIMITED, lm, lexicon, nbest=10**9)
    assert {h.text for h in got} == set(expected)
    for h in got:
        assert h.score == pytest.approx(expected[h.text], abs=1e-6), h.text
    scores = [h.score for h in got]
    assert scores == sorted(scores, reverse=True)
    assert sum(h.confidence or 0.0 for h in got) == pytest.approx(1.0, abs=1e-9)
    best = prefix_beam_search(lp, TABLE, 0.04, UNLIMITED, lm, lexicon)
    assert best.text == got[0].text and best.score == got[0].score


@settings(max_examples=60, deadline=None)
@given(_posteriors)
def test_beam_equals_enumeration_without_lm(rows):
    lp = _log_probs(rows)
    _check(lp, enumerate_texts(lp), None, None)


@settings(max_examples=60, deadline=None)
@given(_posteriors)
def test_beam_equals_enumeration_with_lm(rows):
    lp = _log_probs(rows)
    expected = {text: logp + lm_score(text, UNLIMITED) for text, logp in enumerate_texts(lp).items()}
    _check(lp, expected, LM, None)


@settings(max_examples=60, deadline=None)
@given(_posteriors, st.booleans())
def test_beam_equals_enumeration_with_lexicon(rows, with_lm):
    lp = _log_probs(rows)
    expected = {
        text: logp + (lm_score(text, UNLIMITED) if with_lm else 0.0)
        for text, logp in enumerate_texts(lp).items()
        if all(w in LEXICON.words for w in text.split())
    }
    _check(lp, expected, LM if with_lm else None, LEXICON)


def test_enumeration_covers_doubled_letters_and_repeats():
    """The reference itself: 'l l' frames collapse to one l, 'l _ l' to a doubled one."""
    sure = torch.full((3, len(TABLE)), -30.0)
    for t, k in enumerate([3, 0, 3]):
        sure[t, k] = 0.0
    assert max(enumerate_texts(sure).items(), key=lambda kv: kv[1])[0] == "ll"
    sure[1] = sure[0]
    assert max(enumerate_texts(sure).items(), key=lambda kv: kv[1])[0] == "l"
