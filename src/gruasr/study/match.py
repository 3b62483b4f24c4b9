"""Matched parameter budgets: the hidden size that brings each unit's whole CTC model closest to a budget."""

from __future__ import annotations

import dataclasses

import torch

from gruasr.errors import ConfigError
from gruasr.models.ctc_model import CTCModel, ModelConfig


def count_parameters(config: ModelConfig) -> int:
    """Parameters of the whole model (subsampling, encoder, output), built on the meta device: no memory."""
    with torch.device("meta"):
        return CTCModel(config).num_parameters()


def match_hidden_size(base: ModelConfig, budget: int, tolerance: float = 0.1) -> ModelConfig:
    """`base` with the hidden size whose model has the parameter count closest to `budget`; an error when even
    the closest is more than `tolerance` (relative) away."""
    if budget < 1:
        raise ConfigError(f"the parameter budget must be positive, got {budget}")

    def with_hidden(h: int) -> ModelConfig:
        return dataclasses.replace(base, hidden_size=h)

    lo, hi = 1, 1
    while count_parameters(with_hidden(hi)) < budget:  # counts grow with the hidden size
        lo, hi = hi, hi * 2
        if hi > 1 << 16:
            raise ConfigError(f"no hidden size reaches {budget:,} parameters")
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count_parameters(with_hidden(mid)) < budget:
            lo = mid
        else:
            hi = mid
    best = min((lo, hi), key=lambda h: abs(count_parameters(with_hidden(h)) - budget))
    config = with_hidden(best)
    got = count_parameters(config)
    if abs(got - budget) > tolerance * budget:
        raise ConfigError(
            f"{base.unit}: the closest model has {got:,} parameters, more than {tolerance:.0%} from {budget:,} "
            "(the fixed layers alone may exceed the budget: lower conv_channels)"
        )
    return config
