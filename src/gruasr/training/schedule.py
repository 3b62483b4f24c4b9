"""Learning-rate schedule: linear warm-up, then cosine decay to a floor (a function of the step, no state)."""

from __future__ import annotations

import math


def learning_rate(step: int, peak: float, warmup: int, total: int, final_ratio: float) -> float:
    """The rate for optimizer step `step` (0-based): peak * step/warmup while warming up, then a half cosine
    from peak down to peak * final_ratio at `total` steps (and the floor after)."""
    if warmup > 0 and step < warmup:
        return peak * (step + 1) / warmup
    span = max(total - warmup, 1)
    progress = min(max(step - warmup, 0) / span, 1.0)
    floor = peak * final_ratio
    return floor + (peak - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))
