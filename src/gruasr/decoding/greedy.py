"""Greedy (best path) CTC decoding: the most likely token at each step, repeats merged, blanks dropped."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from gruasr.data.tokens import TokenTable
from gruasr.decoding.hypothesis import Hypothesis, Word

if TYPE_CHECKING:  # torch is imported on use: the ONNX runtime decodes numpy arrays without it
    from torch import Tensor

Emitted = tuple[int, int, int, float]  # (token, first step, last step, peak probability)


def best_path(log_probs: Tensor | np.ndarray) -> list[Emitted]:
    """log_probs (T, V), a tensor or a numpy array -> one (token, first step, last step, peak prob) per emitted
    token (blank is id 0)."""
    if isinstance(log_probs, np.ndarray):
        ids_np = log_probs.argmax(axis=-1)  # (T,)
        ids, peaks = ids_np.tolist(), np.exp(np.take_along_axis(log_probs, ids_np[:, None], -1)[:, 0]).tolist()
    else:
        probs, best = log_probs.max(dim=-1)  # (T,)
        ids, peaks = best.tolist(), probs.exp().tolist()
    out: list[Emitted] = []
    previous = -1
    for t, (i, p) in enumerate(zip(ids, peaks, strict=True)):
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


def greedy_decode(
    log_probs: Tensor | np.ndarray, table: TokenTable, step_seconds: float, length: int | None = None
) -> Hypothesis:
    """Decode one utterance: log_probs (T, V) (a tensor or a numpy array) of which the first `length` steps are
    valid."""
    if length is not None:
        log_probs = log_probs[:length]
    emitted = best_path(log_probs)
    text, words = tokens_to_words(emitted, table, step_seconds)
    if isinstance(log_probs, np.ndarray):
        score = float(log_probs.max(axis=-1).sum()) if log_probs.size else 0.0
    else:
        score = float(log_probs.max(dim=-1).values.sum()) if log_probs.numel() else 0.0
    return Hypothesis(text, words, score)


def greedy_batch(log_probs: Tensor, lengths: Tensor, table: TokenTable, step_seconds: float) -> list[Hypothesis]:
    """Decode a batch: log_probs (B, T, V), lengths (B,)."""
    import torch

    with torch.no_grad():
        lp = log_probs.detach().float().cpu()
        return [greedy_decode(lp[b], table, step_seconds, int(lengths[b])) for b in range(lp.shape[0])]
