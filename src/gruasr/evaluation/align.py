"""Levenshtein alignment of a reference and a hypothesis (words or characters), with the edit operations.

Costs are 1 for a substitution, deletion or insertion (as NIST sclite and jiwer count them); among equally cheap
alignments, the backtrace prefers matches and substitutions, then deletions, then insertions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Alignment:
    """The aligned pairs (ref or None, hyp or None) and the counts of each error kind."""

    pairs: tuple[tuple[str | None, str | None], ...]
    hits: int
    sub: int
    dels: int
    ins: int

    @property
    def errors(self) -> int:
        return self.sub + self.dels + self.ins


def align(ref: Sequence[str], hyp: Sequence[str]) -> Alignment:
    """Minimum-edit alignment of two token sequences."""
    n, m = len(ref), len(hyp)
    cost = np.zeros((n + 1, m + 1), dtype=np.int32)
    cost[:, 0] = np.arange(n + 1)
    cost[0, :] = np.arange(m + 1)
    for i in range(1, n + 1):
        r = ref[i - 1]
        for j in range(1, m + 1):
            diagonal = cost[i - 1, j - 1] + (0 if r == hyp[j - 1] else 1)
            cost[i, j] = min(diagonal, cost[i - 1, j] + 1, cost[i, j - 1] + 1)
    pairs: list[tuple[str | None, str | None]] = []
    hits = sub = dels = ins = 0
    i, j = n, m
    while i > 0 or j > 0:
        if i > 0 and j > 0 and cost[i, j] == cost[i - 1, j - 1] + (0 if ref[i - 1] == hyp[j - 1] else 1):
            if ref[i - 1] == hyp[j - 1]:
                hits += 1
            else:
                sub += 1
            pairs.append((ref[i - 1], hyp[j - 1]))
            i, j = i - 1, j - 1
        elif i > 0 and cost[i, j] == cost[i - 1, j] + 1:
            dels += 1
            pairs.append((ref[i - 1], None))
            i -= 1
        else:
            ins += 1
            pairs.append((None, hyp[j - 1]))
            j -= 1
    pairs.reverse()
    return Alignment(tuple(pairs), hits, sub, dels, ins)


def edit_distance(ref: Sequence[str], hyp: Sequence[str]) -> int:
    """Number of errors of the best alignment (no backtrace)."""
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j - 1] + (r != h), previous[j] + 1, current[j - 1] + 1)
        previous = current
    return previous[-1]
