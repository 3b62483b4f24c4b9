"""ONNX export of a model folder: the whole-utterance model and the streaming step model, with their metadata.

    gruasr model export --onnx MODEL --out DIR [--int8]

    DIR/model.onnx      fbank (B, T, F) float32, lengths (B,) int64 -> log_probs (B, ceil(T/4), V), out_lengths (B,)
    DIR/streaming.onnx  (unidirectional models) one step of many streams at once, see `StreamingGraph`
    DIR/export.json     tokens, feature config, CMVN, decoding defaults, model config, versions, the SHA-256 of
                        the source weights (the same JSON is in each graph's metadata_props under "gruasr")
    DIR/lm.arpa, DIR/lexicon.txt   copied from the model folder when it has them
    DIR/checksums.sha256           every other file's SHA-256 (gruasr.integrity), written last

Both graphs take the raw log-mel filterbank (kaldi-native-fbank's or gruasr's Fbank, which match) and apply the
model's global CMVN themselves, so a runtime needs no statistics of its own.

The GRU: our layers hold torch.nn.GRU's parameters (r, z, n; reset applied to W_hn h + b_hn), so the graphs run
torch.nn.GRU on them and the TorchScript exporter (dynamo=False) writes ONNX GRU nodes with linear_before_reset=1
and the gates reordered to ONNX's z, r, n. (The dynamo exporter has written linear_before_reset=0: silently wrong.)
The exporter's output is checked: every GRU node must say linear_before_reset=1, and the tests compare ONNX
Runtime with PyTorch. Lengths become the GRU's sequence_lens (the reverse direction starts at each sequence's
last valid step, as ours does), and initial states are inputs, so the batch dimension stays dynamic.

The Li-GRU is a GRU node too (gru_parameters): its reset gate held open, batch norm folded into the input weights,
and the node's activations set to [Sigmoid, Relu]. Other units (LSTM, RNN, minGRU) are refused.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from gruasr.bundle import LEXICON, LM, PRETRAINED, ModelBundle, atomic_dir, commit_dir, load_bundle
from gruasr.errors import ConfigError
from gruasr.integrity import sha256
from gruasr.models.ctc_model import SUBSAMPLING, CTCModel
from gruasr.models.ligru import LiGRU

FORMAT = "gruasr-onnx"
VERSION = 1
UTTERANCE = "model.onnx"
STREAMING = "streaming.onnx"
META = "export.json"
OPSET = 17
#: frames of normalized input and conv1 outputs each causal stride-2 convolution keeps between chunks
CONTEXT = 2


def resolve_model(model: str | os.PathLike[str]) -> Path:
    """A model folder, or the name of a bundled model (telephone, telephone-streaming)."""
    path = Path(model)
    if path.is_dir():
        return path
    if (PRETRAINED / str(model) / "model.json").is_file():
        return PRETRAINED / str(model)
    raise ConfigError(
        f"{model}: neither a model folder nor a bundled model ({sorted(p.name for p in PRETRAINED.iterdir())})"
    )


#: the reset gate's input bias that holds it open in a Li-GRU written as a GRU node: sigmoid(40) is 1.0 in float32
OPEN_RESET = 40.0


def gru_parameters(encoder: nn.Module) -> tuple[dict[str, Tensor], str]:
    """A recurrent encoder as torch.nn.GRU's parameters (gates r, z, n) and the candidate's activation, the
    function an ONNX GRU node (linear_before_reset=1, activations [Sigmoid, candidate]) computes:

    - GRU: its own parameters (the same names and shapes as torch.nn.GRU's), "Tanh";
    - Li-GRU (batch norm or none): z and the candidate are a GRU's whose reset gate is held open (zero weights,
      input bias OPEN_RESET, so r = 1 and the candidate reads U_h h in full), with the inference-time batch norm
      folded into the input weights and bias (a = s * W x + (beta - s * mean), s = gamma / sqrt(var + eps)),
      and "Relu". Layer norm depends on each frame's own statistics and cannot be folded: LiGRU.folded refuses it."""
    kind = getattr(encoder, "kind", None)
    if kind == "gru":
        return dict(encoder.state_dict()), "Tanh"
    if not isinstance(encoder, LiGRU):
        raise ConfigError(f"ONNX export supports GRU and Li-GRU models; this one is {kind!r}")
    hidden = encoder.hidden_size
    state: dict[str, Tensor] = {}
    for layer in range(encoder.num_layers):
        for suffix in encoder.suffixes:
            w_ih, bias, w_hh = encoder.folded(layer, suffix)
            key = f"l{layer}{suffix}"
            state[f"weight_ih_{key}"] = torch.cat([torch.zeros(hidden, w_ih.shape[1]), w_ih])  # r, z, n
            state[f"weight_hh_{key}"] = torch.cat([torch.zeros(hidden, hidden), w_hh])
            state[f"bias_ih_{key}"] = torch.cat([torch.full((hidden,), OPEN_RESET), bias])
            state[f"bias_hh_{key}"] = torch.zeros(3 * hidden)
    return state, "Relu"


