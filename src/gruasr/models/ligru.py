"""The light GRU (Li-GRU; Ravanelli, Brakel, Omologo & Bengio 2018, "Light gated recurrent units for speech
recognition"): no reset gate, a ReLU candidate, and normalization of the input projections.

    a_t = Norm(W x_t)                  [a_z; a_h], normalized over the valid frames (batch norm in the paper)
    z_t = sigma(a_z + U_z h_{t-1})
    c_t = ReLU(a_h + U_h h_{t-1})
    h_t = z_t * h_{t-1} + (1 - z_t) * c_t

weight_ih_l{k} = [W_z; W_h] (2H, I) and weight_hh_l{k} = [U_z; U_h] (2H, H). The normalization supplies the
shift, so there is no bias unless normalization="none". Batch norm statistics are taken over valid frames
only (padding does not leak in); at inference it uses its running statistics, frame by frame, so streaming
gives the same result as a whole utterance.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gruasr.errors import ConfigError
from gruasr.models.recurrent import Parts, RecurrentStack, masked_loop, register

NORMALIZATIONS = ("batchnorm", "layernorm", "none")


@register
class LiGRU(RecurrentStack):
    """Multi-layer Li-GRU; `normalization` is "batchnorm" (the paper's), "layernorm" or "none"."""

    kind = "ligru"
    norms: nn.ModuleDict

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        backend: str | None = None,
        bias: bool = True,
        normalization: str = "batchnorm",
    ) -> None:
        if normalization not in NORMALIZATIONS:
            raise ConfigError(f"LiGRU: normalization must be one of {list(NORMALIZATIONS)}, got {normalization!r}")
        self.normalization = normalization
        super().__init__(input_size, hidden_size, num_layers, bidirectional, dropout, backend, bias)

    def _init_submodules(self) -> None:
        self.norms = nn.ModuleDict()

    def _init_direction(self, layer: int, suffix: str, input_size: int) -> None:
        hidden = self.hidden_size
        self._add_weight(f"weight_ih_l{layer}{suffix}", 2 * hidden, input_size)
        self._add_weight(f"weight_hh_l{layer}{suffix}", 2 * hidden, hidden)
        if self.normalization == "batchnorm":
            self.norms[f"l{layer}{suffix}"] = nn.BatchNorm1d(2 * hidden, momentum=0.05)
        elif self.normalization == "layernorm":
            self.norms[f"l{layer}{suffix}"] = nn.LayerNorm(2 * hidden)
        elif self.bias:
            self._add_weight(f"bias_ih_l{layer}{suffix}", 2 * hidden)

    def _normalize(self, gi: Tensor, key: str, mask: Tensor | None) -> Tensor:
        if key not in self.norms:
            return gi
        norm = self.norms[key]
        if isinstance(norm, nn.BatchNorm1d):
            if mask is None:
                return norm(gi.reshape(-1, gi.shape[-1])).reshape(gi.shape)
            valid = mask[:, :, None]  # (T, B, 1): statistics over valid frames only
            return torch.zeros_like(gi).masked_scatter(valid, norm(gi[mask]))
        return norm(gi)

    def folded(self, layer: int, suffix: str = "") -> tuple[Tensor, Tensor, Tensor]:
        """One direction as inference computes it: (W (2H, I), b (2H), U (2H, H)) with a = W x + b the normalized
        input projection. Batch norm's running statistics fold into W and b (s = gamma / sqrt(var + eps):
        W = s * W_ih, b = beta - s * mean); without normalization b is the bias (or zero). Layer norm depends on
        each frame's own statistics and does not fold (ConfigError). Used by the ONNX export and torch int8."""
        key = f"l{layer}{suffix}"
        w_ih = self.weight("weight_ih", layer, suffix).detach().float()
        w_hh = self.weight("weight_hh", layer, suffix).detach().float()
        if self.normalization == "layernorm":
            raise ConfigError("a Li-GRU with layer norm cannot be folded into fixed weights (batch norm can)")
        if self.normalization == "none":
            bias = self.param("bias_ih", layer, suffix)
            return w_ih, torch.zeros(w_ih.shape[0]) if bias is None else bias.detach().float(), w_hh
        norm = self.norms[key]
        assert isinstance(norm, nn.BatchNorm1d) and norm.running_mean is not None and norm.running_var is not None
        with torch.no_grad():
            scale = norm.weight.float() / torch.sqrt(norm.running_var.float() + norm.eps)
            shift = norm.bias.float() - scale * norm.running_mean.float()
        return w_ih * scale[:, None], shift, w_hh

    def _projections(
        self, seq: Tensor, layer: int, suffix: str, mask: Tensor | None
    ) -> tuple[Tensor, Callable[[Tensor], Tensor]]:
        """(the normalized input projections of every step (T, B, 2H), the recurrent product h -> U h)."""
        gi = F.linear(seq, self.weight("weight_ih", layer, suffix), self.param("bias_ih", layer, suffix))
        w_hh = self.weight("weight_hh", layer, suffix)
        return self._normalize(gi, f"l{layer}{suffix}", mask), lambda h: F.linear(h, w_hh)

    def _run_direction(
        self, seq: Tensor, state: Parts, layer: int, suffix: str, mask: Tensor | None
    ) -> tuple[Tensor, Parts]:
        hidden = self.hidden_size
        gi, recurrent = self._projections(seq, layer, suffix, mask)  # (T, B, 2H)

        def step(g: Tensor, h: Parts) -> Parts:
            a = g + recurrent(h[0])  # (B, 2H)
            z = torch.sigmoid(a[:, :hidden])
            cand = torch.relu(a[:, hidden:])
            return (torch.lerp(cand, h[0], z),)  # z * h + (1 - z) * cand

        return masked_loop(step, gi, state, mask)
