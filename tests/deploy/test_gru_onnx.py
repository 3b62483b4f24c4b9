"""GRU semantics through ONNX: a random GRU exported the way gruasr.export.onnx exports ours, run by ONNX Runtime,
against torch.nn.GRU and gruasr's own GRU (written from the equations). ONNX's GRU orders its gates z, r, n (ours
and torch's: r, z, n) and has two forms of the candidate; ours applies the reset after W_hn h + b_hn, which is
linear_before_reset=1. The other form gives other numbers, which is why the exporter's nodes are checked."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from gruasr.errors import ConfigError
from gruasr.export.onnx import OPSET, check_gru_nodes
from gruasr.models.gru import GRU


class Wrapped(nn.Module):
    def __init__(self, gru: nn.GRU) -> None:
        super().__init__()
        self.gru = gru

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, h0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, h = self.gru(pack_padded_sequence(x, lengths, batch_first=True), h0)
        return pad_packed_sequence(y, batch_first=True, total_length=x.shape[1])[0], h


def export(gru: nn.GRU, path: Path) -> None:
    x, lengths = torch.randn(2, 9, gru.input_size), torch.tensor([9, 6])
    h0 = torch.zeros(gru.num_layers * (2 if gru.bidirectional else 1), 2, gru.hidden_size)
    torch.onnx.export(
        Wrapped(gru), (x, lengths, h0), str(path), input_names=["x", "lengths", "h0"], output_names=["y", "h"],
        dynamic_axes={"x": {0: "b", 1: "t"}, "lengths": {0: "b"}, "h0": {1: "b"}, "y": {0: "b", 1: "t"},
                      "h": {1: "b"}},
        opset_version=OPSET, dynamo=False,
    )  # fmt: skip


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("bidirectional", [False, True])
def test_onnx_gru_equals_torch_and_ours(tmp_path: Path, bidirectional: bool) -> None:
    torch.manual_seed(0)
    reference = nn.GRU(7, 5, num_layers=2, batch_first=True, bidirectional=bidirectional).eval()
    ours = GRU(7, 5, num_layers=2, bidirectional=bidirectional)
    ours.load_state_dict(reference.state_dict())  # the same names and shapes
    export(reference, tmp_path / "gru.onnx")
    assert check_gru_nodes(tmp_path / "gru.onnx") == 2
    session = ort.InferenceSession(str(tmp_path / "gru.onnx"), providers=["CPUExecutionProvider"])
    x, lengths = torch.randn(4, 13, 7), torch.tensor([5, 13, 1, 9])  # unsorted, another batch and length
    h0 = torch.randn(reference.num_layers * (2 if bidirectional else 1), 4, 5)
    y, h = session.run(None, {"x": x.numpy(), "lengths": lengths.numpy(), "h0": h0.numpy()})
    with torch.no_grad():
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        y_ref, h_ref = reference(packed, h0)
        y_ref = pad_packed_sequence(y_ref, batch_first=True, total_length=13)[0]
        y_ours, _, h_ours = ours(x, lengths, h0)
    np.testing.assert_allclose(y, y_ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(h, h_ref.numpy(), atol=1e-5)
    np.testing.assert_allclose(y, y_ours.numpy(), atol=1e-5)
    np.testing.assert_allclose(h, h_ours.numpy(), atol=1e-5)


@pytest.mark.filterwarnings("ignore")
def test_gate_order_and_the_other_reset_form(tmp_path: Path) -> None:
    torch.manual_seed(1)
    reference = nn.GRU(6, 4, batch_first=True).eval()
    path = tmp_path / "gru.onnx"
    export(reference, path)
    model = onnx.load(str(path))
    node = next(n for n in model.graph.node if n.op_type == "GRU")
    weights = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    w = weights[node.input[1]][0]  # (3H, I), ONNX's gate order z, r, n
    w_r, w_z, w_n = reference.weight_ih_l0.detach().numpy().reshape(3, 4, 6)  # torch's r, z, n
    np.testing.assert_array_equal(w, np.concatenate([w_z, w_r, w_n]))
    # linear_before_reset=0 (reset applied to h before W_hn) is another function: the check refuses it
    for attr in node.attribute:
        if attr.name == "linear_before_reset":
            attr.i = 0
    onnx.save(model, str(tmp_path / "wrong.onnx"))
    with pytest.raises(ConfigError, match="linear_before_reset=0"):
        check_gru_nodes(tmp_path / "wrong.onnx")
    feeds = {"x": np.random.default_rng(0).standard_normal((1, 8, 6), dtype=np.float32),
             "lengths": np.array([8]), "h0": np.full((1, 1, 4), 0.5, np.float32)}  # fmt: skip
    right = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    wrong = ort.InferenceSession(str(tmp_path / "wrong.onnx"), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
    assert np.abs(right - wrong).max() > 1e-3
