"""Checkpoint averaging: the element-wise mean of several checkpoints' weights (Vaswani et al. 2017 and
ESPnet average the last epochs; the mean of nearby points of one run sits in a flatter, better region)."""

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
