"""int8 weights for the exported graphs, the GRUs' included.

ONNX Runtime's dynamic quantization turns MatMul and Conv nodes with constant weights into MatMulInteger and
ConvInteger (int8 weights, activations quantized to uint8 on the fly), but leaves an ONNX GRU node in float: the
GRU holds its own weights. So each GRU node is first rewritten into ops the quantizer covers:

    for each direction:   X (T, B, I) --ReverseSequence (reverse direction)--> MatMul W^T + b_ih  (T, B, 3H)
                          Loop over t:  g = G[t];  gh = MatMul(h, R^T) + b_hh                   (B, 3H)
                                        z, r, n gates (ONNX order, linear_before_reset=1), h' = n + z (h - n)
                          Y (T, B, H): zero past each sequence's length (sequence_lens), and the final state
                                       gathered at its last valid step; ReverseSequence back (reverse direction)

the same function as the node (tested against it in float), with the input projections of all steps as one
MatMul outside the loop and the recurrent product inside it. Then quantize_dynamic (with subgraphs) makes every
MatMul, the recurrent one in the loop body included, an int8 MatMulInteger: int8 weights per output channel,
activations rounded to uint8 with a scale per tensor at run time. The two convolutions (the first reads the
normalized features, the second the first's GELU outputs) are stored weight-only instead: int8 weights per output
channel in the file, a DequantizeLinear in front of a float product (weight_only_int8), because the uint8 rounding
of their inputs cost the most accuracy. The file is about 26% of the float one. Measured on the full sets
(the default model bundled 2026-11-30, beam + LM, one thread; benchmarks/int8_layers.py,
docs/results/int8_layers-cpu.json): AN4 test mu-law 11.64% float -> 12.16% all int8 (3.56 MB) -> 12.03% with
the first convolution float (3.74 MB, the export until then) -> 11.64% with both convolutions float (4.33 MB) or
weight-only (3.56 MB, the export); FSDD phone numbers 0.80% float, 0.73% weight-only.

Dynamic quantization picks each activation's scale from the tensor at hand, so with many streams in one batch
the rounding depends slightly on the batch; the WER bound is checked on AN4 and FSDD (tests/deploy).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from gruasr.errors import ConfigError


class _Names:
    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.count = 0

    def __call__(self, what: str) -> str:
        self.count += 1
        return f"{self.prefix}/{what}_{self.count}"


def _const(graph_inits: list[onnx.TensorProto], name: str, value: np.ndarray) -> str:
    graph_inits.append(numpy_helper.from_array(value, name))
    return name


def _loop_body(
    name: _Names, hidden: int, r_t: str, b_hh: str, gates: str, candidate: str, reset: bool
) -> onnx.GraphProto:
    """One GRU step for ONNX Loop: inputs (iteration, condition, h (B, H)); outputs (condition, h', h' again as
    the scan output). No masking inside: steps past a sequence's length are dropped outside the loop (few nodes
    per step is what a batch-1 stream pays for). `candidate` is the candidate's activation (Tanh, or Relu for a
    Li-GRU); without `reset` the gates are z and n only (a reset gate held open: r = 1)."""
    n = name
    it, cond_in, h = n("t"), n("cond_in"), n("h")
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    gated = 2 * hidden if reset else hidden
    split_gates = _const(inits, n("split"), np.array([gated, hidden], np.int64))
    g, gh, ghb = n("g"), n("gh"), n("ghb")
    nodes.append(helper.make_node("Gather", [gates, it], [g], axis=0))  # (B, 3H): x_t W^T + b_ih
    nodes.append(helper.make_node("MatMul", [h, r_t], [gh]))  # (B, 3H): the recurrent product
    nodes.append(helper.make_node("Add", [gh, b_hh], [ghb]))
    g_zr, g_n, h_zr, h_n = n("g_zr"), n("g_n"), n("h_zr"), n("h_n")
    nodes.append(helper.make_node("Split", [g, split_gates], [g_zr, g_n], axis=1))  # ONNX's gate order z, r, n
    nodes.append(helper.make_node("Split", [ghb, split_gates], [h_zr, h_n], axis=1))
    s_zr, zr, z, r = n("s_zr"), n("zr"), n("z"), n("r")
    nodes.append(helper.make_node("Add", [g_zr, h_zr], [s_zr]))
    nodes.append(helper.make_node("Sigmoid", [s_zr], [zr]))
    rh, sn, cand = n("rh"), n("sn"), n("n")
    if reset:
        split_z_r = _const(inits, n("split2"), np.array([hidden, hidden], np.int64))
        nodes.append(helper.make_node("Split", [zr, split_z_r], [z, r], axis=1))
        nodes.append(helper.make_node("Mul", [r, h_n], [rh]))  # linear_before_reset=1: r * (R_n h + Rb_n)
    else:
        z, rh = zr, h_n
    nodes += [helper.make_node("Add", [g_n, rh], [sn]), helper.make_node(candidate, [sn], [cand])]
    diff, zd, h_new, y_out, cond_out = n("diff"), n("zd"), n("h_new"), n("y"), n("cond_out")
    nodes.append(helper.make_node("Sub", [h, cand], [diff]))
    nodes.append(helper.make_node("Mul", [z, diff], [zd]))
    nodes.append(helper.make_node("Add", [cand, zd], [h_new]))  # (1 - z) n + z h
    nodes.append(helper.make_node("Identity", [h_new], [y_out]))
    nodes.append(helper.make_node("Identity", [cond_in], [cond_out]))
    return helper.make_graph(
        nodes,
        n("body"),
        [
            helper.make_tensor_value_info(it, TensorProto.INT64, []),
            helper.make_tensor_value_info(cond_in, TensorProto.BOOL, []),
            helper.make_tensor_value_info(h, TensorProto.FLOAT, None),
        ],
        [
            helper.make_tensor_value_info(cond_out, TensorProto.BOOL, []),
            helper.make_tensor_value_info(h_new, TensorProto.FLOAT, None),
            helper.make_tensor_value_info(y_out, TensorProto.FLOAT, None),
        ],
        inits,
    )


def reset_is_open(w: np.ndarray, r: np.ndarray, b: np.ndarray, hidden: int) -> bool:
    """Whether one direction's reset gate is constant 1 in float32 (no weights, a bias that saturates the
    sigmoid): a Li-GRU written as a GRU node (gruasr.export.onnx.gru_parameters). w (3H, I), r (3H, H), b (6H),
    gates z, r, n."""
    gate = slice(hidden, 2 * hidden)
    if w[gate].any() or r[gate].any():
        return False
    bias = (b[gate] + b[3 * hidden :][gate]).astype(np.float32)
    return bool(np.all(np.float32(1) / (np.float32(1) + np.exp(-bias)) == np.float32(1)))


def unroll_gru_nodes(model: onnx.ModelProto) -> onnx.ModelProto:
    """Replace every GRU node (linear_before_reset=1, with sequence_lens and initial_h) by MatMuls and a Loop; see
    the module docstring. Returns a new model; the function is the same to float rounding."""
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    weights = {i.name: i for i in graph.initializer}
    nodes: list[onnx.NodeProto] = []
    for index, node in enumerate(graph.node):
        if node.op_type != "GRU":
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("linear_before_reset", 0) != 1:
            raise ConfigError(f"GRU node {node.name}: linear_before_reset=0 is not the GRU this rewrite runs")
        inputs = list(node.input)
        if len(inputs) < 6 or not inputs[4] or not inputs[5]:
            raise ConfigError(f"GRU node {node.name}: needs sequence_lens and initial_h inputs")
        x, w_name, r_name, b_name, lens, h0 = inputs[:6]
        w, r = numpy_helper.to_array(weights[w_name]), numpy_helper.to_array(weights[r_name])
        b = numpy_helper.to_array(weights[b_name])
        hidden = int(attrs["hidden_size"])
        directions = w.shape[0]
        activations = [a.decode() if isinstance(a, bytes) else a for a in attrs.get("activations", [])]
        activations = activations or ["Sigmoid", "Tanh"] * directions
        name = _Names(f"gru{index}")
        lengths = name("lengths")
        nodes.append(helper.make_node("Cast", [lens], [lengths], to=TensorProto.INT64))
        shape, steps = name("shape"), name("steps")
        nodes.append(helper.make_node("Shape", [x], [shape]))
        nodes.append(helper.make_node("Gather", [shape, _const(graph.initializer, name("zero_i"),
                                                               np.array(0, np.int64))], [steps], axis=0))  # fmt: skip
        true = _const(graph.initializer, name("true"), np.array(True))
        # valid steps (T, B, 1): outputs past a sequence's length are zeroed here, once, not in every step
        t_range, t_col, valid, mask = name("t_range"), name("t_col"), name("valid"), name("mask")
        one = _const(graph.initializer, name("one"), np.array(1, np.int64))
        zero_i = _const(graph.initializer, name("zero_t"), np.array(0, np.int64))
        nodes.append(helper.make_node("Range", [zero_i, steps, one], [t_range]))
        nodes.append(helper.make_node("Unsqueeze", [t_range, _const(graph.initializer, name("ax1"),
                                                                   np.array([1], np.int64))], [t_col]))  # fmt: skip
        nodes.append(helper.make_node("Less", [t_col, lengths], [valid]))  # (T, B)
        nodes.append(helper.make_node("Unsqueeze", [valid, _const(graph.initializer, name("ax2"),
                                                                 np.array([2], np.int64))], [mask]))  # fmt: skip
        last_index = name("last_index")  # (1, B, 1): each sequence's last valid step
        minus = name("len_minus_1")
        nodes.append(helper.make_node("Sub", [lengths, one], [minus]))
        ax02 = _const(graph.initializer, name("ax02"), np.array([0, 2], np.int64))
        nodes.append(helper.make_node("Unsqueeze", [minus, ax02], [last_index]))
        zero_f = _const(graph.initializer, name("zero_f"), np.zeros((), np.float32))
        ys, hs = [], []
        for d in range(directions):
            reverse = d == 1 or attrs.get("direction", b"forward") == b"reverse"
            inp = x
            if reverse:
                inp = name("x_rev")
                nodes.append(helper.make_node("ReverseSequence", [x, lengths], [inp], batch_axis=1, time_axis=0))
            gate, candidate = activations[2 * d : 2 * d + 2]
            if gate != "Sigmoid" or candidate not in ("Tanh", "Relu"):
                raise ConfigError(f"GRU node {node.name}: activations {gate}, {candidate} are not a GRU's or Li-GRU's")
            reset = not reset_is_open(w[d], r[d], b[d], hidden)
            rows = np.arange(3 * hidden) if reset else np.r_[0:hidden, 2 * hidden : 3 * hidden]  # z, (r,) n
            w_t = _const(graph.initializer, name("w_t"), np.ascontiguousarray(w[d][rows].T))  # (I, 3H or 2H)
            r_t = _const(graph.initializer, name("r_t"), np.ascontiguousarray(r[d][rows].T))  # (H, 3H or 2H)
            b_ih = _const(graph.initializer, name("b_ih"), b[d, rows].copy())
            b_hh = _const(graph.initializer, name("b_hh"), b[d, 3 * hidden + rows].copy())
            proj, gates = name("proj"), name("gates")
            nodes.append(helper.make_node("MatMul", [inp, w_t], [proj]))  # (T, B, 3H): every step at once
            nodes.append(helper.make_node("Add", [proj, b_ih], [gates]))
            start = name("h0")
            nodes.append(helper.make_node("Gather", [h0, _const(graph.initializer, name("d"),
                                                                np.array(d, np.int64))], [start], axis=0))  # fmt: skip
            body = _loop_body(name, hidden, r_t, b_hh, gates, candidate, reset)
            h_end, y_all, y = name("h_end"), name("y_all"), name("y")
            nodes.append(helper.make_node("Loop", [steps, true, start], [h_end, y_all], body=body))
            nodes.append(helper.make_node("Where", [mask, y_all, zero_f], [y]))  # (T, B, H), 0 past the ends
            # the state at each sequence's last valid step (later steps ran on padding and are dropped)
            shape, last_rows, h3 = name("shape"), name("last_rows"), name("h3")
            nodes.append(helper.make_node("Shape", [y_all], [shape]))
            bh, full = name("bh"), name("full")
            s1 = _const(graph.initializer, name("s1"), np.array([1], np.int64))
            s3 = _const(graph.initializer, name("s3"), np.array([3], np.int64))
            nodes.append(helper.make_node("Slice", [shape, s1, s3], [bh]))  # (B, H)
            nodes.append(helper.make_node("Concat", [s1, bh], [full], axis=0))  # [1, B, H]
            nodes.append(helper.make_node("Expand", [last_index, full], [last_rows]))  # (1, B, H)
            nodes.append(helper.make_node("GatherElements", [y_all, last_rows], [h3], axis=0))  # (1, B, H)
            if reverse:
                back = name("y_back")
                nodes.append(helper.make_node("ReverseSequence", [y, lengths], [back], batch_axis=1, time_axis=0))
                y = back
            axis = _const(graph.initializer, name("axis"), np.array([1], np.int64))
            y4 = name("y4")
            nodes.append(helper.make_node("Unsqueeze", [y, axis], [y4]))  # (T, 1, B, H)
            ys.append(y4)
            hs.append(h3)
        outputs = list(node.output) + ["", ""]
        if outputs[0]:
            nodes.append(helper.make_node("Concat", ys, [outputs[0]], axis=1))  # (T, D, B, H)
        if outputs[1]:
            nodes.append(helper.make_node("Concat", hs, [outputs[1]], axis=0))  # (D, B, H)
    del graph.node[:]
    graph.node.extend(nodes)
    used = {i for n in graph.node for i in n.input}
    kept = [i for i in graph.initializer if i.name in used or _used_in_subgraphs(graph, i.name)]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return model


def _used_in_subgraphs(graph: onnx.GraphProto, name: str) -> bool:
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH and any(name in n.input for n in attr.g.node):
                return True
    return False


def quantize_graph(
    source: str | os.PathLike[str],
    target: str | os.PathLike[str],
    keep_float: Sequence[str] = (),
    subgraphs: bool = True,
    weight_only: Sequence[str] | None = None,
) -> None:
    """source (float ONNX with GRU nodes) -> target: GRUs rewritten, then ONNX Runtime's dynamic quantization of
    every MatMul and Conv (int8 weights per channel, the Loop bodies' MatMuls included unless `subgraphs` is
    False) but the nodes named in `keep_float` (left float) and in `weight_only` (default: the convolutions,
    convolutions()), whose weights are stored int8 per output channel and dequantized to float for a float product
    (weight_only_int8); the names are those of the rewritten graph. benchmarks/int8_layers.py compares the choices."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    unrolled = unroll_gru_nodes(onnx.load(str(source)))
    if weight_only is None:
        weight_only = convolutions(unrolled)
    with tempfile.TemporaryDirectory() as tmp:
        plain = Path(tmp) / "unrolled.onnx"
        onnx.save(unrolled, str(plain))
        quantize_dynamic(
            str(plain), str(target), weight_type=QuantType.QInt8, per_channel=True,
            op_types_to_quantize=["MatMul", "Conv"], extra_options={"EnableSubgraph": subgraphs},
            nodes_to_exclude=[*keep_float, *weight_only],
        )  # fmt: skip
    if weight_only:
        onnx.save(weight_only_int8(onnx.load(str(target)), weight_only), str(target))


