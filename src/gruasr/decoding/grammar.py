"""A phrase grammar as a language model for the prefix beam search: recognition restricted to a list of phrases.

This is what a Vosk `phrase_list` means (an IVR menu: "yes", "no", "operator", the digits): an utterance is one
or more of the phrases, one after another, and nothing else. The grammar is a loop over a word trie of the
phrases, run as a nondeterministic automaton: a state is the set of phrase prefixes the words so far can be in
(one phrase may be the beginning of another: "one" and "one two"). A word that no alternative allows scores
-inf, so the search drops that prefix; an allowed word scores log(1 / n), n the number of choices (next words,
plus the end when a phrase is complete) at that state, so the grammar is a proper distribution over the phrase
sequences it accepts. The end (`</s>`) is allowed after a complete phrase, or before any word (nothing said).

It has NGramLM's scoring interface (`start`, `score`), so beam.prefix_beam_search takes it as its `lm`; a state
is a tuple of the alternatives' prefixes, each as its words joined by spaces ("" is the start of a phrase).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from functools import lru_cache

from gruasr.decoding.lm import EOS
from gruasr.errors import ConfigError

NEG_INF = -math.inf


class PhraseGrammar:
    """`PhraseGrammar(["yes", "no", "one two"])`: accepts "yes", "no", "one two", "yes one two no", ...;
    `words` is every word of the phrases (for a Lexicon)."""

    def __init__(self, phrases: Iterable[str]) -> None:
        cleaned = sorted({" ".join(p.split()) for p in phrases} - {""})
        if not cleaned:
            raise ConfigError("a phrase grammar needs at least one non-empty phrase")
        self.phrases: tuple[str, ...] = tuple(cleaned)
        self._next: dict[str, set[str]] = {}  # a phrase prefix ("" for none) -> the words that may follow it
        self._complete: set[str] = set(cleaned)
        for phrase in cleaned:
            words = phrase.split()
            for i, word in enumerate(words):
                self._next.setdefault(" ".join(words[:i]), set()).add(word)
        self.words: frozenset[str] = frozenset(w for p in cleaned for w in p.split())
        self._choices = lru_cache(maxsize=65536)(self._choices_uncached)

    def start(self) -> tuple[str, ...]:
        return ("",)

    def _choices_uncached(self, state: tuple[str, ...]) -> tuple[dict[str, tuple[str, ...]], bool]:
        """The words allowed after `state` with the state each leads to, and whether the end is allowed."""
        moves: dict[str, set[str]] = {}
        ends = state == self.start()
        for prefix in state:
            for word in self._next.get(prefix, ()):
                moves.setdefault(word, set()).add(f"{prefix} {word}".strip())
            if prefix in self._complete:
                ends = True
                for word in self._next[""]:  # the next phrase starts
                    moves.setdefault(word, set()).add(word)
        return {w: tuple(sorted(s)) for w, s in moves.items()}, ends

    def score(self, state: tuple[str, ...], word: str) -> tuple[float, tuple[str, ...]]:
        """Natural-log probability of `word` (or EOS) after `state`, and the new state; -inf where the grammar
        does not allow it (the state is then returned unchanged)."""
        moves, ends = self._choices(state)
        choices = len(moves) + int(ends)
        if word == EOS:
            return (-math.log(choices) if ends else NEG_INF), state
        after = moves.get(word)
        if after is None:
            return NEG_INF, state
        return -math.log(choices), after

    def accepts(self, text: str) -> bool:
        """Whether the grammar allows this word sequence (the empty one included)."""
        state, total = self.start(), 0.0
        for word in [*text.split(), EOS]:
            logp, state = self.score(state, word)
            total += logp
        return total > NEG_INF
