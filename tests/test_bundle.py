"""gruasr.bundle: a model folder written, read back, verified (sizes, shapes, checksum), and refused clearly when
broken; decoding defaults and the LM from the folder; `gruasr model verify`. The manifest and signatures:
tests/test_model_integrity.py. Tests that break a folder on purpose rewrite its manifest (write_manifest, as
`gruasr model manifest` would) so that the check behind the manifest is the one that speaks."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

import gruasr.bundle
from gruasr.bundle import (
    ModelBundle,
    load_bundle,
    record_checksum,
    save_model,
    sha256,
    verify,
    write_model_files,
)
from gruasr.cli.main import main
from gruasr.data.tokens import TokenTable
from gruasr.decoding.lm import build_arpa
from gruasr.errors import CheckpointError, ConfigError
from gruasr.features import FbankConfig, GlobalCMVN
from gruasr.integrity import write_manifest
from gruasr.models.ctc_model import CTCModel, ModelConfig


def small_bundle(frame_shift_ms: float = 10.0, seed: int = 0) -> ModelBundle:
    """An untrained small unidirectional GRU-CTC model with a non-trivial CMVN."""
    torch.manual_seed(seed)
    features = FbankConfig(num_mel_bins=40, frame_shift_ms=frame_shift_ms)
    config = ModelConfig(input_dim=40, hidden_size=16, num_layers=1, conv_channels=8, bidirectional=False)
    cmvn = GlobalCMVN(torch.linspace(5.0, 9.0, 40), torch.linspace(1.0, 3.0, 40))
    return ModelBundle(CTCModel(config).eval(), features, cmvn, TokenTable(), {})


def saved(folder: Path, bundle: ModelBundle | None = None, extra: dict[str, object] | None = None) -> Path:
    b = bundle or small_bundle()
    return save_model(folder, b.model, b.features, b.cmvn, b.tokens, extra)


def _edit_meta(folder: Path, **changes: object) -> None:
    meta = json.loads((folder / "model.json").read_text())
    for key, value in changes.items():
        if value is None:
            meta.pop(key, None)
        else:
            meta[key] = value
    (folder / "model.json").write_text(json.dumps(meta))
    write_manifest(folder)


def test_a_saved_folder_loads_back_the_same_model_with_its_checksum(tmp_path: Path) -> None:
    original = small_bundle()
    folder = saved(tmp_path / "m", original, {"decoding": {"method": "greedy"}})
    meta = json.loads((folder / "model.json").read_text())
    assert meta["weights_sha256"] == sha256(folder / "model.safetensors") and len(meta["weights_sha256"]) == 64
    bundle = load_bundle(folder)
    assert bundle.path == folder and bundle.features == original.features and bundle.tokens == original.tokens
    for key, value in original.model.state_dict().items():
        assert torch.equal(bundle.model.state_dict()[key], value), key
    assert torch.equal(bundle.cmvn.mean, original.cmvn.mean) and torch.equal(bundle.cmvn.std, original.cmvn.std)
    assert not bundle.model.training
    assert bundle.decoding().method == "greedy"
    assert bundle.lm_path is None and bundle.lexicon_path is None and bundle.language_model() == (None, None)


def test_float16_weights_load_as_float32(tmp_path: Path) -> None:
    original = small_bundle()
    (tmp_path / "half").mkdir()
    write_model_files(tmp_path / "half", original.model, original.features, original.cmvn, original.tokens,
                      dtype=torch.float16)  # fmt: skip
    saved(tmp_path / "full", original)
    half, full = (tmp_path / "half" / "model.safetensors"), (tmp_path / "full" / "model.safetensors")
    assert half.stat().st_size < 0.6 * full.stat().st_size
    weights = load_bundle(tmp_path / "half").model.state_dict()
    for key, value in original.model.state_dict().items():
        assert weights[key].dtype == torch.float32
        torch.testing.assert_close(weights[key], value, atol=1e-3, rtol=1e-3)


def test_a_changed_weights_file_is_refused_by_its_checksum(tmp_path: Path) -> None:
    folder = saved(tmp_path / "m")
    weights = folder / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x01  # one bit of the last weight: the file still parses, only the checksums can tell
    weights.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="model.safetensors: SHA-256 mismatch"):
        load_bundle(folder)
    write_manifest(folder)  # the manifest rewritten over the changed weights: model.json's checksum still tells
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        load_bundle(folder)
    with pytest.raises(CheckpointError, match="checksum mismatch"):
        verify(folder)
    _edit_meta(folder, weights_sha256=None)  # a model from before checksums: it still loads
    load_bundle(folder)
    assert record_checksum(folder) == sha256(weights)
    load_bundle(folder)


def test_broken_folders_are_refused_with_the_reason(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="model not found"):
        load_bundle(tmp_path / "nothing")
    folder = saved(tmp_path / "m")
    _edit_meta(folder, tokens=["<blk>", "a", "b"])
    with pytest.raises(CheckpointError, match="disagree on their sizes"):
        load_bundle(folder)
    folder = saved(tmp_path / "m")
    meta = json.loads((folder / "model.json").read_text())
    _edit_meta(folder, model={**meta["model"], "hidden_size": 32})
    with pytest.raises(CheckpointError, match="do not fit the model"):
        load_bundle(folder)
    folder = saved(tmp_path / "m")
    (folder / "model.safetensors").write_bytes(b"\x00" * 100)
    _edit_meta(folder, weights_sha256=None)
    with pytest.raises(CheckpointError, match="cannot read weights"):
        load_bundle(folder)
    (folder / "model.safetensors").unlink()
    write_manifest(folder)
    with pytest.raises(CheckpointError, match="model.safetensors: missing"):
        load_bundle(folder)
    (folder / "model.json").write_text("{not json")
    write_manifest(folder)
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_bundle(folder)
    _edit_meta(saved(tmp_path / "m"), version=99)
    with pytest.raises(CheckpointError, match="version 99"):
        load_bundle(tmp_path / "m")


def test_decoding_defaults_come_from_model_json_with_overrides(tmp_path: Path) -> None:
    decoding = {"method": "beam", "use_lm": False, "beam_size": 4, "lm_weight": 0.3, "word_bonus": 2.0}
    bundle = load_bundle(saved(tmp_path / "m", extra={"decoding": decoding}))
    options = bundle.decoding()
    assert (options.method, options.use_lm, options.beam.beam_size) == ("beam", False, 4)
    assert (options.beam.lm_weight, options.beam.word_bonus) == (0.3, 2.0)
    assert bundle.decoding(method="greedy", beam_size=None).method == "greedy"
    assert bundle.decoding(beam_size=None).beam.beam_size == 4  # None leaves the model's value
    with pytest.raises(ConfigError):
        bundle.decoding(method="viterbi")


def test_verify_reads_the_lm_and_lexicon_and_the_cli_reports(tmp_path: Path, capsys) -> None:
    folder = saved(tmp_path / "m")
    (tmp_path / "t.txt").write_text("one two\ntwo three\n")
    build_arpa(tmp_path / "t.txt", 2, folder / "lm.arpa")
    write_manifest(folder)
    facts = verify(folder)
    assert facts["lm"] == str(folder / "lm.arpa") and facts["lexicon_words"] == 3  # the LM's words
    assert facts["weights_sha256"] == sha256(folder / "model.safetensors") and facts["frame_seconds"] == 0.01
    assert facts["files"] == ["lm.arpa", "model.json", "model.safetensors"] and facts["signed_by"] is None
    (folder / "lexicon.txt").write_text("one\ntwo\n")
    write_manifest(folder)
    assert verify(folder)["lexicon_words"] == 2
    assert main(["model", "verify", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["parameters"] == load_bundle(folder).model.num_parameters()
    (folder / "model.safetensors").write_bytes((folder / "model.safetensors").read_bytes()[:-4] + b"\x00" * 4)
    assert main(["model", "verify", str(folder)]) == 1
    err = capsys.readouterr().err
    assert "model.safetensors: SHA-256 mismatch" in err and err.count("\n") == 1


def test_frame_and_step_seconds_follow_the_feature_config() -> None:
    assert small_bundle(10.0).frame_seconds == pytest.approx(0.01)
    assert small_bundle(20.0).step_seconds == pytest.approx(0.08)  # 4x subsampling of 20 ms frames


def test_a_folder_saved_again_is_never_missing_and_leaves_nothing_behind(tmp_path: Path, monkeypatch) -> None:
    """Saving over a model folder swaps the new one in: at every rename or removal on the way (where a kill -9 or
    a reader could come) the folder is there and complete, and no temporary or old folder is left; where the
    system cannot swap, the folder is still replaced."""
    final = tmp_path / "model"
    saved(final, small_bundle(seed=0))
    seen: list[bool] = []

    def there() -> None:
        seen.append((final / "model.json").is_file() and (final / "checksums.sha256").is_file())

    def spy(real):
        def call(*args, **kwargs):
            there()
            out = real(*args, **kwargs)
            there()
            return out

        return call

    with monkeypatch.context() as patch:
        patch.setattr(gruasr.bundle.os, "replace", spy(os.replace))
        patch.setattr(gruasr.bundle.shutil, "rmtree", spy(shutil.rmtree))
        saved(final, small_bundle(seed=1))
    assert seen and all(seen)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    verify(final)
    last = sha256(final / "model.safetensors")
    monkeypatch.setattr(gruasr.bundle, "_exchange", lambda a, b: False)
    saved(final, small_bundle(seed=2))
    assert sha256(final / "model.safetensors") != last
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    verify(final)
