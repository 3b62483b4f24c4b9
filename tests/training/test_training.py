"""Training on real (tiny) data: it runs, writes a loadable model, and a killed run resumes exactly."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from gruasr.bundle import load_bundle
from gruasr.errors import CheckpointError, ConfigError
from gruasr.models.ctc_model import CTCModel, ModelConfig, subsampled_lengths
from gruasr.training.average import interpolate
from gruasr.training.loop import Trainer, train
from gruasr.transcription import END_SILENCE

from .helpers import fsdd_manifests, tiny_config


def test_subsampling_is_causal_and_lengths_match():
    model = CTCModel(ModelConfig(input_dim=23, hidden_size=8, num_layers=1, bidirectional=False, conv_channels=8))
    model.eval()
    x = torch.randn(1, 40, 23)
    y, lengths, _ = model(x)
    assert y.shape == (1, 10, 29) and lengths.tolist() == [10]
    assert subsampled_lengths(torch.tensor([1, 4, 5, 41])).tolist() == [1, 1, 2, 11]
    x2 = x.clone()
    x2[:, 20:] = 5.0  # the future changes; outputs for steps covering frames < 20 must not
    y2, _, _ = model(x2)
    assert torch.equal(y[:, :5], y2[:, :5])
    assert torch.allclose(y.exp().sum(-1), torch.ones(1, 10))


def test_tiny_training_writes_a_loadable_model(tmp_path, data_dir):
    train_m, dev_m = fsdd_manifests(data_dir, tmp_path / "data")
    summary = train(tiny_config(train_m, dev_m), tmp_path / "run")
    run = tmp_path / "run"
    assert len(summary["history"]) == 2
    assert summary["history"][1]["loss"] < summary["history"][0]["loss"]  # it learns something
    assert [h["dev_invented"] for h in summary["history"]] == [0, 0]  # no speech-free dev set: no words invented
    assert (run / "config.json").is_file() and (run / "summary.json").is_file()
    assert any((run / "tb").iterdir())
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["epoch-000", "epoch-001"]
    bundle = load_bundle(run / "model")
    assert bundle.model.config.hidden_size == 16 and len(bundle.tokens) == 29
    assert bundle.meta["environment"]["torch"] == torch.__version__
    with pytest.raises(Exception, match="already holds checkpoints"):
        train(tiny_config(train_m, dev_m), run)


def test_a_recipe_with_leg_normalization_trains_and_saves_it(tmp_path, data_dir):
    """cmvn.leg_prior reaches the batches (and dev) and is saved with the model, which then recognizes with it."""
    train_m, dev_m = fsdd_manifests(data_dir, tmp_path / "data", train=8, dev=4)
    with pytest.raises(ConfigError, match="cmvn.leg_prior"):
        tiny_config(train_m, dev_m, "cmvn.leg_prior=-3")
    train(tiny_config(train_m, dev_m, "cmvn.leg_prior=20", "train.epochs=1", "train.average_last=1"), tmp_path / "run")
    bundle = load_bundle(tmp_path / "run" / "model")
    assert bundle.cmvn.leg_prior == 20 and bundle.meta["training"]["cmvn"] == {"leg_prior": 20}


def test_fine_tuning_starts_from_train_init_and_refuses_another_architecture(tmp_path, data_dir):
    """train.init: the run starts from that model's weights (epoch 0's loss is already the first run's level), and
    a model of another unit or size is refused by name, before any training (here the bundled Li-GRU)."""
    train_m, dev_m = fsdd_manifests(data_dir, tmp_path / "data", train=8, dev=4)
    one = ["train.epochs=1", "train.average_last=1"]
    first = train(tiny_config(train_m, dev_m, *one), tmp_path / "first")
    tuned = train(tiny_config(train_m, dev_m, *one, f'train.init="{tmp_path / "first" / "model"}"'), tmp_path / "b")
    fresh = train(tiny_config(train_m, dev_m, *one, "seed=1"), tmp_path / "c")
    assert tuned["history"][0]["loss"] < min(first["history"][0]["loss"], fresh["history"][0]["loss"])
    with pytest.raises(ConfigError, match=r"its model \(ligru 3x317\).*recipe's \(gru 1x16\)"):
        train(tiny_config(train_m, dev_m, *one, 'train.init="bundled:telephone"'), tmp_path / "d")
    assert not (tmp_path / "d" / "checkpoints").exists()


def test_a_unidirectional_model_is_judged_on_dev_with_the_silence_a_stream_ends_with(tmp_path, data_dir):
    """Dev features of a unidirectional model end with END_SILENCE of zeros after the dev line (what recognizers
    feed it where a stream ends: 0.3 s, 30 frames at 10 ms); a bidirectional model's dev audio is as recorded."""
    train_m, dev_m = fsdd_manifests(data_dir, tmp_path / "data", train=4, dev=3)
    frames = {}
    for bidirectional in (True, False):
        config = tiny_config(train_m, dev_m, f"model.bidirectional={str(bidirectional).lower()}")
        trainer = Trainer(config, tmp_path / f"run-{bidirectional}")
        trainer.prepare()
        frames[bidirectional] = [f.shape[0] for f in trainer.dev.corpus.features[0]]
        if not bidirectional:
            tail = trainer.dev.corpus.features[0][0][-20:]  # zeros through fbank: one row repeated
            assert torch.equal(tail, tail[:1].expand_as(tail))
    assert [b - a for a, b in zip(frames[True], frames[False], strict=True)] == [round(END_SILENCE / 0.01)] * 3


