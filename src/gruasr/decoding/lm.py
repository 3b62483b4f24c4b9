"""Word n-gram language models: build one from transcripts (interpolated modified Kneser-Ney), write and read
ARPA, score.

Building follows Chen & Goodman (1998), "An empirical study of smoothing techniques for language modeling",
section 3.5: interpolated Kneser-Ney with three discounts per order, D1 for n-grams seen once, D2 for twice and
D3+ for three or more times, estimated from that order's counts of counts n1..n4 (their eq. 26):

    Y = n1 / (n1 + 2 n2),   D1 = 1 - 2 Y n2/n1,   D2 = 2 - 3 Y n3/n2,   D3+ = 3 - 4 Y n4/n3.

Where a count of counts is zero or a discount falls outside (0, k] (tiny corpora), that order uses KenLM's
`--discount_fallback` values (0.5, 1, 1.5). The highest order uses raw counts, lower orders continuation counts
(how many different words precede an n-gram; n-grams starting with <s> keep their raw counts, as in KenLM), and
the unigram distribution is interpolated with the uniform one over the vocabulary (so <unk> gets mass too).
Optional count cutoffs prune as KenLM's `--prune` does: an n-gram of order n >= 2 whose count at its order
(raw at the top, continuation below) is at most `prune[n-1]` is dropped unless it is the history of a kept
longer n-gram, and its discounted mass moves to its history's back-off weight, so every history's distribution
still sums to 1. An interpolated model is written as a back-off ARPA file exactly: each kept n-gram stores its
interpolated probability and each history its interpolation weight as back-off.

Scoring reads any ARPA file (ours, KenLM's, SRILM's): log10 in the file, natural log out.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gruasr.errors import ConfigError

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
LN10 = math.log(10.0)
#: log10 probability written for <s> as a predicted word (it never is one)
NEVER = -99.0
NGram = tuple[str, ...]
ArpaModel = dict[int, dict[NGram, tuple[float, float]]]


class LanguageModel(Protocol):
    """What the beam search needs of a word LM (NGramLM, gruasr.decoding.grammar.PhraseGrammar): a start state,
    and the natural-log probability of a word (or EOS) after a state with the state it leads to."""

    def start(self) -> tuple[str, ...]: ...

    def score(self, state: tuple[str, ...], word: str) -> tuple[float, tuple[str, ...]]: ...


@dataclass(frozen=True)
class Discounts:
    """The three modified Kneser-Ney discounts of one order: for counts 1, 2 and 3 or more."""

    d1: float
    d2: float
    d3: float

    def __call__(self, count: int) -> float:
        return 0.0 if count <= 0 else self.d1 if count == 1 else self.d2 if count == 2 else self.d3


#: KenLM's --discount_fallback, for orders whose counts of counts cannot give valid discounts
FALLBACK = Discounts(0.5, 1.0, 1.5)


def modified_discounts(counts: Iterable[int]) -> Discounts:
    """D1, D2, D3+ from the counts of one order (Chen & Goodman 1998, eq. 26); FALLBACK when n1..n4 has a
    zero or a discount D_k falls outside (0, k]."""
    histogram = Counter(min(c, 5) for c in counts)
    n1, n2, n3, n4 = (histogram[k] for k in (1, 2, 3, 4))
    if 0 in (n1, n2, n3, n4):
        return FALLBACK
    y = n1 / (n1 + 2 * n2)
    d = Discounts(1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    if not (0 < d.d1 <= 1 and 0 < d.d2 <= 2 and 0 < d.d3 <= 3):
        return FALLBACK
    return d


def _cutoffs(prune: Sequence[int] | None, order: int) -> list[int]:
    """KenLM-style --prune values -> one cutoff per order 1..order (index n-1); the last value repeats."""
    if not prune:
        return [0] * order
    values = [int(v) for v in prune]
    if values[0] != 0:
        raise ConfigError(f"unigrams are never pruned: the first prune value must be 0, got {values[0]}")
    if any(v < 0 for v in values):
        raise ConfigError(f"prune values must be >= 0, got {values}")
    return (values + [values[-1]] * order)[:order]


def _count(sentences: Iterable[str], order: int) -> tuple[list[Counter[NGram]], set[str]]:
    """Raw n-gram counts of order 1..order over <s> w1 .. wk </s>; empty sentences are skipped."""
    raw: list[Counter[NGram]] = [Counter() for _ in range(order + 1)]
    vocab: set[str] = set()
    for sentence in sentences:
        words = sentence.split()
        if not words:  # an utterance without words is no evidence of "<s> </s>"
            continue
        vocab.update(words)
        padded = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                gram = tuple(padded[i : i + n])
                if gram != (BOS,):
                    raw[n][gram] += 1
    return raw, vocab


def build_kneser_ney(sentences: Iterable[str], order: int = 3, prune: Sequence[int] | None = None) -> ArpaModel:
    """Estimate an interpolated modified Kneser-Ney model (see the module docstring); `prune` holds KenLM-style
    count cutoffs per order starting at unigrams (e.g. (0, 1, 1): drop bigrams and trigrams seen once).
    Returns {order: {ngram: (log10 prob, log10 backoff)}}."""
    if order < 1:
        raise ConfigError(f"n-gram order must be >= 1, got {order}")
    cutoffs = _cutoffs(prune, order)
    raw, vocab = _count(sentences, order)
    if not vocab:
        raise ConfigError("cannot build a language model from no text")

    # Counts used at each order: raw at the top, continuation counts below (n-grams starting with <s> keep raw).
    counts: list[Counter[NGram]] = [Counter() for _ in range(order + 1)]
    counts[order] = raw[order]
    for n in range(order - 1, 0, -1):
        continuation: Counter[NGram] = Counter(gram[1:] for gram in raw[n + 1])
        for gram, c in raw[n].items():
            counts[n][gram] = c if gram[0] == BOS else continuation[gram]
    discounts = [FALLBACK] + [modified_discounts(counts[n].values()) for n in range(1, order + 1)]

    # Kept n-grams, from the top down: above the cutoff, or the history of a kept longer n-gram.
    kept: list[set[NGram]] = [set() for _ in range(order + 2)]
    for n in range(order, 0, -1):
        kept[n] = {g for g, c in counts[n].items() if n == 1 or c > cutoffs[n - 1]}
        kept[n] |= {g[:-1] for g in kept[n + 1]}

    # Per history: its total count, and the mass left to the lower order (discounts plus pruned n-grams).
    totals: list[dict[NGram, float]] = [defaultdict(float) for _ in range(order + 1)]
    left: list[dict[NGram, float]] = [defaultdict(float) for _ in range(order + 1)]
    for n in range(1, order + 1):
        for gram, c in counts[n].items():
            totals[n][gram[:-1]] += c
            left[n][gram[:-1]] += discounts[n](c) if gram in kept[n] else c

    def gamma(n: int, history: NGram) -> float:
        """Interpolation weight of the lower order after `history` at order n (1 if never a history)."""
        total = totals[n].get(history)
        return left[n][history] / total if total else 1.0

    words = sorted(vocab | {EOS, UNK})
    probs: list[dict[NGram, float]] = [{} for _ in range(order + 1)]
    total1, d = totals[1][()], discounts[1]
    for w in words:
        c = counts[1].get((w,), 0)
        probs[1][(w,)] = (c - d(c)) / total1 + gamma(1, ()) / len(words)

    def interpolated(gram: NGram) -> float:
        """P(gram[-1] | gram[:-1]) of the finished (pruned) lower orders, as the ARPA file will give it."""
        p = probs[len(gram)].get(gram)
        if p is not None or len(gram) == 1:
            return p if p is not None else probs[1][(UNK,)]
        return gamma(len(gram), gram[:-1]) * interpolated(gram[1:])

    for n in range(2, order + 1):
        for gram in kept[n]:
            history, c = gram[:-1], counts[n][gram]
            probs[n][gram] = (c - discounts[n](c)) / totals[n][history] + gamma(n, history) * interpolated(gram[1:])

    model: ArpaModel = {}
    for n in range(1, order + 1):
        model[n] = {
            gram: (math.log10(p), math.log10(gamma(n + 1, gram)) if n < order else 0.0) for gram, p in probs[n].items()
        }
    model[1][(BOS,)] = (NEVER, math.log10(gamma(2, (BOS,))) if order > 1 else 0.0)
    return model


def write_arpa(model: ArpaModel, path: str | os.PathLike[str]) -> Path:
    """Write {order: {ngram: (log10 p, log10 backoff)}} as an ARPA file (atomically)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    order = max(model)
    lines = ["", "\\data\\"]
    lines += [f"ngram {n}={len(model[n])}" for n in range(1, order + 1)]
    for n in range(1, order + 1):
        lines += ["", f"\\{n}-grams:"]
        for gram in sorted(model[n]):
            p, b = model[n][gram]
            text = f"{p:.6f}\t{' '.join(gram)}"
            lines.append(f"{text}\t{b:.6f}" if n < order and b != 0.0 else text)
    lines += ["", "\\end\\", ""]
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n".join(lines), encoding="utf-8")
    os.replace(tmp, path)
    return path


