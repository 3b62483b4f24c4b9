"""`gruasr model bundle RUN --out DIR`: a finished training run becomes a verified model folder with float16
weights, an LM and lexicon as the recipe's [lm] table says, decoding chosen on dev, RECIPE.md and the manifest;
`gruasr model lm DIR --out NEW` builds a folder's LM, lexicon and decoding again, its weights unchanged."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from gruasr.bundle import DecodeOptions, load_bundle, sha256
from gruasr.cli.main import main
from gruasr.data.manifest import read_manifest
from gruasr.decoding.beam import BeamConfig
from gruasr.errors import CheckpointError
from gruasr.evaluation.metrics import ErrorCounts
from gruasr.integrity import MANIFEST, check_folder
from gruasr.recognizer import OfflineRecognizer
from gruasr.tuning import BEAM_SIZES, LM_SECTION, LM_WEIGHTS, WORD_BONUSES, choose, dev_log_probs, tune_decoding

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
    assert len(results) == 2 + len(BEAM_SIZES) * len(LM_WEIGHTS) * len(WORD_BONUSES)
    assert meta["decoding"] == choose(results)
    assert all(r["selection_wer"] == r["dev_wer"] for r in results)  # tiny.toml has one dev set and no weights
    assert (out / "model.safetensors").stat().st_size < 0.6 * (tiny_model / "model.safetensors").stat().st_size
    train_words = {w for u in read_manifest(json.loads((run / "config.json").read_text())["data"]["train"][0])
                   for w in u.text.split()}  # fmt: skip
    assert set((out / "lexicon.txt").read_text().split()) == train_words
    recipe_text = (out / "RECIPE.md").read_text()
    assert f"gruasr model bundle {run} --out {out} --config {recipe}" in recipe_text and "float16" in recipe_text
    assert recipe_text.count(LM_SECTION) == 1 and "word 2-gram" in recipe_text
    assert meta["lm"]["recipe"]["order"] == 2 and meta["lm"]["recipe"]["sources"] == ["transcripts"]
    bundled, trained = load_bundle(out), load_bundle(tiny_model)
    for key, value in trained.model.state_dict().items():  # float16 storage: the same weights to 1e-3
        torch.testing.assert_close(bundled.model.state_dict()[key], value, atol=2e-3, rtol=1e-3)
    asr = OfflineRecognizer.load(out)
    assert asr.lm is not None and asr.lexicon is not None and asr.options == bundled.decoding()
    assert main(["model", "verify", str(out)]) == 0 and ": ok (" in capsys.readouterr().out


def test_model_bundle_needs_the_recipe_and_a_finished_run(tiny_model: Path, tmp_path: Path, capsys):
    out = tmp_path / "bundled"
    assert main(["model", "bundle", str(tiny_model.parent), "--out", str(out)]) == 1  # configs/bundled.toml: none
    assert "name the recipe with --config" in capsys.readouterr().err
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


GRAMMAR = [
    '--set=lm.sources=["transcripts","grammar"]',
    "--set=lm.grammar_sentences=300",
    "--set=lm.weights={transcripts=5}",
]


def test_model_bundle_builds_the_lm_of_its_options(tiny_model: Path, tmp_path: Path, capsys):
    """--order and --set lm.KEY=VALUE change the recipe's [lm] table: here the grammar joins the transcripts."""
    run, out = tiny_model.parent, tmp_path / "bundled"
    recipe = ROOT / "configs" / "tiny.toml"
    args = ["model", "bundle", str(run), "--out", str(out), "--config", str(recipe), "--order", "4", *GRAMMAR]
    assert main(args) == 0
    assert "LM 4-gram" in capsys.readouterr().out
    meta = json.loads((out / "model.json").read_text())
    assert meta["lm"]["recipe"]["order"] == 4 and meta["lm"]["recipe"]["weights"] == {"transcripts": 5}
    assert meta["lm"]["sentences"] > 300 and meta["lm"]["ngrams"][3] > 0
    words = set((out / "lexicon.txt").read_text().split())
    assert {"hundred", "thousand", "september", "twenty", "a"} <= words  # the grammar's words, letters
    asr = OfflineRecognizer.load(out)
    assert asr.lm is not None and asr.lm.order == 4 and asr.lexicon is not None and asr.lexicon.words == words
    assert "transcripts x5" in (out / "RECIPE.md").read_text()
    not_lm = ["--set", "train.epochs=3"]
    assert main(["model", "bundle", str(run), "--out", str(out), "--config", str(recipe), *not_lm]) == 1
    assert "only lm.KEY=VALUE settings" in capsys.readouterr().err


