"""CTC prefix beam search (Hannun et al. 2014, "First-pass large vocabulary continuous speech recognition using
bi-directional recurrent DNNs"), with optional word n-gram language-model fusion and a lexicon.

Each hypothesis is a prefix of tokens with two acoustic scores: p_b (paths ending in blank) and p_nb (ending in
its last token). When a space closes a word, the word's LM log-probability times `lm_weight` plus
`word_bonus` is added (shallow fusion); at the end, the last word and </s> are scored. With a lexicon, a
prefix survives only while its current partial word is the beginning of a lexicon word, so every output word
is in the lexicon. Tokens whose log-probability at a step is below `prune` are not tried there.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
from torch import Tensor

from gruasr.data.tokens import TokenTable
from gruasr.decoding.hypothesis import Hypothesis, Word
from gruasr.decoding.lm import EOS, NGramLM
from gruasr.errors import ConfigError

NEG_INF = -math.inf


@dataclass(frozen=True)
class BeamConfig:
    beam_size: int = 16
    #: tokens below this log-probability at a step are not extended there (blank always is)
    prune: float = -10.0
    #: weight of the LM's natural-log probability (alpha) and bonus per word (beta)
    lm_weight: float = 0.5
    word_bonus: float = 1.0

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ConfigError(f"beam_size must be >= 1, got {self.beam_size}")


class Lexicon:
    """The words a decoder may output, with a prefix set for checking partial words."""

    def __init__(self, words: Iterable[str]) -> None:
        self.words = frozenset(w for w in words if w and not w.startswith("<"))
        if not self.words:
            raise ConfigError("lexicon is empty")
        self.prefixes = frozenset(w[:i] for w in self.words for i in range(1, len(w) + 1))

    @classmethod
    def from_file(cls, path: str) -> Lexicon:
        """One word per line (first column; a pronunciation dictionary's other columns are ignored)."""
        with open(path, encoding="utf-8") as f:
            return cls(line.split()[0].lower() for line in f if line.strip())


def _logadd(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    hi, lo = (a, b) if a > b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


@dataclass
class _Beam:
    p_b: float = NEG_INF
    p_nb: float = NEG_INF
    lm: float = 0.0  # weighted LM score plus word bonuses so far
    lm_state: tuple[str, ...] = ()
    partial: str = ""  # letters of the word being spelled
    steps: tuple[int, ...] = field(default_factory=tuple)  # emission step of each token of the prefix
    probs: tuple[float, ...] = field(default_factory=tuple)  # its probability there

    @property
    def acoustic(self) -> float:
        return _logadd(self.p_b, self.p_nb)


def prefix_beam_search(
    log_probs: Tensor,
    table: TokenTable,
    step_seconds: float,
    config: BeamConfig | None = None,
    lm: NGramLM | None = None,
    lexicon: Lexicon | None = None,
    length: int | None = None,
) -> Hypothesis:
    """Decode one utterance: log_probs (T, V); the first `length` steps are valid."""
    config = config or BeamConfig()
    lp = log_probs.detach().float().cpu().numpy()
    if length is not None:
        lp = lp[:length]
    space, blank = table.space, table.blank
    alpha, beta = config.lm_weight, config.word_bonus
    start_state = lm.start() if lm is not None else ()
    beams: dict[tuple[int, ...], _Beam] = {(): _Beam(p_b=0.0, lm_state=start_state)}

    def word_score(beam: _Beam, word: str) -> tuple[float, tuple[str, ...]]:
        if lm is None:  # no LM: the acoustic score alone (the word bonus balances the LM's cost per word)
            return 0.0, beam.lm_state
        logp, state = lm.score(beam.lm_state, word)
        return alpha * logp + beta, state

    for t in range(lp.shape[0]):
        row = lp[t]
        candidates = [int(c) for c in np.nonzero(row >= config.prune)[0] if c != blank]
        nxt: dict[tuple[int, ...], _Beam] = {}

        for prefix, beam in beams.items():
            total = beam.acoustic
            stay = _slot(nxt, prefix, beam)
            stay.p_b = _logadd(stay.p_b, total + float(row[blank]))
            last = prefix[-1] if prefix else None
            for c in candidates:
                p = float(row[c])
                if c == last:
                    stay.p_nb = _logadd(stay.p_nb, beam.p_nb + p)  # the same token continuing
                    source = beam.p_b + p  # a new, doubled token needs a blank in between
                else:
                    source = total + p
                if source == NEG_INF:
                    continue
                if c == space:
                    if not beam.partial:  # a space that closes no word adds nothing
                        continue
                    if lexicon is not None and beam.partial not in lexicon.words:
                        continue
                    score, state = word_score(beam, beam.partial)
                    ext = _slot(nxt, (*prefix, c), beam, (t, math.exp(p)), score, state, "")
                else:
                    partial = beam.partial + table.symbols[c]
                    if lexicon is not None and partial not in lexicon.prefixes:
                        continue
                    ext = _slot(nxt, (*prefix, c), beam, (t, math.exp(p)), partial=partial)
                ext.p_nb = _logadd(ext.p_nb, source)
        ranked = sorted(nxt.items(), key=lambda kv: kv[1].acoustic + kv[1].lm, reverse=True)
        beams = dict(ranked[: config.beam_size])

    best_prefix: tuple[int, ...] = ()
    best_score = NEG_INF
    for prefix, beam in beams.items():
        score = beam.acoustic + beam.lm
        if beam.partial:
            if lexicon is not None and beam.partial not in lexicon.words:
                continue
            word_lm, state = word_score(beam, beam.partial)
            score += word_lm
        else:
            state = beam.lm_state
        if lm is not None:
            score += alpha * lm.score(state, EOS)[0]
        if score > best_score:
            best_prefix, best_score = prefix, score
    if best_score == NEG_INF:  # nothing survived the lexicon: fall back to an empty result
        return Hypothesis("", (), NEG_INF)
    beam = beams[best_prefix]
    return Hypothesis(*_words(best_prefix, beam, table, step_seconds), best_score)


def _slot(
    nxt: dict[tuple[int, ...], _Beam],
    prefix: tuple[int, ...],
    parent: _Beam,
    emitted: tuple[int, float] | None = None,
    score: float = 0.0,
    lm_state: tuple[str, ...] | None = None,
    partial: str | None = None,
) -> _Beam:
    """The next step's beam for `prefix`, created from `parent` on first use: the parent's LM score plus
    `score`, and the new token's (step, probability) in `emitted` (None when the prefix did not grow)."""
    beam = nxt.get(prefix)
    if beam is None:
        beam = _Beam(
            lm=parent.lm + score,
            lm_state=parent.lm_state if lm_state is None else lm_state,
            partial=parent.partial if partial is None else partial,
            steps=parent.steps if emitted is None else (*parent.steps, emitted[0]),
            probs=parent.probs if emitted is None else (*parent.probs, emitted[1]),
        )
        nxt[prefix] = beam
    return beam


def _words(
    prefix: tuple[int, ...], beam: _Beam, table: TokenTable, step_seconds: float
) -> tuple[str, tuple[Word, ...]]:
    words: list[Word] = []
    letters: list[int] = []

    def close() -> None:
        if letters:
            text = table.decode(prefix[i] for i in letters)
            start = beam.steps[letters[0]] * step_seconds
            end = (beam.steps[letters[-1]] + 1) * step_seconds
            conf = sum(beam.probs[i] for i in letters) / len(letters)
            words.append(Word(text, start, end, conf))
            letters.clear()

    for i, token in enumerate(prefix):
        if token == table.space:
            close()
        else:
            letters.append(i)
    close()
    return " ".join(w.word for w in words), tuple(words)
