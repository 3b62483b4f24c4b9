"""The gated recurrent unit, written from its equations (Cho et al. 2014, in PyTorch's/cuDNN's form).

For input x_t and previous state h_{t-1}, with sigma the logistic function and * the elementwise product:

    r_t = sigma(W_ir x_t + b_ir + W_hr h_{t-1} + b_hr)          reset gate
    z_t = sigma(W_iz x_t + b_iz + W_hz h_{t-1} + b_hz)          update gate
    n_t = tanh(W_in x_t + b_in + r_t * (W_hn h_{t-1} + b_hn))   candidate (reset applied after W_hn, as cuDNN)
    h_t = (1 - z_t) * n_t + z_t * h_{t-1}

The weights are stored as torch.nn.GRU stores them: weight_ih_l{k} = [W_ir; W_iz; W_in] (3H, I),
weight_hh_l{k} = [W_hr; W_hz; W_hn] (3H, H), the biases likewise, so state dicts move between the two unchanged.

`gru_cell` is the equations, line for line. `GRUSequence` is the same arithmetic arranged for speed: the input
projections of all steps are one matrix product before the loop, and the backward pass is written out by hand
(back-propagation through time), so the weight gradients are one matrix product after the loop instead of one
per step. The tests check it against gru_cell, torch.nn.GRU and torch.autograd.gradcheck. See docs/gru.md.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.autograd.function import once_differentiable

from gruasr.errors import ShapeError
from gruasr.models.recurrent import Parts, RecurrentStack, register


def gru_cell(
    x: Tensor, h: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None = None, b_hh: Tensor | None = None
) -> Tensor:
    """One GRU step: x (B, I), h (B, H) -> h' (B, H). The equations of the module docstring, line for line."""
    i_r, i_z, i_n = F.linear(x, w_ih, b_ih).chunk(3, dim=-1)  # each (B, H)
    h_r, h_z, h_n = F.linear(h, w_hh, b_hh).chunk(3, dim=-1)  # each (B, H)
    r = torch.sigmoid(i_r + h_r)
    z = torch.sigmoid(i_z + h_z)
    n = torch.tanh(i_n + r * h_n)
    return (1 - z) * n + z * h


class GRUSequence(torch.autograd.Function):
    """The GRU recursion over a whole time-major sequence, with its backward pass written out.

    Inputs: gi (T, B, 3H) = x W_ih^T + b_ih for every step, h0 (B, H), w_hh (3H, H), b_hh (3H,) or None,
    mask (T, B, 1) bool or None (False at padded steps, where the state is carried unchanged).
    Outputs: hs (T, B, H), the state after every step, and h_last (B, H).
    """

    @staticmethod
    def forward(
        ctx: Any, gi: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None, mask: Tensor | None
    ) -> tuple[Tensor, Tensor]:
        steps, batch, _ = gi.shape
        hidden = h0.shape[1]
        save = ctx.needs_input_grad[0] or ctx.needs_input_grad[1] or ctx.needs_input_grad[2]
        save = save or (b_hh is not None and ctx.needs_input_grad[3])
        hs = gi.new_empty(steps, batch, hidden)
        # r, z, n and W_hn h + b_hn at every step: all the backward pass needs besides the states.
        acts = gi.new_empty(steps, batch, 4 * hidden) if save else None
        w_t = w_hh.t()
        h = h0
        for t in range(steps):
            gh = torch.addmm(b_hh, h, w_t) if b_hh is not None else h @ w_t  # (B, 3H)
            g = gi[t]  # (B, 3H)
            rz = torch.sigmoid(g[:, : 2 * hidden] + gh[:, : 2 * hidden])  # (B, 2H): [r | z]
            r, z = rz[:, :hidden], rz[:, hidden:]
            n = torch.tanh(torch.addcmul(g[:, 2 * hidden :], r, gh[:, 2 * hidden :]))  # (B, H)
            h_new = torch.lerp(n, h, z)  # (1 - z) * n + z * h
            h = h_new if mask is None else torch.where(mask[t], h_new, h)
            hs[t] = h
            if acts is not None:
                acts[t, :, : 2 * hidden] = rz
                acts[t, :, 2 * hidden : 3 * hidden] = n
                acts[t, :, 3 * hidden :] = gh[:, 2 * hidden :]
        if save:
            ctx.save_for_backward(hs, acts, h0, w_hh, mask)
        ctx.has_bias = b_hh is not None
        return hs, h.clone()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, d_hs: Tensor | None, d_last: Tensor | None) -> tuple[Tensor | None, ...]:
        hs, acts, h0, w_hh, mask = ctx.saved_tensors
        steps, batch, hidden = hs.shape
        h_prev_all = torch.cat([h0[None], hs[:-1]])  # (T, B, H): the state each step started from
        d_gi = hs.new_empty(steps, batch, 3 * hidden)
        d_gh = hs.new_empty(steps, batch, 3 * hidden)
        dh = torch.zeros_like(h0) if d_last is None else d_last.clone()
        for t in range(steps - 1, -1, -1):
            if d_hs is not None:
                dh = dh + d_hs[t]
            carried = None
            if mask is not None:  # at a padded step the gradient passes to h_{t-1} untouched
                carried = torch.where(mask[t], 0.0, dh)
                dh = torch.where(mask[t], dh, 0.0)
            a = acts[t]
            r, z = a[:, :hidden], a[:, hidden : 2 * hidden]
            n, ghn = a[:, 2 * hidden : 3 * hidden], a[:, 3 * hidden :]
            h_prev = h_prev_all[t]
            # h = (1 - z) n + z h_prev  =>  dn = dh (1 - z), dz = dh (h_prev - n), dh_prev = dh z (+ via gh)
            dn_pre = dh * (1 - z) * (1 - n * n)  # through tanh
            dz_pre = dh * (h_prev - n) * z * (1 - z)  # through sigmoid
            dr_pre = dn_pre * ghn * r * (1 - r)  # n's pre-activation holds r * ghn
            d_gi[t, :, :hidden] = dr_pre
            d_gi[t, :, hidden : 2 * hidden] = dz_pre
            d_gi[t, :, 2 * hidden :] = dn_pre
            d_gh[t, :, : 2 * hidden] = d_gi[t, :, : 2 * hidden]
            d_gh[t, :, 2 * hidden :] = dn_pre * r
            dh = torch.addmm(dh * z, d_gh[t], w_hh)  # dh z + d_gh W_hh
            if carried is not None:
                dh = dh + carried
        # The weight gradients of all steps at once: one (3H, T*B) x (T*B, H) product.
        d_w_hh = d_gh.reshape(-1, 3 * hidden).t() @ h_prev_all.reshape(-1, hidden)
        d_b_hh = d_gh.sum(dim=(0, 1)) if ctx.has_bias else None
        return d_gi, dh, d_w_hh, d_b_hh, None


