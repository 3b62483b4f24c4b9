"""Helpers for the model tests: relative errors and running torch.nn references on padded batches."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def rel_err(a: Tensor, b: Tensor) -> float:
    """Largest absolute difference relative to the reference's largest magnitude."""
    scale = b.detach().abs().max().clamp_min(1e-300)
    return float((a.detach() - b.detach()).abs().max() / scale)


def run_torch(ref: nn.Module, x: Tensor, lengths: Tensor | None, state=None):
    """torch.nn.GRU/LSTM/RNN (batch_first) on a padded batch, through pack_padded_sequence when lengths vary."""
    if lengths is None:
        return ref(x, state)
    packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
    out, state = ref(packed, state)
    y, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    return y, state


def flat(state) -> list[Tensor]:
    return [state] if isinstance(state, Tensor) else list(state)


def make_batch(batch: int, steps: int, size: int, device, dtype=torch.float64, lengths: bool = True):
    x = torch.randn(batch, steps, size, device=device, dtype=dtype, requires_grad=True)
    if not lengths:
        return x, None
    lens = torch.randint(1, steps + 1, (batch,))
    lens[0] = steps  # the longest sequence fills the batch, as in a real padded batch
    return x, lens
