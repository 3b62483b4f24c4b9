"""int8 exports: every matrix product but the first convolution's integer (the GRUs' recurrent ones included),
under a third of the float file, and within a stated WER bound of the float export on real speech.

Measured on the full sets (beam + LM, the models' own settings), float -> int8 WER of the default model: AN4 test
mu-law 11.13 -> 11.38 and FSDD phone numbers 2.25 -> 2.18 with the first convolution float, as the export keeps it
(11.77 and 2.25 with every layer int8: 5 more errors of 773, over the issue's 0.3 points;
`python benchmarks/int8_layers.py`). On the subsets here a tenth of a point is less than one word, so the test's
bound is 1.5 points (at most about 4 more errors in ~250 words); the full-set numbers are the benchmark's.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from gruasr.data.corpora.fsdd import import_fsdd
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.evaluation.metrics import score
from gruasr.export.onnx import export_onnx
from gruasr.export.quantize import first_layer, integer_ops, unroll_gru_nodes
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


def test_every_matrix_product_but_the_first_is_integer_and_the_file_small(exported, exported_int8) -> None:
    for name, folder in exported_int8.items():
        for graph in sorted(folder.glob("*.onnx")):
            counts = integer_ops(graph)
            whole = graph.name == "model.onnx"
            # the first convolution stays float: a Conv in model.onnx, a MatMul in streaming.onnx (products there)
            float_ops = {k: v for k, v in counts.items() if k not in ("MatMulInteger", "ConvInteger")}
            assert float_ops == ({"Conv": 1} if whole else {"MatMul": 1}), counts  # no float GRU, Gemm, other
            assert first_layer(onnx.load(str(graph))) in {n.name for n in onnx.load(str(graph)).graph.node}
            assert counts.get("ConvInteger", 0) == (1 if whole else 0)  # the second convolution
            assert graph.stat().st_size <= 4_000_000
            assert graph.stat().st_size < 0.35 * (exported[name] / graph.name).stat().st_size


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
    float_asr, int8_asr = OnnxRecognizer.load(exported[name]), OnnxRecognizer.load(exported_int8[name])
    for speech in ([(x, t) for _, x, t in an4_speech], fsdd_numbers):
        assert _wer(int8_asr, speech) <= _wer(float_asr, speech) + SUBSET_BOUND


def test_torch_int8_within_the_bound_and_streams(an4_speech, fsdd_numbers) -> None:
    """PyTorch's own int8 path (torch.ao dynamic GRU + Linear): the same bound against torch float, and the
    streaming recognizer runs the quantized model unchanged."""
    import torch

    from gruasr.bundle import bundled
    from gruasr.export.torch_int8 import QuantizedGRU, quantize_recognizer
    from gruasr.recognizer import OfflineRecognizer
    from gruasr.streaming import StreamingRecognizer

    torch.set_num_threads(1)
    float_asr, int8_asr = OfflineRecognizer.load(), quantize_recognizer(OfflineRecognizer.load())
    assert isinstance(int8_asr.model.encoder, QuantizedGRU)
    for speech in ([(x, t) for _, x, t in an4_speech], fsdd_numbers):
        assert _wer(int8_asr, speech) <= _wer(float_asr, speech) + SUBSET_BOUND
    streaming = StreamingRecognizer(quantize_recognizer(OfflineRecognizer.load(bundled("telephone-streaming"))))
    _, samples, _ = an4_speech[0]
    stream = streaming.stream(8000)
    events = [e for i in range(0, len(samples), 800) for e in stream.accept(samples[i : i + 800])] + stream.finish()
    assert any(e.type == "final" and e.text for e in events)
