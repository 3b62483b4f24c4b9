"""Long short-term memory (Hochreiter & Schmidhuber 1997), in torch.nn.LSTM's form and parameter layout.

    i, f, g, o = sigma(.), sigma(.), tanh(.), sigma(.)  of  W_i* x_t + b_i* + W_h* h_{t-1} + b_h*
    c_t = f * c_{t-1} + i * g
    h_t = o * tanh(c_t)

weight_ih_l{k} = [W_ii; W_if; W_ig; W_io] (4H, I), as torch.nn.LSTM. The state is a tuple (h, c).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from gruasr.models.recurrent import Parts, RecurrentStack, masked_loop, register


@register
class LSTM(RecurrentStack):
    """Multi-layer LSTM; backend="reference" is the loop below, "fused" runs torch.nn.LSTM's kernels."""

    kind = "lstm"
    backends = ("reference", "fused")
    inference_backend = "fused"
    state_parts = 2
    fused_op = staticmethod(torch.lstm)

    def _init_direction(self, layer: int, suffix: str, input_size: int) -> None:
        self._add_standard_weights(layer, suffix, input_size, gates=4)

    def _run_direction(
        self, seq: Tensor, state: Parts, layer: int, suffix: str, mask: Tensor | None
    ) -> tuple[Tensor, Parts]:
        w_hh, b_hh = self.weight("weight_hh", layer, suffix), self.param("bias_hh", layer, suffix)
        gi = F.linear(seq, self.weight("weight_ih", layer, suffix), self.param("bias_ih", layer, suffix))

        def step(g: Tensor, hc: Parts) -> Parts:
            h, c = hc
            i, f, cand, o = (g + F.linear(h, w_hh, b_hh)).chunk(4, dim=-1)  # each (B, H)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(cand)
            return torch.sigmoid(o) * torch.tanh(c), c

        return masked_loop(step, gi, state, mask)
