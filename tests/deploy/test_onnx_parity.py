"""ONNX Runtime against PyTorch on real speech: both bundled models exported (float32), run on AN4 test utterances
through a mu-law line. The network alone (the same filterbank into both) agrees to float rounding; end to end
(NumpyFbank in the runtime, gruasr's Fbank in torch) the transcripts are identical, greedy and beam+LM.

Measured (these 12 utterances, mu-law): max |log-prob difference| 2.3e-5 (telephone) and 2.7e-5 (telephone-streaming)
on the same filterbank; end to end, with the two front ends' float32 rounding on top, 2.9e-4 and 5.3e-4.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from gruasr.bundle import bundled
from gruasr.cli.main import main
from gruasr.errors import CheckpointError
from gruasr.export.onnx import check_gru_nodes
from gruasr.features.config import FbankConfig
from gruasr.recognizer import OfflineRecognizer
from gruasr.runtime import OnnxModel, OnnxRecognizer

from .conftest import MODELS

#: the same filterbank into both engines: float32 rounding of different kernels, 2.7e-5 measured
NETWORK_TOLERANCE = 2e-4
#: end to end: also the two front ends' float32 differences (tests/features/test_kaldi_numpy.py), 5.3e-4 measured
END_TO_END_TOLERANCE = 3e-3


@pytest.fixture(scope="module", params=MODELS)
def engines(request: pytest.FixtureRequest, exported: dict[str, Path]) -> tuple[OfflineRecognizer, OnnxRecognizer]:
    torch.set_num_threads(1)
    name = request.param
    return OfflineRecognizer.load(bundled(name)), OnnxRecognizer.load(exported[name])


def test_network_matches_pytorch_on_the_same_features(engines, an4_speech) -> None:
    torch_asr, onnx_asr = engines
    worst = 0.0
    for _, samples, _ in an4_speech:
        with torch.inference_mode():
            fbank = torch_asr.fbank(torch.from_numpy(samples))  # (T, F), gruasr's front end
            expected = torch_asr.model(torch_asr.bundle.cmvn(fbank)[None])[0][0].numpy()
        got = onnx_asr.bundle.log_probs(fbank.numpy())
        assert got.shape == expected.shape
        worst = max(worst, float(np.abs(got - expected).max()))
    assert worst < NETWORK_TOLERANCE


@pytest.mark.parametrize("method", ["greedy", "beam+lm"])
def test_transcripts_are_identical_end_to_end(engines, an4_speech, method: str) -> None:
    torch_asr, onnx_asr = engines
    for asr in engines:
        asr.options = asr.bundle.decoding(method="greedy" if method == "greedy" else "beam", use_lm=method != "greedy")
    worst = 0.0
    for ident, samples, _ in an4_speech:
        worst = max(worst, float(np.abs(onnx_asr.log_probs(samples) - torch_asr.log_probs(samples).numpy()).max()))
        assert onnx_asr.transcribe(samples, 8000).text == torch_asr.transcribe(samples, 8000).text, ident
    assert worst < END_TO_END_TOLERANCE


def test_the_export_is_rescored_by_the_export_beside_it(exported) -> None:
    """export.json keeps model.json's "rescoring"; the runtime finds the streaming model's export beside it, so
    the end-to-end parity above (beam+lm) compares rescored texts of both engines."""
    torch_asr, onnx_asr = OfflineRecognizer.load(), OnnxRecognizer.load(exported["telephone"])
    assert torch_asr.rescoring is not None and onnx_asr.rescoring is not None
    assert isinstance(onnx_asr.rescoring.model, OnnxRecognizer)
    assert onnx_asr.rescoring.model.bundle.path == exported["telephone-streaming"]
    assert onnx_asr.rescoring.weight == torch_asr.rescoring.weight
    assert OnnxRecognizer.load(exported["telephone"], rescoring=False).rescoring is None


def test_batched_utterances_equal_one_by_one(exported, an4_speech) -> None:
    """The whole-utterance graph's dynamic batch: padded rows give each utterance's own log-probabilities."""
    model = OnnxModel.load(exported["telephone"])
    feats = [model.fbank(samples) for _, samples, _ in an4_speech[:5]]
    lengths = np.array([f.shape[0] for f in feats])
    batch = np.zeros((len(feats), lengths.max(), model.dim), dtype=np.float32)
    for i, f in enumerate(feats):
        batch[i, : f.shape[0]] = f
    log_probs, steps = model.log_probs_batch(batch, lengths)
    for i, f in enumerate(feats):
        alone = model.log_probs(f)
        assert int(steps[i]) == alone.shape[0] == -(-f.shape[0] // 4)
        # float32 rounding grows with the magnitude: the Li-GRU's ReLU candidates give log-probabilities of -50
        np.testing.assert_allclose(log_probs[i, : steps[i]], alone, rtol=1e-6, atol=1e-5)


def test_export_folder_metadata_and_manifest(exported) -> None:
    for name, folder in exported.items():
        source = json.loads((bundled(name) / "model.json").read_text())
        meta = json.loads((folder / "export.json").read_text())
        assert meta["source_weights_sha256"] == source["weights_sha256"]
        assert meta["tokens"] == source["tokens"]
        assert FbankConfig.from_dict(meta["features"]) == FbankConfig.from_dict(source["features"])  # keys may be added
        assert meta["cmvn"]["mean"] == source["cmvn"]["mean"] and meta["decoding"] == source["decoding"]
        graphs = ["model.onnx"] + (["streaming.onnx"] if name == "telephone-streaming" else [])
        listed = sorted(line.split()[1].lstrip("*") for line in (folder / "checksums.sha256").read_text().splitlines())
        assert listed == sorted(["export.json", "lexicon.txt", "lm.arpa", *graphs])
        for graph in graphs:
            props = {p.key: p.value for p in onnx.load(str(folder / graph)).metadata_props}
            assert json.loads(props["gruasr"]) == meta
            layers = source["model"]["num_layers"]
            assert check_gru_nodes(folder / graph) == layers  # one GRU node per layer, linear_before_reset=1


def test_a_changed_byte_is_refused(exported, tmp_path: Path) -> None:
    import shutil

    folder = shutil.copytree(exported["telephone"], tmp_path / "copy")
    data = bytearray((folder / "model.onnx").read_bytes())
    data[len(data) // 2] ^= 1
    (folder / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256 mismatch"):
        OnnxModel.load(folder)


def test_cli_export_and_transcribe_with_the_onnx_engine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sample = str(Path(__file__).resolve().parents[2] / "src" / "gruasr" / "samples" / "call.wav")
    out = tmp_path / "telephone"
    assert main(["model", "export", "--onnx", "telephone", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    assert f"-> {out}" in said and "export telephone-streaming beside it" in said  # its rescoring model
    assert (
        main(["model", "export", "--onnx", "telephone-streaming", "--out", str(tmp_path / "telephone-streaming")]) == 0
    )
    capsys.readouterr()
    for flags in ([], ["--rescore-weight", "0"]):  # rescored by the streaming model (exported beside it), and alone
        assert main(["transcribe", "--json", *flags, sample]) == 0
        by_torch = capsys.readouterr().out
        assert main(["transcribe", "--json", "--engine", "onnx", "--model", str(out), *flags, sample]) == 0
        by_onnx = capsys.readouterr().out
        _same_legs(by_torch, by_onnx)
    assert main(["transcribe", "--engine", "onnx", sample]) == 1  # no --model: one clear line
    assert "--engine onnx needs --model DIR" in capsys.readouterr().err
    assert main(["transcribe", "--engine", "onnx", "--model", str(out), sample, "--rescore"]) == 1
    assert "--engine onnx --rescore needs DIR" in capsys.readouterr().err


def _same_legs(by_torch: str, by_onnx: str) -> None:
    """`transcribe --json` outputs of both engines: the same texts and word times."""
    for a, b in zip(by_torch.splitlines(), by_onnx.splitlines(), strict=True):  # one line per leg
        leg_torch, leg_onnx = json.loads(a), json.loads(b)
        assert leg_onnx["text"] == leg_torch["text"]
        for w_torch, w_onnx in zip(leg_torch["words"], leg_onnx["words"], strict=True):
            assert (w_onnx["word"], w_onnx["start"], w_onnx["end"]) == (
                w_torch["word"],
                w_torch["start"],
                w_torch["end"],
            )
            assert w_onnx["conf"] == pytest.approx(w_torch["conf"], abs=1e-3)  # float rounding of the two engines


def test_model_verify_checks_an_export_folder(exported, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    assert main(["model", "verify", "--json", str(exported["telephone-streaming"])]) == 0
    facts = json.loads(capsys.readouterr().out)
    assert facts["graphs"] == ["model.onnx", "streaming.onnx"] and facts["quantization"] is None
    folder = shutil.copytree(exported["telephone-streaming"], tmp_path / "copy")
    (folder / "extra.txt").write_text("not listed")
    assert main(["model", "verify", str(folder)]) == 1
    assert "not listed in checksums.sha256" in capsys.readouterr().err
