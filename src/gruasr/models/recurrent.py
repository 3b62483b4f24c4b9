"""One interface for every recurrent unit, and the registry that builds them by name.

Every unit (GRU, LSTM, RNN, LiGRU, MinGRU) is a multi-layer, uni- or bidirectional, batch-first stack with

    forward(x (B, T, I), lengths (B,) | None, state | None) -> (y (B, T, D*H), lengths, state)

where D is 2 when bidirectional, y is zero at padded steps, `state` is (num_layers*D, B, H) (for the LSTM a
tuple (h, c) of two such tensors, as in torch.nn.LSTM), holding each sequence's state at its last valid step,
and the reverse direction starts at each sequence's last valid frame (what pack_padded_sequence gives).

This module owns what is common: argument checks, lengths and masks, stacking layers and directions, the
dropout between layers, and the "fused" backend that runs PyTorch's own kernels (cuDNN on a GPU) on the same
parameters. A subclass only says which parameters one direction of one layer has and how one direction runs
over a time-major sequence.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from gruasr.errors import ConfigError, ShapeError

State = Tensor | tuple[Tensor, ...]
Parts = tuple[Tensor, ...]  # the state of one direction of one layer: (h,) or (h, c), each (B, H)
StepFn = Callable[[Tensor, Parts], Parts]


def masked_loop(step: StepFn, gi: Tensor, state: Parts, mask: Tensor | None) -> tuple[Tensor, Parts]:
    """Run `step` over time. gi (T, B, G) holds the input projections, mask (T, B) bool marks valid steps.

    At a padded step the state is carried unchanged (torch.where, so exactly), which is why the final state is
    each sequence's state at its last valid step. Returns hs (T, B, H), the first state part at every step.
    """
    outs = []
    for t in range(gi.shape[0]):
        new = step(gi[t], state)
        if mask is not None:
            valid = mask[t, :, None]  # (B, 1)
            new = tuple(torch.where(valid, n, s) for n, s in zip(new, state, strict=True))
        state = new
        outs.append(state[0])
    return torch.stack(outs), state


def reverse_index(lengths: Tensor, max_len: int) -> Tensor:
    """Index (T, B) that reverses each sequence within its own length and leaves the padding in place.

    Applying it twice is the identity, so one index serves to reverse the input and to restore the output.
    """
    t = torch.arange(max_len, device=lengths.device)[:, None]  # (T, 1)
    last = lengths[None, :] - 1  # (1, B)
    return torch.where(t <= last, last - t, t)  # (T, B)


def reverse_padded(seq: Tensor, index: Tensor | None) -> Tensor:
    """Reverse a time-major sequence (T, B, F) within each sequence's length (index from reverse_index)."""
    if index is None:
        return seq.flip(0)
    return seq.gather(0, index[:, :, None].expand_as(seq))