def weight_only_int8(model: onnx.ModelProto, nodes: Sequence[str]) -> onnx.ModelProto:
    """Store the constant weight (input 1) of each named Conv or MatMul node as int8 with a float scale per output
    channel (symmetric, zero point 0), read back through a DequantizeLinear node: the file holds int8 weights
    while the product, and so the activations, stay float. Meant for the layers whose inputs uint8 rounding hurts
    (the convolutions over the features: module docstring)."""
    graph = model.graph
    inits = {init.name: init for init in graph.initializer}
    uses: dict[str, int] = {}
    for node in graph.node:
        for name in node.input:
            uses[name] = uses.get(name, 0) + 1
    by_name = {node.name: node for node in graph.node}
    for name in nodes:
        node = by_name.get(name)
        if node is None or node.op_type not in ("Conv", "MatMul"):
            raise ConfigError(f"no Conv or MatMul node named {name!r} in the graph")
        weight = node.input[1]
        if weight not in inits or uses[weight] != 1:
            raise ConfigError(f"{name}: its weight {weight!r} is not a constant of its own")
        w = numpy_helper.to_array(inits[weight]).astype(np.float32)
        axis = 0 if node.op_type == "Conv" else w.ndim - 1  # Conv (out, in, k); MatMul (in, out)
        reduce = tuple(i for i in range(w.ndim) if i != axis)
        scale = np.maximum(np.abs(w).max(axis=reduce), np.finfo(np.float32).tiny) / 127.0
        shape = [1] * w.ndim
        shape[axis] = -1
        q = np.clip(np.rint(w / scale.reshape(shape)), -127, 127).astype(np.int8)
        graph.initializer.remove(inits[weight])
        graph.initializer.extend([
            numpy_helper.from_array(q, f"{weight}_int8"),
            numpy_helper.from_array(scale.astype(np.float32), f"{weight}_int8_scale"),
            numpy_helper.from_array(np.zeros(scale.shape, np.int8), f"{weight}_int8_zero"),
        ])  # fmt: skip
        dequantize = helper.make_node(
            "DequantizeLinear", [f"{weight}_int8", f"{weight}_int8_scale", f"{weight}_int8_zero"], [weight],
            name=f"{name}_weight_dequantize", axis=axis,
        )  # fmt: skip
        graph.node.insert(list(graph.node).index(node), dequantize)
    return model


