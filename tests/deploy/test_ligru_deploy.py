"""A Li-GRU deployed: through ONNX, written as GRU nodes (reset gate held open, batch norm folded into the input
weights, a ReLU candidate), run by ONNX Runtime, against the PyTorch model written from the Li-GRU's equations;
the streaming step graph chunk by chunk against the whole utterance; the int8 rewrite drops the open reset gate;
and PyTorch's own int8 path (quantized Linear layers in the Li-GRU's loop)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import numpy_helper

from gruasr.bundle import save_model
from gruasr.data.tokens import TokenTable
from gruasr.errors import ConfigError
from gruasr.export.onnx import export_onnx, gru_parameters
from gruasr.export.quantize import integer_ops, unroll_gru_nodes
from gruasr.features.cmvn import GlobalCMVN
from gruasr.features.config import FbankConfig
from gruasr.models.ctc_model import CTCModel, ModelConfig
from gruasr.runtime import OnnxModel

from .test_onnx_streaming import run_chunks

pytestmark = pytest.mark.filterwarnings("ignore")
HIDDEN = 24
MEAN, STD = 9.0, 3.0


def ligru_model(folder: Path, bidirectional: bool, normalization: str = "batchnorm") -> CTCModel:
    """A small random Li-GRU model folder whose batch norms hold statistics of their own (a few training-mode
    passes), so that folding them is not folding the identity."""
    torch.manual_seed(0)
    config = ModelConfig(
        input_dim=80, hidden_size=HIDDEN, num_layers=2, conv_channels=16, bidirectional=bidirectional,
        unit="ligru", unit_options={"normalization": normalization},
    )  # fmt: skip
    model = CTCModel(config).train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(3, 40, 80) * 2 + 1, torch.tensor([40, 33, 20]))
    model.eval()
    save_model(folder, model, FbankConfig(), GlobalCMVN(torch.full((80,), MEAN), torch.full((80,), STD)), TokenTable())
    return model


def features(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((3, 41, 80)) * STD + MEAN).astype(np.float32), np.array([41, 26, 9])


@pytest.mark.parametrize(("bidirectional", "normalization"), [(True, "batchnorm"), (False, "batchnorm"),
                                                               (True, "none")])  # fmt: skip
def test_exported_ligru_equals_the_pytorch_model(tmp_path: Path, bidirectional: bool, normalization: str) -> None:
    model = ligru_model(tmp_path / "m", bidirectional, normalization)
    out = export_onnx(tmp_path / "m", tmp_path / "x")
    graph = onnx.load(str(out / "model.onnx")).graph
    grus = [n for n in graph.node if n.op_type == "GRU"]
    assert len(grus) == 2
    for node in grus:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["activations"] == [b"Sigmoid", b"Relu"] * (2 if bidirectional else 1)
    fbank, lengths = features()
    log_probs, steps = OnnxModel.load(out).log_probs_batch(fbank, lengths)
    with torch.no_grad():
        reference, ref_steps, _ = model((torch.from_numpy(fbank) - MEAN) / STD, torch.from_numpy(lengths))
    np.testing.assert_array_equal(steps, ref_steps.numpy())
    for row, n in enumerate(steps):
        np.testing.assert_allclose(log_probs[row, :n], reference[row, :n].numpy(), atol=1e-4)


def test_folded_batch_norm_is_not_the_identity(tmp_path: Path) -> None:
    """The folded weights differ from the raw ones (the statistics reached the export) and the reset gate rows
    are zero with a saturating bias."""
    model = ligru_model(tmp_path / "m", bidirectional=False)
    state, candidate = gru_parameters(model.encoder)
    assert candidate == "Relu"
    raw = model.encoder.state_dict()["weight_ih_l0"]
    assert state["weight_ih_l0"].shape == (3 * HIDDEN, raw.shape[1])
    assert not state["weight_ih_l0"][:HIDDEN].any() and not state["weight_hh_l0"][:HIDDEN].any()
    assert float((state["weight_ih_l0"][HIDDEN:] - raw).abs().max()) > 1e-3
    assert torch.sigmoid(state["bias_ih_l0"][:HIDDEN]).eq(1.0).all()


def test_streaming_step_chunks_equal_the_whole_utterance(tmp_path: Path) -> None:
    ligru_model(tmp_path / "m", bidirectional=False)
    model = OnnxModel.load(export_onnx(tmp_path / "m", tmp_path / "x"))
    assert model.has_streaming
    fbank, _ = features(2)
    whole, _ = model.log_probs_batch(fbank[:1], np.array([41]))
    (streamed,) = run_chunks(model, [fbank[0]], [[8, 12, 4, 20]])  # the last chunk: the 17 frames left
    np.testing.assert_allclose(streamed, whole[0], atol=1e-4)


def test_int8_rewrite_drops_the_open_reset_gate_and_keeps_the_function(tmp_path: Path) -> None:
    ligru_model(tmp_path / "m", bidirectional=True)
    out = export_onnx(tmp_path / "m", tmp_path / "x")
    unrolled = unroll_gru_nodes(onnx.load(str(out / "model.onnx")))
    onnx.save(unrolled, str(tmp_path / "unrolled.onnx"))
    recurrent = [
        numpy_helper.to_array(i) for i in unrolled.graph.initializer if "/r_t_" in i.name
    ]  # (H, gates * H) per direction and layer
    assert len(recurrent) == 4 and all(r.shape == (HIDDEN, 2 * HIDDEN) for r in recurrent)
    fbank, lengths = features(3)
    feeds = {"fbank": fbank, "lengths": lengths}
    node = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"]).run(None, feeds)
    loop = ort.InferenceSession(str(tmp_path / "unrolled.onnx"), providers=["CPUExecutionProvider"]).run(None, feeds)
    np.testing.assert_allclose(loop[0], node[0], atol=1e-4)
    int8 = export_onnx(tmp_path / "m", tmp_path / "q", int8=True)
    assert integer_ops(int8 / "model.onnx")["MatMulInteger"] == 9  # 4 input + 4 recurrent products, the output
    quantized, _ = OnnxModel.load(int8).log_probs_batch(fbank, lengths)
    assert np.abs(np.exp(quantized) - np.exp(node[0])).max() < 0.05


def test_units_that_are_not_a_gru_node_are_refused(tmp_path: Path) -> None:
    ligru_model(tmp_path / "ln", bidirectional=True, normalization="layernorm")
    with pytest.raises(ConfigError, match="layer norm cannot be folded"):
        export_onnx(tmp_path / "ln", tmp_path / "x")
    torch.manual_seed(0)
    lstm = CTCModel(ModelConfig(input_dim=80, hidden_size=8, num_layers=1, conv_channels=8, unit="lstm"))
    save_model(tmp_path / "lstm", lstm, FbankConfig(), GlobalCMVN(torch.zeros(80), torch.ones(80)), TokenTable())
    with pytest.raises(ConfigError, match="GRU and Li-GRU models; this one is 'lstm'"):
        export_onnx(tmp_path / "lstm", tmp_path / "y")


def test_torch_int8_ligru_is_the_float_model_within_rounding_and_steps_alike(tmp_path: Path) -> None:
    from gruasr.export.torch_int8 import QuantizedLiGRU, quantize_model

    model = ligru_model(tmp_path / "m", bidirectional=False)
    quantized = quantize_model(model)
    assert isinstance(quantized.encoder, QuantizedLiGRU)
    assert sum(type(m).__name__ == "Linear" and "quantized" in type(m).__module__
               for m in quantized.encoder.modules()) == 4  # fmt: skip
    fbank, lengths = features(4)
    x = (torch.from_numpy(fbank) - MEAN) / STD
    with torch.no_grad():
        reference, steps, _ = model(x, torch.from_numpy(lengths))
        int8, int8_steps, _ = quantized(x, torch.from_numpy(lengths))
        assert torch.equal(steps, int8_steps)
        gap = max(float((int8[i, :n].exp() - reference[i, :n].exp()).abs().max()) for i, n in enumerate(steps))
        assert 0 < gap < 0.05  # rounded, and only by the rounding
        # the streaming recognizer's path: the encoder stepped frame by frame gives the whole sequence's outputs,
        # to the rounding of activations that dynamic quantization scales per tensor (a step's, or the sequence's)
        encoder_in = quantized.subsampling(x[:1])
        whole, _, _ = quantized.encoder(encoder_in)
        state = None
        outputs = []
        for t in range(encoder_in.shape[1]):
            y, state = quantized.encoder.step(encoder_in[:, t], state)
            outputs.append(y)
    stepped = torch.stack(outputs, dim=1)
    assert float((stepped - whole).abs().max()) <= 0.03 * float(whole.abs().max())
