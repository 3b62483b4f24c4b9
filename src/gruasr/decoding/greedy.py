"""Greedy (best path) CTC decoding: the most likely token at each step, repeats merged, blanks dropped."""

from __future__ import annotations

import torch
from torch import Tensor

from gruasr.data.tokens import TokenTable
from gruasr.decoding.hypothesis import Hypothesis, Word

Emitted = tuple[int, int, int, float]  # (token, first step, last step, peak probability)


def best_path(log_probs: Tensor) -> list[Emitted]:
    """log_probs (T, V) -> one (token, first step, last step, peak prob) per emitted token (blank is id 0)."""
    probs, ids = log_probs.max(dim=-1)  # (T,)
    out: list[Emitted] = []
    previous = -1
    for t, (i, p) in enumerate(zip(ids.tolist(), probs.exp().tolist(), strict=True)):
        if i != 0 and i == previous:
            token, first, _, peak = out[-1]
            out[-1] = (token, first, t, max(peak, p))
        elif i != 0:
            out.append((i, t, t, p))
        previous = i
    return out


def tokens_to_words(emitted: list[Emitted], table: TokenTable, step_seconds: float) -> tuple[str, tuple[Word, ...]]:
    """Group emitted tokens into words split at spaces. A word spans from its first letter's first step to the
    end of its last letter's last step; its confidence is the mean peak probability of its letters."""
    words: list[Word] = []
    letters: list[Emitted] = []

    def close() -> None:
        if letters:
            text = table.decode(e[0] for e in letters)
            start = letters[0][1] * step_seconds
            end = (letters[-1][2] + 1) * step_seconds
            conf = sum(e[3] for e in letters) / len(letters)
            words.append(Word(text, start, end, conf))
            letters.clear()

    for item in emitted:
        if item[0] == table.space:
            close()
        else:
            letters.append(item)
    close()
    return " ".join(w.word for w in words), tuple(words)


def greedy_decode(log_probs: Tensor, table: TokenTable, step_seconds: float, length: int | None = None) -> Hypothesis:
    """Decode one utterance: log_probs (T, V) of which the first `length` steps are valid."""
    if length is not None:
        log_probs = log_probs[:length]
    emitted = best_path(log_probs)
    text, words = tokens_to_words(emitted, table, step_seconds)
    score = float(log_probs.max(dim=-1).values.sum()) if log_probs.numel() else 0.0
    return Hypothesis(text, words, score)


def greedy_batch(log_probs: Tensor, lengths: Tensor, table: TokenTable, step_seconds: float) -> list[Hypothesis]:
    """Decode a batch: log_probs (B, T, V), lengths (B,)."""
    with torch.no_grad():
        lp = log_probs.detach().float().cpu()
        return [greedy_decode(lp[b], table, step_seconds, int(lengths[b])) for b in range(lp.shape[0])]
