"""The minimal GRU (minGRU; Feng, Tung, Ahmed, Bengio & Hajimirsadeghi 2024, "Were RNNs All We Needed?").

The gate and the candidate depend on the input only, so the recursion is linear in h and can be computed for
all steps at once with a parallel scan:

    z_t = sigma(W_z x_t + b_z)
    c_t = g(W_h x_t + b_h)             g(v) = v + 1/2 for v >= 0, sigma(v) otherwise (keeps c_t > 0)
    h_t = (1 - z_t) * h_{t-1} + z_t * c_t

Unrolled, h_t = A_t h_0 + sum_{s<=t} (A_t / A_s) z_s c_s with A_t = prod_{s<=t} (1 - z_s). In log space,
a*_t = cumsum log(1 - z) and h_t = exp(a*_t) h_0 + exp(a*_t + logcumsumexp(log(z_s c_s) - a*_s)): a few
whole-sequence operations instead of T dependent steps. The scan runs over chunks of `scan_chunk` steps,
carrying h between them, which keeps a*_t small enough for float32 to stay accurate on long inputs.

backend="scan" (default) trains with the scan; backend="sequential" runs the recursion step by step, as a
stream does. The tests check that both agree. weight_ih_l{k} = [W_z; W_h] (2H, I).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gruasr.models.recurrent import Parts, RecurrentStack, masked_loop, register


def g(v: Tensor) -> Tensor:
    """The paper's positive activation: v + 1/2 for v >= 0, sigmoid(v) below (continuous at 0)."""
    return torch.where(v >= 0, v + 0.5, torch.sigmoid(v))


def log_g(v: Tensor) -> Tensor:
    """log(g(v)), computed without forming g(v) (stable for very negative v)."""
    return torch.where(v >= 0, torch.log(F.relu(v) + 0.5), -F.softplus(-v))


def mingru_scan(k: Tensor, v: Tensor, h0: Tensor, mask: Tensor | None = None, chunk: int = 32) -> tuple[Tensor, Tensor]:
    """Parallel log-space scan. k, v (T, B, H) gate and candidate pre-activations, h0 (B, H), mask (T, B).

    Returns hs (T, B, H) and h_last (B, H). At padded steps the state is carried: log(1 - z) = 0 and the
    input term is a number so negative that its exponential is exactly zero.
    """
    log_a = -F.softplus(k)  # log(1 - z)
    log_b = -F.softplus(-k) + log_g(v)  # log(z * c)
    if mask is not None:
        pad = ~mask[:, :, None]
        log_a = log_a.masked_fill(pad, 0.0)
        log_b = log_b.masked_fill(pad, torch.finfo(log_b.dtype).min / 4)
    outs = []
    h = h0
    for start in range(0, k.shape[0], chunk):
        a_star = log_a[start : start + chunk].cumsum(dim=0)  # (t, B, H)
        lcse = torch.logcumsumexp(log_b[start : start + chunk] - a_star, dim=0)
        hs = torch.exp(a_star) * h + torch.exp(a_star + lcse)
        outs.append(hs)
        h = hs[-1]
    return torch.cat(outs), h


@register
class MinGRU(RecurrentStack):
    """Multi-layer minGRU; backend "scan" (parallel, for training) or "sequential" (step by step)."""

    kind = "mingru"
    backends = ("scan", "sequential")
    inference_backend = "sequential"

    #: steps per scan chunk (see the module docstring)
    scan_chunk: int = 32

    def _init_direction(self, layer: int, suffix: str, input_size: int) -> None:
        self._add_weight(f"weight_ih_l{layer}{suffix}", 2 * self.hidden_size, input_size)
        if self.bias:
            self._add_weight(f"bias_ih_l{layer}{suffix}", 2 * self.hidden_size)

    def _run_direction(
        self, seq: Tensor, state: Parts, layer: int, suffix: str, mask: Tensor | None
    ) -> tuple[Tensor, Parts]:
        gi = F.linear(seq, self.weight("weight_ih", layer, suffix), self.param("bias_ih", layer, suffix))
        if self.backend == "scan":
            k, v = gi.chunk(2, dim=-1)  # (T, B, H) each
            hs, h = mingru_scan(k, v, state[0], mask, self.scan_chunk)
            return hs, (h,)
        hidden = self.hidden_size

        def step(gt: Tensor, h: Parts) -> Parts:
            z = torch.sigmoid(gt[:, :hidden])
            return (torch.lerp(h[0], g(gt[:, hidden:]), z),)  # (1 - z) * h + z * c

        return masked_loop(step, gi, state, mask)