def build_arpa(
    text_file: str | os.PathLike[str], order: int, out: str | os.PathLike[str], prune: Sequence[int] | None = None
) -> Path:
    """`gruasr lm build`: one sentence per line (lower-case words; empty lines are skipped) -> ARPA file, with
    optional KenLM-style count cutoffs `prune` (see build_kneser_ney)."""
    path = Path(text_file)
    if not path.is_file():
        raise ConfigError(f"text file not found: {path}")
    sentences = [" ".join(line.lower().split()) for line in path.read_text(encoding="utf-8").splitlines()]
    return write_arpa(build_kneser_ney(sentences, order, prune), out)


class NGramLM:
    """A back-off n-gram model read from ARPA. State: the last (order - 1) words, as a tuple."""

    def __init__(self, model: ArpaModel) -> None:
        if not model or 1 not in model:
            raise ConfigError("language model has no unigrams")
        self.order = max(model)
        self._tables = model
        self.vocab = {g[0] for g in model[1]} - {BOS}

    @classmethod
    def from_arpa(cls, path: str | os.PathLike[str]) -> NGramLM:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"language model not found: {path}")
        with path.open(encoding="utf-8", errors="replace") as f:
            return cls._parse(f, str(path))

    @classmethod
    def from_arpa_text(cls, text: str, where: str = "<arpa>") -> NGramLM:
        """The same as from_arpa, from the file's text (a model folder hands out the bytes it has checked);
        `where` names it in errors."""
        return cls._parse(text.split("\n"), where)

    @classmethod
    def _parse(cls, lines: Iterable[str], where: str) -> NGramLM:
        model: ArpaModel = {}
        section = 0
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("ngram ") or line == "\\data\\":
                continue
            if line == "\\end\\":
                break
            if line.startswith("\\") and line.endswith("-grams:"):
                section = int(line[1:].split("-")[0])
                model[section] = {}
                continue
            if section == 0:
                continue
            parts = line.split()
            try:
                logp = float(parts[0])
                gram = tuple(parts[1 : 1 + section])
                backoff = float(parts[1 + section]) if len(parts) > 1 + section else 0.0
            except (ValueError, IndexError):
                raise ConfigError(f"{where}:{number}: not an ARPA n-gram line") from None
            if len(gram) != section:
                raise ConfigError(f"{where}:{number}: expected {section} words")
            model[section][gram] = (logp, backoff)
        return cls(model)

    def start(self) -> tuple[str, ...]:
        return (BOS,)

    def _log10(self, history: tuple[str, ...], word: str) -> float:
        gram = (*history, word)
        entry = self._tables.get(len(gram), {}).get(gram)
        if entry is not None:
            return entry[0]
        if not history:
            unk = self._tables[1].get((UNK,))
            return unk[0] if unk is not None else NEVER
        back = self._tables.get(len(history), {}).get(history)
        return (back[1] if back is not None else 0.0) + self._log10(history[1:], word)

    def score(self, state: tuple[str, ...], word: str) -> tuple[float, tuple[str, ...]]:
        """Natural-log probability of `word` after `state`, and the new state."""
        history = state[-(self.order - 1) :] if self.order > 1 else ()
        logp = self._log10(history, word) * LN10
        return logp, (*state, word)[-(self.order - 1) :] if self.order > 1 else ()

    def sentence_logprob(self, words: Sequence[str]) -> float:
        """Natural-log probability of a whole sentence, </s> included."""
        state, total = self.start(), 0.0
        for w in [*words, EOS]:
            logp, state = self.score(state, w)
            total += logp
        return total