def gru_sequence(
    gi: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor | None, mask: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Run the GRU recursion: gi (T, B, 3H), h0 (B, H), mask (T, B) bool -> hs (T, B, H), h_last (B, H)."""
    out: tuple[Tensor, Tensor] = GRUSequence.apply(gi, h0, w_hh, b_hh, None if mask is None else mask[..., None])
    return out


@register
class GRU(RecurrentStack):
    """Multi-layer GRU with torch.nn.GRU's parameters, written from the equations.

    backend="reference" runs this module's own recursion (gru_sequence); backend="fused" runs torch.nn.GRU's
    kernels (cuDNN on a GPU) on the same parameters. Both give the same results; the tests prove it.
    """

    kind = "gru"
    backends = ("reference", "fused")
    inference_backend = "fused"
    fused_op = staticmethod(torch.gru)

    def _init_direction(self, layer: int, suffix: str, input_size: int) -> None:
        self._add_standard_weights(layer, suffix, input_size, gates=3)  # [r; z; n]

    def _run_direction(
        self, seq: Tensor, state: Parts, layer: int, suffix: str, mask: Tensor | None
    ) -> tuple[Tensor, Parts]:
        w_ih, w_hh = self.weight("weight_ih", layer, suffix), self.weight("weight_hh", layer, suffix)
        gi = F.linear(seq, w_ih, self.param("bias_ih", layer, suffix))  # (T, B, 3H), all steps at once
        hs, h = gru_sequence(gi, state[0], w_hh, self.param("bias_hh", layer, suffix), mask)
        return hs, (h,)


class GRUCell(nn.Module):
    """One GRU step, for step-by-step (streaming) use, with torch.nn.GRUCell's parameter names.

    forward(x (B, I), h (B, H) | None) -> h' (B, H). Running it over a sequence equals the GRU layer; to move a
    layer's weights in, use `GRUCell.from_layer(gru, layer=k, reverse=False)`.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.weight_ih = nn.Parameter(torch.empty(3 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(3 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        self.bias_hh = nn.Parameter(torch.empty(3 * hidden_size)) if bias else None
        bound = hidden_size**-0.5
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    @classmethod
    def from_layer(cls, gru: GRU, layer: int = 0, reverse: bool = False) -> GRUCell:
        """A cell holding a copy of one layer and direction of `gru`."""
        suffix = "_reverse" if reverse else ""
        w_ih = gru.param("weight_ih", layer, suffix)
        if w_ih is None:
            raise ShapeError(f"the GRU has no layer {layer}{suffix}")
        cell = cls(w_ih.shape[1], gru.hidden_size, bias=gru.bias).to(w_ih)
        with torch.no_grad():
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                source, target = gru.param(name, layer, suffix), getattr(cell, name)
                if source is not None and target is not None:
                    target.copy_(source)
        return cell

    def forward(self, x: Tensor, h: Tensor | None = None) -> Tensor:
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ShapeError(f"GRUCell expects x of shape (B, {self.input_size}), got {tuple(x.shape)}")
        if h is None:
            h = x.new_zeros(x.shape[0], self.hidden_size)
        elif h.shape != (x.shape[0], self.hidden_size):
            raise ShapeError(f"GRUCell expects h of shape {(x.shape[0], self.hidden_size)}, got {tuple(h.shape)}")
        return gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)
