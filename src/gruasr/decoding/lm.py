"""Word n-gram language models: build one from transcripts (interpolated Kneser-Ney), write and read ARPA, score.

Building follows Chen & Goodman (1998), interpolated Kneser-Ney with one discount D per order
(D = n1 / (n1 + 2 n2) from the counts of counts). The highest order uses raw counts, lower orders use
continuation counts (how many different words precede an n-gram), and the unigram distribution is
interpolated with the uniform one. An interpolated model is written as a back-off ARPA file exactly: each
seen n-gram stores its interpolated probability and each history its interpolation weight as back-off.

Scoring reads any ARPA file (ours, KenLM's, SRILM's): log10 in the file, natural log out.
"""

from __future__ import annotations

import math
import os
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from gruasr.errors import ConfigError

BOS, EOS, UNK = "<s>", "</s>", "<unk>"
LN10 = math.log(10.0)
#: log10 probability written for <s> as a predicted word (it never is one)
NEVER = -99.0


def _discount(counts: Counter[tuple[str, ...]]) -> float:
    n1 = sum(1 for c in counts.values() if c == 1)
    n2 = sum(1 for c in counts.values() if c == 2)
    if n1 == 0:
        return 0.5
    return min(max(n1 / (n1 + 2 * n2), 0.1), 0.9)


def build_kneser_ney(sentences: Iterable[str], order: int = 3) -> dict[int, dict[tuple[str, ...], tuple[float, float]]]:
    """Estimate an interpolated Kneser-Ney model. Returns {order: {ngram: (log10 prob, log10 backoff)}}."""
    if order < 1:
        raise ConfigError(f"n-gram order must be >= 1, got {order}")
    raw: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order + 1)]
    vocab: set[str] = set()
    for sentence in sentences:
        words = sentence.split()
        if not words:
            continue
        vocab.update(words)
        padded = [BOS, *words, EOS]
        for n in range(1, order + 1):
            for i in range(len(padded) - n + 1):
                gram = tuple(padded[i : i + n])
                if gram == (BOS,):
                    continue
                raw[n][gram] += 1
    if not vocab:
        raise ConfigError("cannot build a language model from no text")

    # Counts used at each order: raw at the top, continuation counts below (n-grams starting with <s> keep raw).
    counts: list[Counter[tuple[str, ...]]] = [Counter() for _ in range(order + 1)]
    counts[order] = raw[order]
    for n in range(order - 1, 0, -1):
        continuation: Counter[tuple[str, ...]] = Counter(gram[1:] for gram in raw[n + 1])
        for gram, c in raw[n].items():
            counts[n][gram] = c if gram[0] == BOS else continuation.get(gram, 0) or c
    discounts = [0.0] + [_discount(counts[n]) for n in range(1, order + 1)]

    # Per history: total count and number of distinct followers, for the interpolation weights.
    totals: list[dict[tuple[str, ...], float]] = [defaultdict(float) for _ in range(order + 1)]
    followers: list[dict[tuple[str, ...], int]] = [defaultdict(int) for _ in range(order + 1)]
    for n in range(1, order + 1):
        for gram, c in counts[n].items():
            totals[n][gram[:-1]] += c
            followers[n][gram[:-1]] += 1

    words = sorted(vocab | {EOS, UNK})
    probs: list[dict[tuple[str, ...], float]] = [{} for _ in range(order + 1)]
    # Unigrams, interpolated with the uniform distribution over the vocabulary (so <unk> gets mass too).
    d1, total1, types1 = discounts[1], totals[1][()], followers[1][()]
    for w in words:
        c = counts[1].get((w,), 0)
        probs[1][(w,)] = max(c - d1, 0) / total1 + d1 * types1 / total1 / len(words)

    def gamma(n: int, history: tuple[str, ...]) -> float:
        """Interpolation weight of the lower order after `history` at order n (1 if never a history)."""
        total = totals[n].get(history)
        return discounts[n] * followers[n][history] / total if total else 1.0

    def interpolated(gram: tuple[str, ...]) -> float:
        """P(gram[-1] | gram[:-1]) from the finished lower orders."""
        p = probs[len(gram)].get(gram)
        if p is not None or len(gram) == 1:
            return p if p is not None else probs[1][(UNK,)]
        return gamma(len(gram), gram[:-1]) * interpolated(gram[1:])

    for n in range(2, order + 1):
        for gram, c in counts[n].items():
            history = gram[:-1]
            lower = interpolated(gram[1:])
            probs[n][gram] = max(c - discounts[n], 0) / totals[n][history] + gamma(n, history) * lower

    model: dict[int, dict[tuple[str, ...], tuple[float, float]]] = {}
    for n in range(1, order + 1):
        table: dict[tuple[str, ...], tuple[float, float]] = {}
        for gram, p in probs[n].items():
            backoff = 0.0
            if n < order:
                backoff = math.log10(gamma(n + 1, gram))
            table[gram] = (math.log10(p), backoff)
        model[n] = table
    model[1][(BOS,)] = (NEVER, math.log10(gamma(2, (BOS,))) if order > 1 else 0.0)
    return model


def write_arpa(model: dict[int, dict[tuple[str, ...], tuple[float, float]]], path: str | os.PathLike[str]) -> Path:
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


def build_arpa(text_file: str | os.PathLike[str], order: int, out: str | os.PathLike[str]) -> Path:
    """`gruasr lm build`: one sentence per line (lower-case words) -> ARPA file."""
    path = Path(text_file)
    if not path.is_file():
        raise ConfigError(f"text file not found: {path}")
    sentences = [" ".join(line.lower().split()) for line in path.read_text(encoding="utf-8").splitlines()]
    return write_arpa(build_kneser_ney(sentences, order), out)


class NGramLM:
    """A back-off n-gram model read from ARPA. State: the last (order - 1) words, as a tuple."""

    def __init__(self, model: dict[int, dict[tuple[str, ...], tuple[float, float]]]) -> None:
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
        model: dict[int, dict[tuple[str, ...], tuple[float, float]]] = {}
        section = 0
        with path.open(encoding="utf-8", errors="replace") as f:
            for number, line in enumerate(f, 1):
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
                    raise ConfigError(f"{path}:{number}: not an ARPA n-gram line") from None
                if len(gram) != section:
                    raise ConfigError(f"{path}:{number}: expected {section} words")
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
