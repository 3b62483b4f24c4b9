"""CTC forced alignment: where a known transcript's tokens sit in a model's output (Viterbi over the CTC topology).

The transcript's tokens y_1..y_L become the usual CTC state sequence with blanks around and between them
(blank, y_1, blank, y_2, ..., y_L, blank: 2L + 1 states). The best path through log-probabilities (T, V) starts in
one of the first two states and ends in one of the last two; from state s it may stay, go to s + 1, or skip the
blank to s + 2 when y at s + 2 differs from y at s (two equal tokens in a row need the blank between them). Its
score is the path's summed log-probability; each token's span is the steps its state holds on the path.
`word_spans` turns token spans into word spans (words split by the space token). A transcript the output cannot
hold (more steps needed than there are) raises ConfigError. `ctc_log_likelihood` sums every path instead of taking
the best (the forward algorithm): how likely a model finds a given text, e.g. another model's hypothesis.
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


def _topology(targets: Sequence[int], blank: int) -> tuple[np.ndarray, np.ndarray]:
    """The CTC states of `targets` (blank, y_1, blank, ..., y_L, blank) as token ids, and which state may be reached
    from two states back (a token different from the one before the blank between them)."""
    states = [blank]
    for token in targets:
        states += [int(token), blank]
    skip = np.zeros(len(states), dtype=bool)
    for s in range(2, len(states)):
        skip[s] = states[s] != blank and states[s] != states[s - 2]
    return np.array(states, dtype=np.int64), skip


def _min_steps(targets: Sequence[int]) -> int:
    """The fewest output steps that can spell `targets`: one per token, one more per repeated token."""
    return len(targets) + sum(1 for a, b in zip(targets, targets[1:], strict=False) if a == b)


def ctc_log_likelihood(log_probs: np.ndarray, targets: Sequence[int], blank: int = 0) -> float:
    """log P(targets | outputs): the log of the summed probability of every CTC path through log_probs (T, V)
    that spells `targets` (token ids, no blanks), by the forward algorithm; -inf when no path can (too few steps).
    The negative of torch's `F.ctc_loss(..., reduction="sum")` for one utterance, without torch."""
    return float(ctc_log_likelihoods(log_probs, [targets], blank)[0])


def ctc_log_likelihoods(log_probs: np.ndarray, texts: Sequence[Sequence[int]], blank: int = 0) -> np.ndarray:
    """`ctc_log_likelihood` of each of several token sequences in the same outputs, in one pass over the steps
    (each sequence's states padded to the longest: states only pass forward, so padding never reaches a real one)."""
    lp = np.asarray(log_probs, dtype=np.float64)
    steps = lp.shape[0]
    out = np.full(len(texts), NEG_INF)
    live = [k for k, t in enumerate(texts) if steps >= _min_steps(t)]
    if not live or steps == 0:
        return out
    tops = [_topology(texts[k], blank) for k in live]
    size = max(len(ids) for ids, _ in tops)
    ids = np.full((len(live), size), blank, dtype=np.int64)
    skip = np.zeros((len(live), size), dtype=bool)
    for row, (own_ids, own_skip) in enumerate(tops):
        ids[row, : len(own_ids)], skip[row, : len(own_skip)] = own_ids, own_skip
    alpha = np.full((len(live), size), NEG_INF)
    alpha[:, :2] = lp[0, ids[:, :2]]
    step, jump = np.full_like(alpha, NEG_INF), np.full_like(alpha, NEG_INF)
    for t in range(1, steps):
        step[:, 1:] = alpha[:, :-1]
        jump[:, 2:] = np.where(skip[:, 2:], alpha[:, :-2], NEG_INF)
        alpha = np.logaddexp(np.logaddexp(alpha, step), jump) + lp[t, ids]
    for row, (k, (own_ids, _)) in enumerate(zip(live, tops, strict=True)):
        last = len(own_ids) - 1
        out[k] = np.logaddexp(alpha[row, last], alpha[row, last - 1]) if last else alpha[row, last]
    return out


def forced_align(log_probs: np.ndarray, targets: Sequence[int], blank: int = 0) -> tuple[list[tuple[int, int]], float]:
    """The Viterbi alignment of `targets` (token ids, no blanks) to log_probs (T, V): each target's (first, last)
    step, and the best path's log-probability."""
    lp = np.asarray(log_probs, dtype=np.float64)
    steps, count = lp.shape[0], len(targets)
    ids, skip = _topology(targets, blank)
    states, size = ids.tolist(), len(ids)
    needed = _min_steps(targets)
    if steps < needed:
        raise ConfigError(f"{count} tokens need at least {needed} output steps; there are {steps}")
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
