"""Prefix beam search on hand-built posteriors: merged spaces, merged final texts, doubled letters, n-best."""

from __future__ import annotations

import math

import pytest
import torch

from gruasr import ConfigError
from gruasr.data.tokens import BLANK, TokenTable
from gruasr.decoding.beam import BeamConfig, prefix_beam_search, prefix_beam_search_nbest

TABLE = TokenTable((BLANK, " ", "a", "l"))
WIDE = BeamConfig(beam_size=64, prune=-math.inf)


def posteriors(*rows: dict[str, float]) -> torch.Tensor:
    """One step per dict {symbol: probability} ('_' is blank, ' ' space); unlisted symbols get probability 0."""
    p = torch.zeros(len(rows), len(TABLE))
    for t, row in enumerate(rows):
        for symbol, prob in row.items():
            p[t, TABLE.symbols.index(BLANK if symbol == "_" else symbol)] = prob
    return p.log()


def test_a_leading_space_keeps_its_mass():
    """Paths (space, a) .36, (a, a) .24, (a, _) .16 all spell "a": P = .76 (paths through the leading space were
    once dropped, leaving .40)."""
    lp = posteriors({" ": 0.6, "a": 0.4}, {"a": 0.6, "_": 0.4})
    hyp = prefix_beam_search(lp, TABLE, 0.04, WIDE)
    assert hyp.text == "a"
    assert hyp.score == pytest.approx(math.log(0.76), abs=1e-6)


def test_a_doubled_space_keeps_its_mass():
    """a, space, blank, space, a: the second space is a new token after the blank; both spell "a a"."""
    lp = posteriors({"a": 1.0}, {" ": 1.0}, {"_": 1.0}, {" ": 0.5, "a": 0.5}, {"a": 1.0})
    hyps = prefix_beam_search_nbest(lp, TABLE, 0.04, WIDE, nbest=5)
    assert [(h.text, round(math.exp(h.score), 6)) for h in hyps] == [("a a", 1.0)]


def test_a_trailing_space_is_the_same_text():
    """'a' then space-or-blank: "a" and "a " are one text, probability 1 (not the larger half, .5)."""
    lp = posteriors({"a": 1.0}, {" ": 0.5, "_": 0.5})
    hyps = prefix_beam_search_nbest(lp, TABLE, 0.04, WIDE)
    assert len(hyps) == 1 and hyps[0].text == "a"
    assert hyps[0].score == pytest.approx(0.0, abs=1e-6) and hyps[0].confidence == pytest.approx(1.0)


def test_doubled_letters_need_a_blank_between():
    assert prefix_beam_search(posteriors({"l": 1.0}, {"l": 1.0}), TABLE, 0.04, WIDE).text == "l"
    assert prefix_beam_search(posteriors({"l": 1.0}, {"_": 1.0}, {"l": 1.0}), TABLE, 0.04, WIDE).text == "ll"
    hyp = prefix_beam_search(posteriors({"a": 1.0}, {"l": 1.0}, {"_": 1.0}, {"l": 1.0}), TABLE, 0.04, WIDE)
    assert hyp.text == "all" and [w.word for w in hyp.words] == ["all"]


def test_nbest_lists_distinct_texts_best_first():
    lp = posteriors({"a": 0.5, "l": 0.3, "_": 0.2}, {"_": 0.7, " ": 0.3})
    hyps = prefix_beam_search_nbest(lp, TABLE, 0.04, WIDE, nbest=3)
    assert [h.text for h in hyps] == ["a", "l", ""]
    assert [math.exp(h.score) for h in hyps] == pytest.approx([0.5, 0.3, 0.2], abs=1e-6)
    assert [h.confidence for h in hyps] == pytest.approx([0.5, 0.3, 0.2], abs=1e-6)
    assert len(prefix_beam_search_nbest(lp, TABLE, 0.04, WIDE, nbest=1)) == 1
    with pytest.raises(ConfigError, match="nbest"):
        prefix_beam_search_nbest(lp, TABLE, 0.04, WIDE, nbest=0)
