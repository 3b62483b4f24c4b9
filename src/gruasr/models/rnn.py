"""The plain (Elman) recurrent network with tanh, in torch.nn.RNN's form and parameter layout.

h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gruasr.models.recurrent import Parts, RecurrentStack, masked_loop, register


@register
class RNN(RecurrentStack):
    """Multi-layer tanh RNN; backend="reference" is the loop below, "fused" runs torch.nn.RNN's kernels."""

    kind = "rnn"
    backends = ("reference", "fused")
    inference_backend = "fused"
    fused_op = staticmethod(torch.rnn_tanh)

    def _init_direction(self, layer: int, suffix: str, input_size: int) -> None:
        self._add_standard_weights(layer, suffix, input_size, gates=1)

    def _run_direction(
        self, seq: Tensor, state: Parts, layer: int, suffix: str, mask: Tensor | None
    ) -> tuple[Tensor, Parts]:
        w_hh, b_hh = self.weight("weight_hh", layer, suffix), self.param("bias_hh", layer, suffix)
        gi = F.linear(seq, self.weight("weight_ih", layer, suffix), self.param("bias_ih", layer, suffix))

        def step(g: Tensor, h: Parts) -> Parts:
            return (torch.tanh(g + F.linear(h[0], w_hh, b_hh)),)

        return masked_loop(step, gi, state, mask)