def convolutions(model: onnx.ModelProto) -> list[str]:
    """The names of the graph's two convolutions, its first two matrix ops (Conv nodes in the whole-utterance
    graph, MatMuls in the streaming step's), which the int8 export keeps weight-only (module docstring)."""
    ops = [node.name for node in model.graph.node if node.op_type in ("Conv", "MatMul")]
    if len(ops) < 2:
        raise ConfigError("the graph has fewer than two Conv or MatMul nodes (not a gruasr export?)")
    return ops[:2]


def quantize_folder(folder: Path, names: list[str]) -> dict[str, Any]:
    """Quantize the named graphs of an export folder in place; returns what export.json records."""
    for name in names:
        quantize_graph(folder / name, folder / f"{name}.int8")
        os.replace(folder / f"{name}.int8", folder / name)
    counts = integer_ops(folder / names[0])
    return {
        "weights": "int8, per output channel (ONNX Runtime dynamic quantization); the two convolutions weight-only "
        "(int8 weights dequantized to float, float products)",
        "activations": "uint8, scale per tensor computed at run time (the convolutions' inputs stay float)",
        "gru": "rewritten as MatMul (input projections) + Loop of MatMul (recurrent), both quantized",
        "integer_ops": counts,
    }


def integer_ops(path: str | os.PathLike[str]) -> dict[str, int]:
    """How many float matrix ops (MatMul, Gemm, Conv, GRU) and integer ones (MatMulInteger, ConvInteger) a graph
    holds, its Loop bodies included."""
    counts: dict[str, int] = {}

    def visit(graph: onnx.GraphProto) -> None:
        for node in graph.node:
            if node.op_type in ("MatMul", "Gemm", "Conv", "GRU", "MatMulInteger", "ConvInteger"):
                counts[node.op_type] = counts.get(node.op_type, 0) + 1
            for attr in node.attribute:
                if attr.type == onnx.AttributeProto.GRAPH:
                    visit(attr.g)

    visit(onnx.load(str(path)).graph)
    return counts