def test_model_lm_rebuilds_only_the_lm_of_a_folder(tiny_model: Path, tmp_path: Path, capsys):
    run, first = tiny_model.parent, tmp_path / "first"
    recipe = str(ROOT / "configs" / "tiny.toml")
    assert main(["model", "bundle", str(run), "--out", str(first), "--config", recipe, "--order", "2"]) == 0
    weights = sha256(first / "model.safetensors")
    second = tmp_path / "second"
    assert main(["model", "lm", str(first), "--out", str(second), "--config", recipe, "--order", "3", *GRAMMAR]) == 0
    assert f"rebuilt the LM of {first} -> {second}" in capsys.readouterr().out
    assert sha256(second / "model.safetensors") == weights  # the same bytes
    meta = json.loads((second / "model.json").read_text())
    assert meta["weights_sha256"] == weights and meta["lm"]["recipe"]["order"] == 3
    assert sorted(check_folder(second).digests or {}) == ["RECIPE.md", "lexicon.txt", "lm.arpa", "model.json",
                                                          "model.safetensors"]  # fmt: skip
    assert "hundred" in (second / "lexicon.txt").read_text().split()
    text = (second / "RECIPE.md").read_text()
    assert text.count(LM_SECTION) == 1 and "word 3-gram" in text and "word 2-gram" not in text
    assert text.startswith((first / "RECIPE.md").read_text().split(LM_SECTION)[0])  # the training part kept
    assert f"gruasr model lm {first} --out {second} --config {recipe} --order 3" in text
    assert len(meta["decoding_dev_results"]) == 2 + len(BEAM_SIZES) * len(LM_WEIGHTS) * len(WORD_BONUSES)
    # in place: the folder is replaced atomically and still verifies
    assert main(["model", "lm", str(second), "--out", str(second), "--config", recipe, "--order", "2"]) == 0
    assert json.loads((second / "model.json").read_text())["lm"]["recipe"]["order"] == 2
    assert main(["model", "verify", str(second)]) == 0
    (second / "lm.arpa").write_text("tampered")
    assert main(["model", "lm", str(second), "--out", str(tmp_path / "third"), "--config", recipe]) == 1
    assert "SHA-256 mismatch" in capsys.readouterr().err


def test_choose_refuses_settings_that_invent_words_on_speech_free_dev():
    """The dev choice: the lowest selection WER among the settings that output no more words on the speech-free
    dev audio than greedy decoding (the first result); ties go to the earlier."""
    results = [
        {"method": "greedy", "dev_wer": 0.10, "selection_wer": 0.12, "invented": 2},
        {"method": "beam", "beam_size": 16, "dev_wer": 0.09, "selection_wer": 0.11, "invented": 2},
        {"method": "beam", "word_bonus": 2.0, "dev_wer": 0.07, "selection_wer": 0.08, "invented": 5},  # best, noisy
        {"method": "beam", "word_bonus": 1.0, "dev_wer": 0.08, "selection_wer": 0.09, "invented": 1},
        {"method": "beam", "word_bonus": 0.5, "dev_wer": 0.06, "selection_wer": 0.09, "invented": 0},  # a tie: later
    ]
    assert choose(results) == {"method": "beam", "word_bonus": 1.0}
    assert choose(results[:3]) == {"method": "beam", "beam_size": 16}
    assert choose(results[:1]) == {"method": "greedy"}


def test_tune_decoding_weighs_the_dev_sets_and_counts_invented_words(tiny_model: Path):
    """Every grid point gets the pooled WER, the selection WER of the dev weights and the words output on the
    speech-free set; here the dev utterances' audio also stands in as a "speech-free" set (reference empty) so
    that whatever the tiny model says there counts as invented."""
    asr = OfflineRecognizer.load(tiny_model)
    config = json.loads((tiny_model.parent / "config.json").read_text())
    speech = dev_log_probs(asr, config)
    assert speech and {group for _, _, group in speech} == {0}
    cached = speech + [("", log_probs, 1) for _, log_probs, _ in speech]
    best, results = tune_decoding(asr, cached, beam_sizes=(4,), weights=(1.0, 0.0))
    assert [r["method"] for r in results] == ["greedy", "beam"]  # the tiny model has no LM
    for result in results:
        asr.options = DecodeOptions(result["method"], BeamConfig(4), use_lm=False)
        hyps = [asr.decode(log_probs).text for _, log_probs, _ in speech]
        counts = ErrorCounts()
        for (text, _, _), hyp in zip(speech, hyps, strict=True):
            counts.add(text, hyp)
        assert result["selection_wer"] == pytest.approx(counts.wer)  # the weight-0 set does not count
        assert result["invented"] == sum(len(hyp.split()) for hyp in hyps)
        assert result["dev_wer"] == pytest.approx((counts.errors + result["invented"]) / counts.words)
    assert best == choose(results)
