"""CTC forced alignment: where a known transcript's tokens sit in a model's output (Viterbi over the CTC topology).

The transcript's tokens y_1..y_L become the usual CTC state sequence with blanks around and between them
(blank, y_1, blank, y_2, ..., y_L, blank: 2L + 1 states). The best path through log-probabilities (T, V) starts in
one of the first two states and ends in one of the last two; from state s it may stay, go to s + 1, or skip the
blank to s + 2 when y at s + 2 differs from y at s (two equal tokens in a row need the blank between them). Its
score is the path's summed log-probability; each token's span is the steps its state holds on the path.
`word_spans` turns token spans into word spans (words split by the space token). A transcript the output cannot
hold (more steps needed than there are) raises ConfigError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gruasr.data.tokens import TokenTable
from gruasr.errors import ConfigError

NEG_INF = -np.inf


@dataclass(frozen=True)
class Span:
    """A token's (or word's) first and last output step, inclusive, and its path log-probability."""

    label: str
    first: int
    last: int
    score: float


def forced_align(log_probs: np.ndarray, targets: Sequence[int], blank: int = 0) -> tuple[list[tuple[int, int]], float]:
    """The Viterbi alignment of `targets` (token ids, no blanks) to log_probs (T, V): each target's (first, last)
    step, and the best path's log-probability."""
    lp = np.asarray(log_probs, dtype=np.float64)
    steps, count = lp.shape[0], len(targets)
    states = [blank]
    for token in targets:
        states += [int(token), blank]
    size = len(states)
    needed = count + sum(1 for a, b in zip(targets, targets[1:], strict=False) if a == b)
    if steps < needed:
        raise ConfigError(f"{count} tokens need at least {needed} output steps; there are {steps}")
    ids = np.array(states)
    skip = np.zeros(size, dtype=bool)  # state s may be reached from s - 2
    for s in range(2, size):
        skip[s] = states[s] != blank and states[s] != states[s - 2]
    score = np.full(size, NEG_INF)
    score[0] = lp[0, states[0]]
    if size > 1:
        score[1] = lp[0, states[1]]
    back = np.zeros((steps, size), dtype=np.int8)  # 0 stay, 1 from s - 1, 2 from s - 2
    for t in range(1, steps):
        stay = score
        step = np.concatenate([[NEG_INF], score[:-1]])
        jump = np.where(skip, np.concatenate([[NEG_INF, NEG_INF], score[:-2]]), NEG_INF)
        options = np.stack([stay, step, jump])
        choice = options.argmax(axis=0)
        score = options[choice, np.arange(size)] + lp[t, ids]
        back[t] = choice
    end = size - 1 if size == 1 or score[size - 1] >= score[size - 2] else size - 2
    best = float(score[end])
    if not np.isfinite(best):
        raise ConfigError("no CTC path spells the transcript in these outputs")
    path = np.zeros(steps, dtype=np.int64)
    state = end
    for t in range(steps - 1, -1, -1):
        path[t] = state
        state -= int(back[t, state])
    spans = []
    for k in range(count):
        where = np.nonzero(path == 2 * k + 1)[0]
        spans.append((int(where[0]), int(where[-1])))
    return spans, best


def word_spans(log_probs: np.ndarray, text: str, table: TokenTable) -> list[Span]:
    """Each word of `text` with its first and last output step (its first letter's first step to its last
    letter's last step) and the path's log-probability over its steps."""
    words = text.split()
    targets = table.encode(" ".join(words))
    spans, _ = forced_align(log_probs, targets, table.blank)
    lp = np.asarray(log_probs, dtype=np.float64)
    out, k = [], 0
    for w, word in enumerate(words):
        letters = len(table.encode(word))
        first, last = spans[k][0], spans[k + letters - 1][1]
        best = lp[first : last + 1].max(axis=1).sum()  # an upper bound of the word's path score, for ranking
        out.append(Span(word, first, last, float(best)))
        k += letters + (1 if w < len(words) - 1 else 0)  # the space between words
    return out
