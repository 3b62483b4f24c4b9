"""int8 exports: every matrix product integer but the two convolutions', which are int8 weight-only (the GRUs'
recurrent products included), about a quarter of the float file, and within a stated WER bound of the float export
on real speech.

Measured on the full sets (beam + LM, the models' own settings), float -> int8 WER of the default model bundled on
2026-11-30: AN4 test mu-law 11.64 -> 11.64 and FSDD phone numbers 0.80 -> 0.73 as the export is (12.16 and 0.80
with every layer int8, the convolutions' inputs rounded too; `python benchmarks/int8_layers.py`). On the subsets
here a tenth of a point is less than one word, so the test's bound is 1.5 points (at most about 4 more errors in
~250 words); the full-set numbers are the benchmark's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from gruasr.data.corpora.fsdd import import_fsdd
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.errors import ConfigError
from gruasr.evaluation.metrics import score
from gruasr.export.onnx import export_onnx
from gruasr.export.quantize import convolutions, integer_ops, unroll_gru_nodes, weight_only_int8
from gruasr.runtime import OnnxRecognizer

from .conftest import MODELS

SUBSET_BOUND = 0.015  # WER points as a fraction: int8 may be at most this much worse than float on the subsets


@pytest.fixture(scope="module")
def exported_int8(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("onnx-int8")
    return {name: export_onnx(name, root / name, int8=True) for name in MODELS}


@pytest.fixture(scope="module")
def fsdd_numbers(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[tuple[np.ndarray, str]]:
    folder = tmp_path_factory.mktemp("fsdd")
    import_fsdd(data_dir / "fsdd", folder, numbers={"train": 0, "dev": 0, "test": 40}, seed=0)
    return [(load_utterance(u, 8000), u.text) for u in read_manifest(folder / "test_numbers.jsonl")]


def test_every_matrix_product_integer_or_weight_only_and_the_file_small(exported, exported_int8) -> None:
    for name, folder in exported_int8.items():
        for graph in sorted(folder.glob("*.onnx")):
            counts = integer_ops(graph)
            model = onnx.load(str(graph))
            # the two convolutions are weight-only: Conv nodes in model.onnx, MatMuls in streaming.onnx, each
            # reading its weight from a DequantizeLinear of an int8 constant; no other float product
            float_ops = {k: v for k, v in counts.items() if k not in ("MatMulInteger", "ConvInteger")}
            assert float_ops == ({"Conv": 2} if graph.name == "model.onnx" else {"MatMul": 2}), counts
            assert counts["MatMulInteger"] >= 7  # three GRU layers (input + recurrent products) and the output
            assert convolutions(model) == [n.name for n in model.graph.node if n.op_type in ("Conv", "MatMul")]
            produced = {out: n for n in model.graph.node for out in n.output}
            inits = {i.name: i for i in model.graph.initializer}
            for conv in convolutions(model):
                node = next(n for n in model.graph.node if n.name == conv)
                dequantize = produced[node.input[1]]
                assert dequantize.op_type == "DequantizeLinear"
                assert inits[dequantize.input[0]].data_type == onnx.TensorProto.INT8
            assert graph.stat().st_size <= 4_000_000
            assert graph.stat().st_size < 0.35 * (exported[name] / graph.name).stat().st_size


def test_weight_only_int8_is_the_float_layer_within_its_rounding(tmp_path: Path) -> None:
    """A Conv and a MatMul stored weight-only: outputs within the per-channel rounding of the float graph's,
    on a graph small enough to check by hand."""
    rng = np.random.default_rng(0)
    w_conv = (rng.standard_normal((6, 4, 3)) * np.array([1, 10, 0.1, 3, 0, 2])[:, None, None]).astype(np.float32)
    w_mm = rng.standard_normal((6, 5)).astype(np.float32)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Conv", ["x", "wc"], ["c"], name="conv"),
         onnx.helper.make_node("Transpose", ["c"], ["t"], perm=[0, 2, 1]),
         onnx.helper.make_node("MatMul", ["t", "wm"], ["y"], name="mm")],
        "g", [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 4, 9])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        [onnx.numpy_helper.from_array(w_conv, "wc"), onnx.numpy_helper.from_array(w_mm, "wm")],
    )  # fmt: skip
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)])
    onnx.save(model, str(tmp_path / "float.onnx"))
    onnx.save(weight_only_int8(onnx.load(str(tmp_path / "float.onnx")), ["conv", "mm"]), str(tmp_path / "wo.onnx"))
    x = rng.standard_normal((1, 4, 9)).astype(np.float32)
    run = {p: ort.InferenceSession(str(tmp_path / p), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
           for p in ("float.onnx", "wo.onnx")}  # fmt: skip
    assert not np.array_equal(run["float.onnx"], run["wo.onnx"])  # it did round
    bound = 0.02 * np.abs(run["float.onnx"]).max()
    np.testing.assert_allclose(run["wo.onnx"], run["float.onnx"], rtol=0.02, atol=bound)
    with pytest.raises(ConfigError, match="no Conv or MatMul node named 'nope'"):
        weight_only_int8(onnx.load(str(tmp_path / "float.onnx")), ["nope"])


@pytest.mark.parametrize("name", MODELS)
def test_the_rewritten_gru_is_the_gru_node(exported, name: str, tmp_path: Path) -> None:
    """Before quantization: the MatMul + Loop form of every GRU node computes what the node computes."""
    for graph in sorted(exported[name].glob("*.onnx")):
        onnx.save(unroll_gru_nodes(onnx.load(str(graph))), str(tmp_path / graph.name))
        a = ort.InferenceSession(str(graph), providers=["CPUExecutionProvider"])
        b = ort.InferenceSession(str(tmp_path / graph.name), providers=["CPUExecutionProvider"])
        rng = np.random.default_rng(0)
        feeds = {
            "fbank": (rng.standard_normal((3, 40, 80)) * 3 + 10).astype(np.float32),
            "lengths": np.array([40, 24, 8]),
        }
        if graph.name == "streaming.onnx":
            shapes = {i.name: [d if isinstance(d, int) else 3 for d in i.shape] for i in a.get_inputs()}
            for key in ("context1", "context2", "state"):
                feeds[key] = rng.standard_normal(shapes[key]).astype(np.float32) * 0.5
        for x, y in zip(a.run(None, feeds), b.run(None, feeds), strict=True):
            np.testing.assert_allclose(x, y, atol=1e-4)


def _wer(asr: OnnxRecognizer, speech: list[tuple[np.ndarray, str]]) -> float:
    return score((text, asr.transcribe(samples, 8000).text) for samples, text in speech).wer


@pytest.mark.parametrize("name", MODELS)
def test_int8_wer_within_the_bound(exported, exported_int8, an4_speech, fsdd_numbers, name: str) -> None:
    # each network's quantization alone (the default model's rescoring by the streaming model is off here: the
    # rescored system's full-set numbers, float and int8, are benchmarks/deploy_speed.py's)
    float_asr = OnnxRecognizer.load(exported[name], rescoring=False)
    int8_asr = OnnxRecognizer.load(exported_int8[name], rescoring=False)
    for speech in ([(x, t) for _, x, t in an4_speech], fsdd_numbers):
        assert _wer(int8_asr, speech) <= _wer(float_asr, speech) + SUBSET_BOUND


def test_torch_int8_within_the_bound_and_streams(an4_speech, fsdd_numbers) -> None:
    """PyTorch's own int8 path (torch.ao dynamic GRU + Linear): the same bound against torch float, and the
    streaming recognizer runs the quantized model unchanged."""
    import torch

    from gruasr.bundle import bundled
    from gruasr.export.torch_int8 import quantize_recognizer
    from gruasr.recognizer import OfflineRecognizer
    from gruasr.streaming import StreamingRecognizer

    torch.set_num_threads(1)
    float_asr, int8_asr = OfflineRecognizer.load(), quantize_recognizer(OfflineRecognizer.load())
    assert any(type(m).__module__.startswith("torch.ao.nn.quantized") for m in int8_asr.model.encoder.modules())
    for speech in ([(x, t) for _, x, t in an4_speech], fsdd_numbers):
        assert _wer(int8_asr, speech) <= _wer(float_asr, speech) + SUBSET_BOUND
    streaming = StreamingRecognizer(quantize_recognizer(OfflineRecognizer.load(bundled("telephone-streaming"))))
    _, samples, _ = an4_speech[0]
    stream = streaming.stream(8000)
    events = [e for i in range(0, len(samples), 800) for e in stream.accept(samples[i : i + 800])] + stream.finish()
    assert any(e.type == "final" and e.text for e in events)
