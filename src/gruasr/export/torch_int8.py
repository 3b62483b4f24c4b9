"""PyTorch's own int8 path: dynamic quantization (torch.ao) of the GRU (or Li-GRU) and the output layer.

    from gruasr.export.torch_int8 import quantize_recognizer
    asr = quantize_recognizer(OfflineRecognizer.load())     # same interface, int8 GRU and Linear weights

torch.ao's dynamic quantization covers torch.nn.GRU and torch.nn.Linear (int8 weights, activations quantized on
the fly), not our GRU class nor Conv1d: so the encoder's parameters move into a torch.nn.GRU (the same names and
shapes) that is quantized, the output Linear is quantized, and the two convolutions stay float (they hold 8% of the
weights). The quantized encoder keeps the recurrent interface (forward(x, lengths, state)), so the offline and
streaming recognizers run it unchanged. A Li-GRU keeps its own loop (LiGRU) with each direction's two products as
quantized torch.nn.Linear layers: the input projection with the batch norm folded in (LiGRU.folded) and the
recurrent one. CPU only (torch's quantized kernels: fbgemm/onednn). torch 2.13 marks
torch.ao.quantization deprecated (torchao is its successor) but runs it; its warnings are silenced here.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from gruasr.errors import ConfigError
from gruasr.models.ctc_model import CTCModel
from gruasr.models.ligru import LiGRU
from gruasr.models.recurrent import RecurrentStack


class QuantizedGRU(nn.Module):
    """A GRU stack's parameters in a dynamically quantized torch.nn.GRU, with RecurrentStack's forward contract:
    forward(x (B, T, I), lengths (B,) | None, state (L*D, B, H) | None) -> (y (B, T, D*H), lengths, state)."""

    state_parts = 1

    def __init__(self, encoder: RecurrentStack) -> None:
        super().__init__()
        if encoder.kind != "gru":
            raise ConfigError(f"torch int8 covers GRU and Li-GRU models; this one is {encoder.kind!r}")
        gru = nn.GRU(encoder.input_size, encoder.hidden_size, encoder.num_layers, batch_first=True,
                     bidirectional=encoder.bidirectional)  # fmt: skip
        gru.load_state_dict(encoder.state_dict())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the deprecation notes of torch.ao.quantization and quantized tensors
            self.gru = torch.ao.quantization.quantize_dynamic(nn.Sequential(gru), {nn.GRU}, dtype=torch.qint8)[0]
        self.num_layers = encoder.num_layers
        self.num_directions = encoder.num_directions
        self.hidden_size = encoder.hidden_size
        self.bidirectional = encoder.bidirectional
        self.output_size = encoder.output_size

    def use_inference_backend(self) -> QuantizedGRU:
        return self

    def forward(
        self, x: Tensor, lengths: Tensor | None = None, state: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None, Tensor]:
        if lengths is None or bool((lengths == x.shape[1]).all()):
            y, h = self.gru(x, state)
            return y, lengths, h
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        y, h = self.gru(packed, state)
        y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])
        return y, lengths, h


class QuantizedLiGRU(LiGRU):
    """A Li-GRU stack (batch norm or none) whose two products per direction are dynamically quantized
    torch.nn.Linear layers, run by LiGRU's own step loop (forward, step and state as LiGRU's)."""

    def __init__(self, encoder: LiGRU) -> None:
        super().__init__(encoder.input_size, encoder.hidden_size, encoder.num_layers, encoder.bidirectional,
                         bias=encoder.bias, normalization=encoder.normalization)  # fmt: skip
        self.load_state_dict(encoder.state_dict())
        self.eval()
        products = nn.ModuleDict()
        for layer in range(self.num_layers):
            for suffix in self.suffixes:
                w_ih, bias, w_hh = encoder.folded(layer, suffix)
                projection, recurrent = (
                    nn.Linear(w_ih.shape[1], w_ih.shape[0]),
                    nn.Linear(w_hh.shape[1], w_hh.shape[0], bias=False),
                )
                projection.weight.data, projection.bias.data, recurrent.weight.data = w_ih, bias, w_hh
                products[f"l{layer}{suffix}_input"], products[f"l{layer}{suffix}_recurrent"] = projection, recurrent
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.products = torch.ao.quantization.quantize_dynamic(products, {nn.Linear}, dtype=torch.qint8)

    def _projections(self, seq: Tensor, layer: int, suffix: str, mask: Tensor | None) -> tuple[Tensor, Any]:
        key = f"l{layer}{suffix}"
        return self.products[f"{key}_input"](seq), self.products[f"{key}_recurrent"]


def quantize_encoder(encoder: RecurrentStack) -> nn.Module:
    """The int8 form of a GRU or Li-GRU encoder (ConfigError for other units)."""
    if isinstance(encoder, LiGRU):
        return QuantizedLiGRU(encoder)
    return QuantizedGRU(encoder)


def quantize_model(model: CTCModel) -> CTCModel:
    """A copy of `model` (on the CPU, eval mode) with an int8 GRU or Li-GRU and output layer; see the module
    docstring."""
    quantized = copy.deepcopy(model).cpu().eval()
    encoder: Any = quantize_encoder(quantized.encoder)
    quantized.encoder = encoder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quantized.output = torch.ao.quantization.quantize_dynamic(
            nn.Sequential(quantized.output), {nn.Linear}, dtype=torch.qint8
        )[0]
    return quantized


def quantize_recognizer(recognizer: Any) -> Any:
    """An OfflineRecognizer (or the StreamingRecognizer's offline one) switched to the int8 model, in place."""
    recognizer.bundle.model = quantize_model(recognizer.bundle.model)
    recognizer.model = recognizer.bundle.model
    return recognizer
