"""Checkpoint averaging: the element-wise mean of several checkpoints' weights (Vaswani et al. 2017 and
ESPnet average the last epochs; the mean of nearby points of one run sits in a flatter, better region); and a
fine-tune's start moved part of the way towards its result (WiSE-FT, Wortsman et al. 2022)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file

from gruasr.errors import CheckpointError


def average_checkpoints(folders: Sequence[Path]) -> dict[str, torch.Tensor]:
    """Mean of the model.safetensors weights in `folders` (float64 accumulation; integer tensors from the last)."""
    if not folders:
        raise CheckpointError("no checkpoints to average")
    total: dict[str, torch.Tensor] = {}
    for folder in folders:
        state = load_file(str(folder / "model.safetensors"))
        if total and set(state) != set(total):
            raise CheckpointError(f"{folder}: its weights do not match the other checkpoints'")
        for name, value in state.items():
            if value.is_floating_point():
                total[name] = total.get(name, torch.zeros_like(value, dtype=torch.float64)) + value.double()
            else:
                total[name] = value
    return {k: (v / len(folders)).float() if v.is_floating_point() else v for k, v in total.items()}


def interpolate(start: dict[str, torch.Tensor], end: dict[str, torch.Tensor], a: float) -> dict[str, torch.Tensor]:
    """start + a * (end - start), element-wise in float64 (a in [0, 1]; float32 out; integer tensors from `end`):
    two points of one fine-tune, e.g. the model it started from and its best epoch."""
    if set(start) != set(end) or any(start[k].shape != end[k].shape for k in end):
        raise CheckpointError("the two models' weights do not match: interpolate only a fine-tune and its start")
    return {
        k: (start[k].double() + a * (v.double() - start[k].double())).float() if v.is_floating_point() else v
        for k, v in end.items()
    }
