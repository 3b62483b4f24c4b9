"""`gruasr model bundle RUN --out DIR`: a finished training run becomes a verified model folder with float16
weights, an LM and lexicon of the training transcripts, decoding chosen on dev, RECIPE.md and the manifest."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from gruasr.bundle import load_bundle, sha256
from gruasr.cli.main import main
from gruasr.data.manifest import read_manifest
from gruasr.errors import CheckpointError
from gruasr.integrity import MANIFEST, check_folder
from gruasr.recognizer import OfflineRecognizer
from gruasr.tuning import LM_WEIGHTS, WORD_BONUSES

ROOT = Path(__file__).resolve().parents[2]


def test_model_bundle_makes_a_verified_folder_with_dev_tuned_decoding(tiny_model: Path, tmp_path: Path, capsys):
    run, out = tiny_model.parent, tmp_path / "bundled"
    recipe = ROOT / "configs" / "tiny.toml"
    assert main(["model", "bundle", str(run), "--out", str(out), "--config", str(recipe), "--order", "2"]) == 0
    assert f"-> {out}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["RECIPE.md", "checksums.sha256", "lexicon.txt", "lm.arpa",
                                                     "model.json", "model.safetensors"]  # fmt: skip
    assert sorted(check_folder(out).digests or {}) == ["RECIPE.md", "lexicon.txt", "lm.arpa", "model.json",
                                                       "model.safetensors"]  # fmt: skip
    meta = json.loads((out / "model.json").read_text())
    assert meta["weights_sha256"] == sha256(out / "model.safetensors")
    results = meta["decoding_dev_results"]
    assert len(results) == 2 + len(LM_WEIGHTS) * len(WORD_BONUSES)
    best = min(results, key=lambda r: r["dev_wer"])
    assert meta["decoding"] == {k: v for k, v in best.items() if k != "dev_wer"}
    assert (out / "model.safetensors").stat().st_size < 0.6 * (tiny_model / "model.safetensors").stat().st_size
    train_words = {w for u in read_manifest(json.loads((run / "config.json").read_text())["data"]["train"][0])
                   for w in u.text.split()}  # fmt: skip
    assert set((out / "lexicon.txt").read_text().split()) == train_words
    recipe_text = (out / "RECIPE.md").read_text()
    assert f"gruasr model bundle {run} --out {out} --config {recipe}" in recipe_text and "float16" in recipe_text
    bundled, trained = load_bundle(out), load_bundle(tiny_model)
    for key, value in trained.model.state_dict().items():  # float16 storage: the same weights to 1e-3
        torch.testing.assert_close(bundled.model.state_dict()[key], value, atol=2e-3, rtol=1e-3)
    asr = OfflineRecognizer.load(out)
    assert asr.lm is not None and asr.lexicon is not None and asr.options == bundled.decoding()
    assert main(["model", "verify", str(out)]) == 0 and ": ok (" in capsys.readouterr().out


def test_model_bundle_needs_the_recipe_and_a_finished_run(tiny_model: Path, tmp_path: Path, capsys):
    out = tmp_path / "bundled"
    assert main(["model", "bundle", str(tiny_model.parent), "--out", str(out)]) == 1  # configs/bundled.toml: none
    assert "name the run's training config with --config" in capsys.readouterr().err
    recipe = str(ROOT / "configs" / "tiny.toml")
    assert main(["model", "bundle", str(tmp_path), "--out", str(out), "--config", recipe]) == 1
    assert "not a finished training run" in capsys.readouterr().err and not out.exists()
    with pytest.raises(SystemExit):
        main(["model", "bundle", str(tiny_model.parent)])  # --out is required


def test_a_run_from_before_manifests_is_bundled_with_a_warning(tiny_model: Path, tmp_path: Path, caplog):
    """A run trained by a gruasr that wrote no manifest: bundling reads its model unchecked (it is the input of
    a fresh, verified folder), and says so; recognition never reads such a folder."""
    run = tmp_path / "old-run"
    shutil.copytree(tiny_model.parent, run, ignore=shutil.ignore_patterns("checkpoints", "tb"))
    (run / "model" / MANIFEST).unlink()
    with pytest.raises(CheckpointError, match="gruasr model manifest"):
        OfflineRecognizer.load(run / "model")
    out = tmp_path / "bundled"
    recipe = ROOT / "configs" / "tiny.toml"
    with caplog.at_level(logging.WARNING, logger="gruasr.integrity"):
        assert main(["model", "bundle", str(run), "--out", str(out), "--config", str(recipe), "--order", "2"]) == 0
    assert "no checksums.sha256" in caplog.text
    assert check_folder(out).digests is not None and load_bundle(out).path == out
