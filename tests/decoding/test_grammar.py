"""The phrase grammar (Vosk's phrase_list): what it accepts, that it is a distribution, and that the beam search
held to it outputs only phrase sequences, even when the audio says something else."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from gruasr import ConfigError
from gruasr.data.tokens import TokenTable
from gruasr.decoding.beam import BeamConfig, Lexicon, prefix_beam_search, prefix_beam_search_nbest
from gruasr.decoding.grammar import PhraseGrammar
from gruasr.decoding.lm import EOS

MENU = ["yes", "no", "operator", "one", "one two", "two"]


def test_it_accepts_phrase_sequences_and_nothing_else():
    grammar = PhraseGrammar(MENU)
    for text in ["", "yes", "no", "one two", "one", "two", "yes no operator", "one two one", "one one two two"]:
        assert grammar.accepts(text), text
    for text in ["maybe", "yes maybe", "operator operators", "ye", "no yes please"]:
        assert not grammar.accepts(text), text
    only_pair = PhraseGrammar(["one two"])
    assert only_pair.accepts("one two one two") and not only_pair.accepts("one") and not only_pair.accepts("two")


def test_each_state_is_a_distribution_over_words_and_the_end():
    grammar = PhraseGrammar(MENU)
    words = sorted(grammar.words) + [EOS]
    frontier = [grammar.start()]
    seen = set()
    while frontier:  # every state reachable from the start (the trie loop is finite)
        state = frontier.pop()
        if state in seen:
            continue
        seen.add(state)
        scored = [grammar.score(state, w) for w in words]
        assert math.fsum(math.exp(lp) for lp, _ in scored) == pytest.approx(1.0)
        frontier += [after for (lp, after), w in zip(scored, words, strict=True) if lp > -math.inf and w != EOS]
    assert len(seen) >= 3  # the start, inside "one two" (which may also end), and after a complete phrase
    assert grammar.score(grammar.start(), "maybe")[0] == -math.inf


def test_ended_and_live_sequences_hold_all_the_mass():
    """The mass of the sequences that ended before N words plus that of the N-word prefixes is 1."""
    grammar = PhraseGrammar(["a", "b c"])
    ended = live = 0.0
    for n in range(0, 8):
        for words in itertools.product(sorted(grammar.words), repeat=n):
            state, logp = grammar.start(), 0.0
            for w in words:
                lp, state = grammar.score(state, w)
                logp += lp
            if n < 7:
                ended += math.exp(logp + grammar.score(state, EOS)[0])
            else:
                live += math.exp(logp)
    assert 0.8 < ended < 1 and ended + live == pytest.approx(1.0)


def test_refuses_an_empty_phrase_list():
    with pytest.raises(ConfigError, match="at least one"):
        PhraseGrammar(["", "  "])


TABLE = TokenTable()


def spelled(text: str, confidence: float = 0.9) -> torch.Tensor:
    """Posteriors that spell `text` one symbol per step with `confidence`, the rest spread over the others."""
    rows = []
    for ch in text:
        row = torch.full((len(TABLE),), (1 - confidence) / (len(TABLE) - 1))
        row[TABLE.symbols.index(ch)] = confidence
        rows.append(row)
        blank = torch.full((len(TABLE),), (1 - confidence) / (len(TABLE) - 1))
        blank[0] = confidence
        rows.append(blank)
    return torch.stack(rows).log()


def test_the_beam_search_held_to_the_grammar_outputs_only_phrases():
    grammar = PhraseGrammar(MENU)
    lexicon = Lexicon(grammar.words)
    config = BeamConfig(beam_size=32, lm_weight=1.0, word_bonus=0.0)
    assert prefix_beam_search(spelled("yes no"), TABLE, 0.04, config, grammar, lexicon).text == "yes no"
    assert prefix_beam_search(spelled("one two"), TABLE, 0.04, config, grammar, lexicon).text == "one two"
    # the audio says something outside the menu: the output is still a phrase sequence (or nothing)
    for said in ["yep", "operater", "now", "tree"]:
        hyps = prefix_beam_search_nbest(spelled(said, 0.6), TABLE, 0.04, config, grammar, lexicon, nbest=5)
        assert hyps and all(grammar.accepts(h.text) for h in hyps), (said, [h.text for h in hyps])
    free = prefix_beam_search(spelled("operater", 0.6), TABLE, 0.04, config)
    assert free.text == "operater"  # without the grammar, the spelling the audio gives
