"""CTC prefix beam search (Hannun et al. 2014, "First-pass large vocabulary continuous speech recognition using
bi-directional recurrent DNNs"), with optional word n-gram language-model fusion, a lexicon, and n-best output.

Each hypothesis is a prefix of tokens with two acoustic scores: p_b (paths ending in blank) and p_nb (ending in
its last token). A space that closes no word (at the start, or after another space) leaves the text unchanged,
so its paths are merged into the prefix they extend (their mass is kept, not dropped). When a space closes a
word, the word's LM log-probability times `lm_weight` plus `word_bonus` is added (shallow fusion); at the end,
the last word and </s> are scored. With a lexicon, a prefix survives only while its current partial word is the
beginning of a lexicon word, so every output word is in the lexicon. Tokens whose log-probability at a step is
below `prune` are not tried there. The final choice sums the probability of the prefixes that spell the same
text ("cat" and "cat " ending in a space), so with an unlimited beam and no pruning the score of each text is
exactly its total CTC probability (times the LM's weighted score): tests/decoding/test_beam_exhaustive.py checks
this against enumerating every path.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from gruasr.data.tokens import TokenTable
from gruasr.decoding.hypothesis import Hypothesis, Word
from gruasr.decoding.lm import EOS, LanguageModel
from gruasr.errors import ConfigError

if TYPE_CHECKING:  # torch is not imported here: the ONNX runtime decodes numpy arrays without it
    from torch import Tensor

NEG_INF = -math.inf


@dataclass(frozen=True)
class BeamConfig:
    beam_size: int = 16
    #: tokens below this log-probability at a step are not extended there (blank always is); -inf: none pruned
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
            return cls.from_text(f.read())

    @classmethod
    def from_text(cls, text: str) -> Lexicon:
        """The same as from_file, from the file's text (a model folder hands out the bytes it has checked)."""
        return cls(line.split()[0].lower() for line in text.split("\n") if line.strip())


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
    log_probs: Tensor | np.ndarray,
    table: TokenTable,
    step_seconds: float,
    config: BeamConfig | None = None,
    lm: LanguageModel | None = None,
    lexicon: Lexicon | None = None,
    length: int | None = None,
) -> Hypothesis:
    """Decode one utterance: log_probs (T, V) natural-log CTC posteriors, of which the first `length` steps are
    valid; `step_seconds` is the duration of one step (for word times). Returns the best hypothesis; its score
    is the log of the summed probability of its text (acoustic, plus the weighted LM and word bonuses when an
    LM is given). When nothing survives the lexicon, an empty hypothesis with score -inf."""
    best = prefix_beam_search_nbest(log_probs, table, step_seconds, config, lm, lexicon, length, nbest=1)
    return best[0] if best else Hypothesis("", (), NEG_INF, confidence=0.0)


def prefix_beam_search_nbest(
    log_probs: Tensor | np.ndarray,
    table: TokenTable,
    step_seconds: float,
    config: BeamConfig | None = None,
    lm: LanguageModel | None = None,
    lexicon: Lexicon | None = None,
    length: int | None = None,
    nbest: int = 5,
) -> list[Hypothesis]:
    """The `nbest` best distinct texts of the final beam, best first (arguments as prefix_beam_search).

    Each hypothesis's `score` is the log of the summed probability of the prefixes spelling its text, and its
    `confidence` that probability's share of all texts left in the final beam (a posterior among the beam's
    alternatives, not calibrated against the truth). Word times come from the best-scoring prefix of the text.
    Empty when nothing survives the lexicon."""
    if nbest < 1:
        raise ConfigError(f"nbest must be >= 1, got {nbest}")
    config = config or BeamConfig()
    lp = log_probs if isinstance(log_probs, np.ndarray) else log_probs.detach().float().cpu().numpy()
    if length is not None:
        lp = lp[:length]
    beams = _search(lp, table, config, lm, lexicon)
    alpha = config.lm_weight

    # Final scores: the last partial word and </s> scored, then prefixes with the same text merged.
    by_text: dict[str, tuple[float, float, tuple[int, ...]]] = {}  # text -> (summed score, best score, prefix)
    for prefix, beam in beams.items():
        score = beam.acoustic + beam.lm
        if beam.partial:
            if lexicon is not None and beam.partial not in lexicon.words:
                continue
            word_lm, state = _word_score(lm, config, beam, beam.partial)
            score += word_lm
        else:
            state = beam.lm_state
        if lm is not None:
            score += alpha * lm.score(state, EOS)[0]
        if score == NEG_INF:
            continue
        text = " ".join(table.decode(prefix).split())
        total, top, top_prefix = by_text.get(text, (NEG_INF, NEG_INF, ()))
        by_text[text] = (_logadd(total, score), *((score, prefix) if score > top else (top, top_prefix)))
    if not by_text:
        return []
    everything = NEG_INF
    for total, _, _ in by_text.values():
        everything = _logadd(everything, total)
    ranked = sorted(by_text.values(), key=lambda entry: entry[0], reverse=True)[:nbest]
    out = []
    for total, _, prefix in ranked:
        text, words = _words(prefix, beams[prefix], table, step_seconds)
        out.append(Hypothesis(text, words, total, confidence=math.exp(total - everything)))
    return out


def _word_score(lm: LanguageModel | None, config: BeamConfig, beam: _Beam, word: str) -> tuple[float, tuple[str, ...]]:
    """The weighted LM score plus word bonus of closing `word` after `beam`, and the new LM state."""
    if lm is None:  # no LM: the acoustic score alone (the word bonus balances the LM's cost per word)
        return 0.0, beam.lm_state
    logp, state = lm.score(beam.lm_state, word)
    return config.lm_weight * logp + config.word_bonus, state


def _search(
    lp: np.ndarray, table: TokenTable, config: BeamConfig, lm: LanguageModel | None, lexicon: Lexicon | None
) -> dict[tuple[int, ...], _Beam]:
    """Run the prefix beam search over lp (T, V); returns the final beam, prefixes not yet finished."""
    space, blank = table.space, table.blank
    start_state = lm.start() if lm is not None else ()
    beams: dict[tuple[int, ...], _Beam] = {(): _Beam(p_b=0.0, lm_state=start_state)}
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
                    if not beam.partial:  # a leading or doubled space: the same text, so the same prefix
                        stay.p_nb = _logadd(stay.p_nb, source)
                        continue
                    if lexicon is not None and beam.partial not in lexicon.words:
                        continue
                    score, state = _word_score(lm, config, beam, beam.partial)
                    ext = _slot(nxt, (*prefix, c), beam, (t, math.exp(p)), score, state, "")
                else:
                    partial = beam.partial + table.symbols[c]
                    if lexicon is not None and partial not in lexicon.prefixes:
                        continue
                    ext = _slot(nxt, (*prefix, c), beam, (t, math.exp(p)), partial=partial)
                ext.p_nb = _logadd(ext.p_nb, source)
        ranked = sorted(nxt.items(), key=lambda kv: kv[1].acoustic + kv[1].lm, reverse=True)
        beams = dict(ranked[: config.beam_size])
    return beams


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