class RecurrentStack(nn.Module):
    """Base class of the recurrent units; see the module docstring for the contract."""

    #: registry name ("gru", "lstm", ...)
    kind: ClassVar[str] = ""
    #: the accepted backends; the first is the default
    backends: ClassVar[tuple[str, ...]] = ("reference",)
    #: the fastest backend for inference on a CPU (measured: benchmarks/recurrent_speed.py), if not the default
    inference_backend: ClassVar[str | None] = None
    #: tensors per direction state: 1, or 2 for the LSTM's (h, c)
    state_parts: ClassVar[int] = 1
    #: the kernel of torch.nn.GRU/LSTM/RNN that the "fused" backend runs (torch.gru, torch.lstm, ...), if any
    fused_op: ClassVar[Callable[..., Any] | None] = None

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
        dropout: float = 0.0,
        backend: str | None = None,
        bias: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (
            ("input_size", input_size),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{type(self).__name__}: {name} must be a positive int, got {value!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ConfigError(f"{type(self).__name__}: dropout must be in [0, 1), got {dropout!r}")
        backend = self.backends[0] if backend is None else backend
        if backend not in self.backends:
            raise ConfigError(f"{type(self).__name__}: backend must be one of {list(self.backends)}, got {backend!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bool(bidirectional)
        self.dropout = float(dropout)
        self.backend = backend
        self.bias = bool(bias)
        self._init_submodules()
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * self.num_directions
            for suffix in self.suffixes:
                self._init_direction(layer, suffix, layer_in)
        self.reset_parameters()

    def use_inference_backend(self) -> RecurrentStack:
        """Switch to the fastest inference backend (same parameters, same results to float rounding)."""
        if self.inference_backend is not None:
            self.backend = self.inference_backend
        return self

    # -- what a subclass provides ------------------------------------------------------------------------

    def _init_submodules(self) -> None:
        """Create containers the directions fill (e.g. LiGRU's norms); called before _init_direction."""

    def _init_direction(self, layer: int, suffix: str, input_size: int) -> None:
        """Register the parameters of one direction of one layer."""
        raise NotImplementedError

    def _run_direction(
        self, seq: Tensor, state: Parts, layer: int, suffix: str, mask: Tensor | None
    ) -> tuple[Tensor, Parts]:
        """Run one direction of one layer over seq (T, B, I); return hs (T, B, H) and the final state."""
        raise NotImplementedError

    # -- common machinery --------------------------------------------------------------------------------

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    @property
    def output_size(self) -> int:
        return self.hidden_size * self.num_directions

    def _add_weight(self, name: str, *shape: int) -> None:
        self.register_parameter(name, nn.Parameter(torch.empty(*shape)))

    def _add_standard_weights(self, layer: int, suffix: str, input_size: int, gates: int) -> None:
        """torch.nn.RNN/GRU/LSTM's parameters: weight_ih (G*H, I), weight_hh (G*H, H), bias_ih, bias_hh."""
        rows = gates * self.hidden_size
        self._add_weight(f"weight_ih_l{layer}{suffix}", rows, input_size)
        self._add_weight(f"weight_hh_l{layer}{suffix}", rows, self.hidden_size)
        if self.bias:
            self._add_weight(f"bias_ih_l{layer}{suffix}", rows)
            self._add_weight(f"bias_hh_l{layer}{suffix}", rows)

    def param(self, name: str, layer: int, suffix: str = "") -> Tensor | None:
        """The parameter `name` (e.g. "bias_hh") of a layer and direction, or None (no bias)."""
        value: Tensor | None = self._parameters.get(f"{name}_l{layer}{suffix}")
        return value

    def weight(self, name: str, layer: int, suffix: str = "") -> Tensor:
        """Like `param`, for a parameter every configuration has (e.g. "weight_hh")."""
        value = self.param(name, layer, suffix)
        if value is None:
            raise ConfigError(f"{type(self).__name__} has no parameter {name}_l{layer}{suffix}")
        return value

    def reset_parameters(self) -> None:
        """torch.nn.GRU's initialisation: every direct parameter uniform in +-1/sqrt(hidden_size)."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self._parameters.values():
            if p is not None:
                nn.init.uniform_(p, -bound, bound)

    def extra_repr(self) -> str:
        return (
            f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
            f"bidirectional={self.bidirectional}, dropout={self.dropout}, backend={self.backend!r}"
        )

    def forward(
        self, x: Tensor, lengths: Tensor | Sequence[int] | None = None, state: State | None = None
    ) -> tuple[Tensor, Tensor | None, State]:
        """x (B, T, input_size), lengths (B,) int64 or None, state as returned -> (y, lengths, state)."""
        self._check_input(x)
        batch, max_len, _ = x.shape
        lengths = self._check_lengths(lengths, batch, max_len)
        init = self._check_state(state, batch, x)
        if self.backend == "fused":
            return self._forward_fused(x, lengths, init)

        mask = None
        rev = None
        if lengths is not None and bool((lengths < max_len).any()):
            dev_lengths = lengths.to(x.device)
            mask = torch.arange(max_len, device=x.device)[:, None] < dev_lengths[None, :]  # (T, B)
            if self.bidirectional:
                rev = reverse_index(dev_lengths, max_len)
        seq = x.transpose(0, 1)  # (T, B, I): time-major, so seq[t] is contiguous in the loops
        finals: list[Parts] = []
        for layer in range(self.num_layers):
            outs = []
            for d, suffix in enumerate(self.suffixes):
                start = tuple(part[layer * self.num_directions + d] for part in init)
                inp = seq if d == 0 else reverse_padded(seq, rev)
                hs, last = self._run_direction(inp, start, layer, suffix, mask)  # (T, B, H)
                outs.append(hs if d == 0 else reverse_padded(hs, rev))
                finals.append(last)
            seq = outs[0] if len(outs) == 1 else torch.cat(outs, dim=-1)  # (T, B, D*H)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                seq = F.dropout(seq, self.dropout, training=True)
        if mask is not None:
            seq = seq.masked_fill(~mask[:, :, None], 0.0)
        y = seq.transpose(0, 1).contiguous()  # (B, T, D*H)
        parts = tuple(torch.stack([f[i] for f in finals]) for i in range(self.state_parts))
        return y, lengths, parts[0] if self.state_parts == 1 else parts

    def step(self, x: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """One time step for streaming: x (B, input_size) -> (y (B, H), state). Unidirectional only."""
        if self.bidirectional:
            raise ConfigError(f"{type(self).__name__}: step() needs a unidirectional model")
        if x.dim() != 2:
            raise ShapeError(f"step() expects x of shape (B, {self.input_size}), got {tuple(x.shape)}")
        y, _, state = self.forward(x[:, None, :], None, state)
        return y[:, 0], state

    # -- checks at the boundary --------------------------------------------------------------------------

    def _reference_weight(self) -> Tensor:
        weight: Tensor = self.weight("weight_ih", 0)
        return weight

    def _check_input(self, x: Tensor) -> None:
        name = type(self).__name__
        if not isinstance(x, Tensor):
            raise ShapeError(f"{name}: x must be a torch.Tensor, got {type(x).__name__}")
        if x.dim() != 3:
            raise ShapeError(f"{name}: expected x of shape (B, T, {self.input_size}), got {tuple(x.shape)}")
        if x.shape[2] != self.input_size:
            raise ShapeError(
                f"{name}: expected input_size {self.input_size} in x's last dimension, got {tuple(x.shape)}"
            )
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ShapeError(f"{name}: empty batch or sequence, x has shape {tuple(x.shape)}")
        w = self._reference_weight()
        if not x.is_floating_point() or x.dtype != w.dtype:
            raise ShapeError(f"{name}: x has dtype {x.dtype} but the parameters are {w.dtype}")
        if x.device != w.device:
            raise ShapeError(f"{name}: x is on {x.device} but the parameters are on {w.device}")

    def _check_lengths(self, lengths: Tensor | Sequence[int] | None, batch: int, max_len: int) -> Tensor | None:
        if lengths is None:
            return None
        name = type(self).__name__
        if not isinstance(lengths, Tensor):
            lengths = torch.as_tensor(lengths)
        if lengths.is_floating_point() or lengths.dtype == torch.bool or lengths.is_complex():
            raise ShapeError(f"{name}: lengths must be an integer tensor, got {lengths.dtype}")
        if lengths.shape != (batch,):
            raise ShapeError(f"{name}: lengths must have shape ({batch},), got {tuple(lengths.shape)}")
        lengths = lengths.to(torch.int64)
        low, high = int(lengths.min()), int(lengths.max())
        if low < 1 or high > max_len:
            raise ShapeError(f"{name}: lengths must lie in [1, T={max_len}], got values from {low} to {high}")
        return lengths

    def _check_state(self, state: State | None, batch: int, x: Tensor) -> Parts:
        name = type(self).__name__
        shape = (self.num_layers * self.num_directions, batch, self.hidden_size)
        if state is None:
            zeros = x.new_zeros(shape)
            return tuple(zeros for _ in range(self.state_parts))
        parts = (state,) if isinstance(state, Tensor) else tuple(state)
        if len(parts) != self.state_parts:
            want = "a tensor" if self.state_parts == 1 else f"a tuple of {self.state_parts} tensors"
            raise ShapeError(f"{name}: state must be {want}, got {len(parts)}")
        for part in parts:
            if not isinstance(part, Tensor) or tuple(part.shape) != shape:
                got = tuple(part.shape) if isinstance(part, Tensor) else type(part).__name__
                raise ShapeError(f"{name}: state must have shape {shape}, got {got}")
            if part.dtype != x.dtype or part.device != x.device:
                raise ShapeError(f"{name}: state is {part.dtype} on {part.device}, x is {x.dtype} on {x.device}")
        return parts

    # -- the fused backend -------------------------------------------------------------------------------

    def _fused_weights(self) -> list[Tensor]:
        """Our parameters in the order torch's RNN kernels take them: per layer and direction w_ih, w_hh, b_ih,
        b_hh (torch.nn.RNNBase's order; the names are the same)."""
        names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh") if self.bias else ("weight_ih", "weight_hh")
        return [self.weight(n, layer, suffix) for layer in range(self.num_layers) for suffix in self.suffixes
                for n in names]  # fmt: skip

    def _forward_fused(self, x: Tensor, lengths: Tensor | None, init: Parts) -> tuple[Tensor, Tensor | None, State]:
        """torch.nn.GRU/LSTM/RNN's kernel called directly on our parameters (what their forward calls, without
        the module around it: per call that saves more than the step of a small streaming chunk costs)."""
        op = self.fused_op
        if op is None:
            raise ConfigError(f"{type(self).__name__} has no fused backend")
        weights = self._fused_weights()
        config = (self.bias, self.num_layers, self.dropout, self.training, self.bidirectional)
        hx: Any = init[0] if self.state_parts == 1 else list(init)
        with warnings.catch_warnings():
            # cuDNN wants one flat weight buffer and copies ours into one: correct, merely a warning.
            warnings.filterwarnings("ignore", message=".*contiguous chunk of memory.*")
            if lengths is None or bool((lengths == x.shape[1]).all()):
                out = op(x, hx, weights, *config, True)
                return out[0], lengths, self._fused_state(out[1:])
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            order, unorder = packed.sorted_indices, packed.unsorted_indices
            assert order is not None and unorder is not None  # enforce_sorted=False always sets them
            hx = hx.index_select(1, order) if self.state_parts == 1 else [h.index_select(1, order) for h in hx]
            out = op(packed.data, packed.batch_sizes, hx, weights, *config)
            y, _ = pad_packed_sequence(
                PackedSequence(out[0], packed.batch_sizes, order, unorder), batch_first=True, total_length=x.shape[1]
            )
            state = tuple(h.index_select(1, unorder) for h in out[1:])
            return y, lengths, self._fused_state(state)

    def _fused_state(self, parts: Sequence[Tensor]) -> State:
        return parts[0] if self.state_parts == 1 else tuple(parts)


_REGISTRY: dict[str, type[RecurrentStack]] = {}


def register(cls: type[RecurrentStack]) -> type[RecurrentStack]:
    """Class decorator: make a unit buildable by `recurrent(cls.kind, ...)`."""
    _REGISTRY[cls.kind] = cls
    return cls


#: the order in which tables and studies list the units
UNIT_ORDER = ("gru", "lstm", "rnn", "ligru", "mingru")


def available() -> list[str]:
    """Names accepted by `recurrent`: the built-in units in UNIT_ORDER, then any registered later."""
    _load_units()
    return sorted(_REGISTRY, key=lambda n: (UNIT_ORDER.index(n) if n in UNIT_ORDER else len(UNIT_ORDER), n))


def recurrent(name: str, **kwargs: Any) -> RecurrentStack:
    """Build a recurrent unit by name: "gru", "lstm", "rnn", "ligru" or "mingru"."""
    _load_units()
    try:
        cls = _REGISTRY[name.lower()]
    except KeyError:
        raise ConfigError(f"unknown recurrent unit {name!r}; choose from {sorted(_REGISTRY)}") from None
    return cls(**kwargs)


def _load_units() -> None:
    # The units register themselves on import; importing the package imports them all.
    import gruasr.models  # noqa: F401
