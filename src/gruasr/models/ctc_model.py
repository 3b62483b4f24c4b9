"""The recognizer's network: convolutional subsampling -> recurrent encoder -> linear -> CTC log-probabilities.

    features (B, T, F) --Conv1d(k3, s2) GELU Conv1d(k3, s2) GELU--> (B, ceil(T/4), C)
                       --recurrent encoder (GRU by default; any unit of the registry)--> (B, T', D*H)
                       --dropout, Linear--> log_softmax over the tokens (B, T', V)

The convolutions are causal (padded on the left only): an output frame depends on the frames up to its own
position, never on later ones or on padding, so a unidirectional model can stream chunk by chunk and give the
result of the whole utterance. Subsampling by 4 turns 10 ms frames into 40 ms steps: a fast spoken digit of
0.4 s still gets 10 steps for its 3-5 letters and the blanks between doubled letters.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from gruasr.errors import ConfigError, ShapeError
from gruasr.models.recurrent import RecurrentStack, State, available, recurrent


@dataclass(frozen=True)
class ModelConfig:
    """Dimensions of the CTC model; saved in every checkpoint."""

    input_dim: int = 80
    vocab_size: int = 29
    unit: str = "gru"
    hidden_size: int = 256
    num_layers: int = 4
    bidirectional: bool = True
    dropout: float = 0.1
    conv_channels: int = 256
    #: the recurrent unit's backend (None: its default); "fused" runs torch/cuDNN kernels where they exist
    backend: str | None = None
    #: extra keyword arguments of the unit (e.g. {"normalization": "layernorm"} for ligru)
    unit_options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.unit not in available():
            raise ConfigError(f"model.unit must be one of {available()}, got {self.unit!r}")
        for name in ("input_dim", "vocab_size", "hidden_size", "num_layers", "conv_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"model.{name} must be a positive int, got {value!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        unknown = set(data) - set(cls.__dataclass_fields__)
        if unknown:
            raise ConfigError(f"unknown model config keys: {sorted(unknown)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


SUBSAMPLING = 4
_KERNEL, _STRIDE = 3, 2


def subsampled_lengths(lengths: Tensor) -> Tensor:
    """Output steps of the two stride-2 convolutions: ceil(ceil(T / 2) / 2) = ceil(T / 4)."""
    return (lengths + SUBSAMPLING - 1) // SUBSAMPLING


class Subsampling(nn.Module):
    """Two causal stride-2 Conv1d layers with GELU: (B, T, F) -> (B, ceil(T/4), C)."""

    def __init__(self, input_dim: int, channels: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv1d(input_dim, channels, _KERNEL, _STRIDE)
        self.conv2 = nn.Conv1d(channels, channels, _KERNEL, _STRIDE)
        self._tap_major: tuple[tuple[tuple[int, int], ...], Tensor, Tensor] | None = None  # see last_outputs

    def forward(self, x: Tensor) -> Tensor:
        x = x.transpose(1, 2)  # (B, F, T)
        x = F.gelu(self.conv1(F.pad(x, (_KERNEL - 1, 0))))  # (B, C, ceil(T/2)): left padding only
        x = F.gelu(self.conv2(F.pad(x, (_KERNEL - 1, 0))))  # (B, C, ceil(T/4))
        return x.transpose(1, 2)  # (B, T', C)

    def last_outputs(self, windows: Sequence[tuple[Tensor, int]]) -> list[Tensor]:
        """For each (window (w, F), m): forward(window)'s last m outputs (m, C), computing only what they need,
        for streaming, where a window is a few frames of context and a few new ones and only the new outputs are
        wanted. Each convolution becomes one matrix product over the rows of every window (im2col): far less
        work and per-call overhead than a Conv1d on small padded batches. Same arithmetic as forward to float
        rounding (a different summation order), tested."""
        k, s = _KERNEL, _STRIDE
        plans, rows1 = [], []
        for window, m in windows:
            total = -(-window.shape[0] // SUBSAMPLING)
            if not 0 < m <= total:
                raise ShapeError(f"want 1..{total} outputs of a {window.shape[0]}-frame window, got {m}")
            first = s * (total - m) - (k - 1)  # the first conv1 output the first wanted conv2 output reads
            last = s * (total - 1)  # and the last one the last reads
            start = max(first, 0)
            padded = F.pad(window, (0, 0, k - 1, 0))  # conv1's left padding: frame f at row f + k - 1
            taps = padded[s * start : s * last + k].unfold(0, k, s)  # (outputs, F, k)
            rows1.append(taps.transpose(1, 2).reshape(taps.shape[0], -1))  # tap-major rows (outputs, k * F)
            plans.append((start - first, m))  # conv2's left padding: zero conv1 outputs before the window
        w1, w2 = self._tap_major_weights()
        hidden = F.gelu(F.linear(torch.cat(rows1), w1, self.conv1.bias)).split([r.shape[0] for r in rows1])
        rows2 = []
        for h, (pad, _) in zip(hidden, plans, strict=True):
            taps = F.pad(h, (0, 0, pad, 0)).unfold(0, k, s)  # (m, C, k)
            rows2.append(taps.transpose(1, 2).reshape(taps.shape[0], -1))
        out = F.gelu(F.linear(torch.cat(rows2), w2, self.conv2.bias))
        return list(out.split([m for _, m in plans]))

    def _tap_major_weights(self) -> tuple[Tensor, Tensor]:
        """The convolutions' weights as (C, k * F) matrices, tap-major like last_outputs' rows; kept until the
        weights change (a copy each call would cost as much as the products)."""
        key = tuple((w.data_ptr(), w._version) for w in (self.conv1.weight, self.conv2.weight))
        if self._tap_major is None or self._tap_major[0] != key:
            w1 = self.conv1.weight.detach().permute(0, 2, 1).reshape(self.conv1.out_channels, -1)
            w2 = self.conv2.weight.detach().permute(0, 2, 1).reshape(self.conv2.out_channels, -1)
            self._tap_major = (key, w1, w2)
        return self._tap_major[1], self._tap_major[2]


class CTCModel(nn.Module):
    """Subsampling + recurrent encoder + output layer; forward gives CTC log-probabilities."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.subsampling = Subsampling(config.input_dim, config.conv_channels)
        self.encoder: RecurrentStack = recurrent(
            config.unit,
            input_size=config.conv_channels,
            hidden_size=config.hidden_size,
            num_layers=config.num_layers,
            bidirectional=config.bidirectional,
            dropout=config.dropout,
            backend=config.backend,
            **config.unit_options,
        )
        self.dropout = nn.Dropout(config.dropout)
        self.output = nn.Linear(self.encoder.output_size, config.vocab_size)

    def forward(
        self, features: Tensor, lengths: Tensor | None = None, state: State | None = None
    ) -> tuple[Tensor, Tensor, State]:
        """features (B, T, F), lengths (B,) -> log_probs (B, T', V), out_lengths (B,), encoder state."""
        if features.dim() != 3 or features.shape[2] != self.config.input_dim:
            raise ShapeError(f"expected features (B, T, {self.config.input_dim}), got {tuple(features.shape)}")
        if lengths is None:
            lengths = torch.full((features.shape[0],), features.shape[1], dtype=torch.int64)
        x = self.subsampling(features)  # (B, T', C)
        out_lengths = subsampled_lengths(lengths.to(torch.int64).cpu())
        y, _, state = self.encoder(x, out_lengths, state)  # (B, T', D*H)
        logits = self.output(self.dropout(y))  # (B, T', V)
        return logits.log_softmax(dim=-1), out_lengths, state

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