class _Parts(nn.Module):
    """What both graphs share: CMVN, the two convolutions, a torch.nn.GRU holding our GRU's parameters, the output."""

    mean: Tensor
    std: Tensor

    def __init__(self, bundle: ModelBundle) -> None:
        super().__init__()
        model: CTCModel = bundle.model
        config = model.config
        state, self.candidate = gru_parameters(model.encoder)
        if bundle.cmvn.leg_prior:
            raise ConfigError(
                f"ONNX export does not carry per-leg normalization yet; this model was trained with cmvn.leg_prior = "
                f"{bundle.cmvn.leg_prior}"
            )
        self.register_buffer("mean", bundle.cmvn.mean.detach().float().cpu().clone())
        self.register_buffer("std", bundle.cmvn.std.detach().float().cpu().clone())
        self.conv1 = model.subsampling.conv1
        self.conv2 = model.subsampling.conv2
        self.gru = nn.GRU(
            config.conv_channels, config.hidden_size, config.num_layers, batch_first=True,
            bidirectional=config.bidirectional,
        )  # fmt: skip
        self.gru.load_state_dict(state)
        self.output = model.output
        self.layers = config.num_layers * (2 if config.bidirectional else 1)
        self.hidden = config.hidden_size

    def normalize(self, fbank: Tensor) -> Tensor:
        return (fbank - self.mean) / self.std  # (B, T, F), as GlobalCMVN

    def recurrent(self, x: Tensor, steps: Tensor, h0: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, T', C), steps (B,) valid steps, h0 (L*D, B, H) -> log_probs (B, T', V), state (L*D, B, H)."""
        packed = pack_padded_sequence(x, steps, batch_first=True)  # exported as the GRU's sequence_lens
        y, state = self.gru(packed, h0)
        y, _ = pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])  # (B, T', D*H), zero past steps
        return self.output(y).log_softmax(dim=-1), state


class UtteranceGraph(nn.Module):
    """fbank (B, T, F), lengths (B,) -> log_probs (B, ceil(T/4), V), out_lengths (B,): CTCModel.forward's result
    on CMVN(fbank), the state starting at zero."""

    def __init__(self, parts: _Parts) -> None:
        super().__init__()
        self.parts = parts

    def forward(self, fbank: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
        p = self.parts
        x = p.normalize(fbank).transpose(1, 2)  # (B, F, T)
        x = F.gelu(p.conv1(F.pad(x, (2, 0))))  # (B, C, ceil(T/2)): causal, left padding only
        x = F.gelu(p.conv2(F.pad(x, (2, 0)))).transpose(1, 2)  # (B, T', C)
        steps = (lengths + SUBSAMPLING - 1) // SUBSAMPLING
        h0 = torch.zeros(p.layers, fbank.shape[0], p.hidden)
        log_probs, _ = p.recurrent(x, steps, h0)
        return log_probs, steps


class StreamingGraph(nn.Module):
    """One step of many streams (a unidirectional model):

        fbank (B, T, F)        each stream's new frames, T a multiple of 4 (pad a short last chunk)
        lengths (B,) int64     the valid frames of each row (1..T; a multiple of 4 unless the utterance ends here)
        context1 (B, 2, F)     the last 2 normalized frames before the chunk (zeros at an utterance's start)
        context2 (B, 2, C)     the last 2 outputs of the first convolution (zeros at an utterance's start)
        state (L, B, H)        the GRU's state (zeros at an utterance's start)
     -> log_probs (B, T/4, V), out_lengths (B,) = ceil(lengths / 4), context1, context2, state (new)

    Zeros are exactly the convolutions' left padding (conv1 pads its input, conv2 its input, conv1's output), so
    chunk after chunk gives the whole utterance's log-probabilities whatever the chunk sizes (multiples of 4)."""

    def __init__(self, parts: _Parts) -> None:
        super().__init__()
        self.parts = parts

    def forward(
        self, fbank: Tensor, lengths: Tensor, context1: Tensor, context2: Tensor, state: Tensor
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        p = self.parts
        x = torch.cat([context1, p.normalize(fbank)], dim=1)  # (B, 2 + T, F)
        h = torch.cat([context2, F.gelu(_strided_conv(x, p.conv1))], dim=1)  # (B, 2 + T/2, C)
        y = F.gelu(_strided_conv(h, p.conv2))  # (B, T/4, C)
        # the new contexts end at each row's last valid frame: x rows len, len+1 and h rows len/2, len/2+1
        offsets = torch.arange(CONTEXT)[None, :]  # (1, 2)
        rows1 = (lengths[:, None] + offsets)[:, :, None].expand(-1, -1, x.shape[2])
        rows2 = (lengths[:, None] // 2 + offsets)[:, :, None].expand(-1, -1, h.shape[2])
        steps = (lengths + SUBSAMPLING - 1) // SUBSAMPLING
        log_probs, new_state = p.recurrent(y, steps, state)
        return log_probs, steps, x.gather(1, rows1), h.gather(1, rows2), new_state


def _strided_conv(x: Tensor, conv: nn.Conv1d) -> Tensor:
    """conv (kernel 3, stride 2, no padding) over x (B, L, F), L even, as one matrix product: output j reads rows
    2j, 2j+1, 2j+2, i.e. even row j, odd row j and even row j + 1. (B, L/2 - 1, C). One MatMul costs a batch-1
    stream less than a Conv node, and dynamic quantization makes it a MatMulInteger."""
    even, odd = x[:, 0::2], x[:, 1::2]  # (B, L/2, F) each
    taps = torch.cat([even[:, :-1], odd[:, :-1], even[:, 1:]], dim=2)  # (B, L/2 - 1, 3F), tap-major
    weight = conv.weight.permute(2, 1, 0).reshape(-1, conv.out_channels)  # (3F, C): [tap][in] x out
    product = taps @ weight  # (B, L/2 - 1, C)
    return product if conv.bias is None else product + conv.bias


def _export(graph: UtteranceGraph | StreamingGraph, args: tuple[Tensor, ...], path: Path,
            inputs: dict[str, dict[int, str]], outputs: dict[str, dict[int, str]]) -> None:  # fmt: skip
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's notes on batch_first RNNs and its own deprecation
        torch.onnx.export(
            graph, args, str(path), input_names=list(inputs), output_names=list(outputs),
            dynamic_axes={**inputs, **outputs}, opset_version=OPSET, dynamo=False,
        )  # fmt: skip
    candidate = graph.parts.candidate
    if candidate != "Tanh":
        set_candidate(path, candidate)
    check_gru_nodes(path)


def set_candidate(path: str | os.PathLike[str], candidate: str) -> None:
    """Give every GRU node of the graph at `path` the activations [Sigmoid, candidate] in each direction (the
    exporter writes torch.nn.GRU's default, Sigmoid and Tanh)."""
    import onnx

    model = onnx.load(str(path))
    for node in model.graph.node:
        if node.op_type == "GRU":
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            directions = 2 if attrs.get("direction", b"forward") == b"bidirectional" else 1
            kept = [a for a in node.attribute if a.name != "activations"]
            del node.attribute[:]
            node.attribute.extend(kept)
            node.attribute.append(onnx.helper.make_attribute("activations", ["Sigmoid", candidate] * directions))
    onnx.save(model, str(path))


def check_gru_nodes(path: str | os.PathLike[str]) -> int:
    """Refuse a graph with a GRU node that is not linear_before_reset=1 (our GRU's, and torch.nn.GRU's, form);
    returns how many GRU nodes there are."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    count = 0
    for node in graph.node:
        if node.op_type == "GRU":
            count += 1
            attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
            if attrs.get("linear_before_reset", 0) != 1:
                raise ConfigError(f"{path}: GRU node {node.name} has linear_before_reset=0; the exporter is wrong")
    return count


def set_metadata(path: str | os.PathLike[str], meta: dict[str, Any]) -> None:
    """Store `meta` as JSON in the graph's metadata_props (key "gruasr"), replacing any earlier one."""
    import onnx

    model = onnx.load(str(path))
    kept = [p for p in model.metadata_props if p.key != "gruasr"]
    del model.metadata_props[:]
    model.metadata_props.extend(kept)
    model.metadata_props.add(key="gruasr", value=json.dumps(meta, sort_keys=True))
    onnx.save(model, str(path))


def export_metadata(bundle: ModelBundle, source: Path, files: dict[str, str | None]) -> dict[str, Any]:
    import onnx
    import onnxruntime

    import gruasr

    config = bundle.model.config
    return {
        "format": FORMAT,
        "version": VERSION,
        "gruasr": gruasr.__version__,
        "source": source.name,
        "source_weights_sha256": sha256(source / "model.safetensors"),
        "model": config.to_dict(),
        "features": bundle.features.to_dict(),
        "cmvn": bundle.cmvn.to_dict(),
        "tokens": list(bundle.tokens.symbols),
        "sample_rate": bundle.sample_rate,
        "decoding": bundle.meta.get("decoding"),
        "rescoring": bundle.meta.get("rescoring"),  # names a model exported beside this one
        "subsampling": SUBSAMPLING,
        "context": CONTEXT,
        "files": files,
        "quantization": None,
        "opset": OPSET,
        "exporter": {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__},
    }


def export_onnx(model: str | os.PathLike[str], out: str | os.PathLike[str], int8: bool = False) -> Path:
    """Export a model folder (or a bundled model's name) to `out` (written atomically, with its manifest):
    model.onnx, streaming.onnx for a unidirectional model, export.json, the LM and lexicon. int8=True quantizes
    every weight matrix (gruasr.export.quantize). Returns the folder."""
    source = resolve_model(model)
    bundle = load_bundle(source)
    parts = _Parts(bundle).eval()
    config = bundle.model.config
    final = Path(out)
    tmp = atomic_dir(final)
    feats = torch.randn(2, 24, config.input_dim)
    lengths = torch.tensor([24, 17])
    _export(UtteranceGraph(parts), (feats, lengths), tmp / UTTERANCE,
            {"fbank": {0: "batch", 1: "frames"}, "lengths": {0: "batch"}},
            {"log_probs": {0: "batch", 1: "steps"}, "out_lengths": {0: "batch"}})  # fmt: skip
    files: dict[str, str | None] = {"utterance": UTTERANCE, "streaming": None}
    if not config.bidirectional:
        ctx1 = torch.randn(2, CONTEXT, config.input_dim)
        ctx2 = torch.randn(2, CONTEXT, config.conv_channels)
        state = torch.randn(config.num_layers, 2, config.hidden_size)
        _export(StreamingGraph(parts), (feats, torch.tensor([24, 16]), ctx1, ctx2, state), tmp / STREAMING,
                {"fbank": {0: "batch", 1: "frames"}, "lengths": {0: "batch"}, "context1": {0: "batch"},
                 "context2": {0: "batch"}, "state": {1: "batch"}},
                {"log_probs": {0: "batch", 1: "steps"}, "out_lengths": {0: "batch"}, "new_context1": {0: "batch"},
                 "new_context2": {0: "batch"}, "new_state": {1: "batch"}})  # fmt: skip
        files["streaming"] = STREAMING
    meta = export_metadata(bundle, source, files)
    if int8:
        from gruasr.export.quantize import quantize_folder

        meta["quantization"] = quantize_folder(tmp, [f for f in files.values() if f is not None])
    for name in files.values():
        if name is not None:
            set_metadata(tmp / name, meta)
    (tmp / META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    for name in (LM, LEXICON):
        if (source / name).is_file():
            shutil.copy2(source / name, tmp / name)
    return commit_dir(tmp, final)