def test_interpolate_averages_a_fine_tune_and_its_start():
    start = {"w": torch.tensor([0.0, 2.0]), "n": torch.tensor([1])}
    end = {"w": torch.tensor([4.0, 6.0]), "n": torch.tensor([3])}
    assert torch.equal(interpolate(start, end, 0.0)["w"], start["w"])
    assert torch.equal(interpolate(start, end, 1.0)["w"], end["w"])
    half = interpolate(start, end, 0.25)
    assert torch.equal(half["w"], torch.tensor([1.0, 3.0])) and torch.equal(half["n"], end["n"])
    with pytest.raises(CheckpointError, match="do not match"):
        interpolate(start, {"w": torch.zeros(3), "n": end["n"]}, 0.5)


def test_a_fine_tune_selects_among_its_epochs_and_its_start_moved_towards_them(tmp_path, data_dir):
    """train.interpolate adds init + a * (best epoch - init) to the dev selection's candidates (WiSE-FT); the
    model written is the candidate chosen, with these exact weights; it needs train.init and weights in (0, 1)."""
    train_m, dev_m = fsdd_manifests(data_dir, tmp_path / "data", train=8, dev=4)
    one = ["train.epochs=1", "train.average_last=1"]
    with pytest.raises(ConfigError, match="needs train.init"):
        tiny_config(train_m, dev_m, *one, "train.interpolate=[0.5]")
    with pytest.raises(ConfigError, match="must lie in"):
        tiny_config(train_m, dev_m, *one, 'train.init="x"', "train.interpolate=[1.0]")
    train(tiny_config(train_m, dev_m, *one), tmp_path / "first")
    start = tmp_path / "first" / "model"
    config = tiny_config(train_m, dev_m, *one, f'train.init="{start}"', "train.interpolate=[0.3, 0.7]")
    summary = train(config, tmp_path / "tuned")
    candidates = summary["selection"]["candidates"]
    assert sorted(candidates) == sorted(
        ["best epoch 1", "init + 0.3 x (best epoch 1 - init)", "init + 0.7 x (best epoch 1 - init)"]
    )
    best = load_file(str(tmp_path / "tuned" / "checkpoints" / "epoch-000" / "model.safetensors"))
    init = load_bundle(start).model.state_dict()
    chosen = summary["selection"]["chosen"]
    expected = best if chosen == "best epoch 1" else interpolate(init, best, float(chosen.split()[2]))
    written = load_bundle(tmp_path / "tuned" / "model").model.state_dict()
    for name, value in expected.items():
        torch.testing.assert_close(written[name], value)
    assert any(not torch.equal(interpolate(init, best, 0.3)[k], best[k]) for k in best)  # the candidates differ


def _run(cmd, **kw):
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)


def test_resume_after_kill_equals_uninterrupted_run(tmp_path, data_dir):
    """kill -9 mid-epoch (after a step checkpoint), --resume, and the final weights equal an uninterrupted run's."""
    train_m, dev_m = fsdd_manifests(data_dir, tmp_path / "data", train=32, dev=4)
    overrides = [
        f'data.train=["{train_m}"]', f'data.dev=["{dev_m}"]', "features.num_mel_bins=23", "augment.variants=2",
        "augment.telephone_prob=0.5", "model.hidden_size=16", "model.num_layers=1", "model.conv_channels=16",
        "model.dropout=0.3", "train.epochs=3", "train.max_seconds=3.0", "train.warmup_steps=2",
        "train.average_last=2", "train.num_workers=0", "train.checkpoint_every=3",
    ]  # fmt: skip
    base = [sys.executable, "-m", "gruasr", "train", "--config", str(tmp_path / "empty.toml")]
    (tmp_path / "empty.toml").write_text("")
    sets = [x for o in overrides for x in ("--set", o)]
    whole = subprocess.run([*base, "--out", str(tmp_path / "whole"), *sets], capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr

    run = tmp_path / "killed"
    proc = _run([*base, "--out", str(run), *sets])
    deadline = time.time() + 120
    step_ckpt = run / "checkpoints" / "step" / "trainer.json"
    while not step_ckpt.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = json.loads(step_ckpt.read_text())["trainer"]
    assert state["step"] >= 3 and not (run / "model").exists()

    resumed = subprocess.run([*base, "--out", str(run), *sets, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr
    a = load_file(str(tmp_path / "whole" / "model" / "model.safetensors"))
    b = load_file(str(run / "model" / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
