"""torchrun/DDP training (gloo on CPU): two processes equal one with the same global batch, micro-batch
accumulation equals the whole batch, and a killed two-process run resumes to the same weights."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from .helpers import fsdd_manifests

# no dropout, no SpecAugment, no waveform augmentation: the only randomness a rank's share could change
EXACT = [
    "features.num_mel_bins=23", "augment.variants=1", "augment.speeds=[1.0]", "augment.telephone_prob=0.0",
    "specaugment.num_freq_masks=0", "specaugment.num_time_masks=0", "model.hidden_size=16", "model.num_layers=1",
    "model.conv_channels=16", "model.dropout=0.0", "train.epochs=2", "train.max_seconds=6.0", "train.max_batch=6",
    "train.warmup_steps=2", "train.average_last=2", "train.num_workers=0",
]  # fmt: skip


def _command(tmp_path: Path, out: Path, overrides: list[str], ranks: int, *extra: str) -> list[str]:
    (tmp_path / "empty.toml").write_text("")
    sets = [x for o in overrides for x in ("--set", o)]
    train = ["gruasr", "train", "--config", str(tmp_path / "empty.toml"), "--out", str(out), *sets, *extra]
    if ranks == 1:
        return [sys.executable, "-m", *train]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"]
    return [*launcher, "-m", *train]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _train(tmp_path: Path, name: str, overrides: list[str], ranks: int, *extra: str) -> Path:
    out = tmp_path / name
    done = subprocess.run(_command(tmp_path, out, overrides, ranks, *extra), capture_output=True, text=True,
                          env=_env(), timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return out


def _weights(run: Path, epoch: int) -> dict[str, torch.Tensor]:
    return load_file(str(run / "checkpoints" / f"epoch-{epoch:03d}" / "model.safetensors"))


def _close(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor], atol: float) -> None:
    assert a.keys() == b.keys()
    for name in a:
        assert torch.allclose(a[name], b[name], atol=atol, rtol=0), (name, float((a[name] - b[name]).abs().max()))


@pytest.fixture(scope="module")
def manifests(data_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    train_m, dev_m = fsdd_manifests(data_dir, tmp_path_factory.mktemp("data"), train=30, dev=4)
    return [f'data.train=["{train_m}"]', f'data.dev=["{dev_m}"]']


def test_two_ranks_and_accumulation_equal_one_process(tmp_path: Path, manifests: list[str]) -> None:
    one = _train(tmp_path, "one", [*manifests, *EXACT], 1)
    two = _train(tmp_path, "two", [*manifests, *EXACT], 2)
    accumulated = _train(tmp_path, "acc", [*manifests, *EXACT, "train.accumulate=3"], 1)
    h1 = json.loads((one / "summary.json").read_text())["history"]
    h2 = json.loads((two / "summary.json").read_text())["history"]
    steps = json.loads((one / "checkpoints" / "epoch-001" / "trainer.json").read_text())["trainer"]["step"]
    assert steps >= 8  # several optimizer steps, each on a batch the two ranks split
    assert [r["loss"] for r in h2] == pytest.approx([r["loss"] for r in h1], rel=1e-5)
    assert h1[0]["loss"] > h1[1]["loss"]  # it learns
    for epoch in (0, 1):
        _close(_weights(one, epoch), _weights(two, epoch), atol=2e-5)
        _close(_weights(one, epoch), _weights(accumulated, epoch), atol=2e-5)
    assert not (two / "tb").exists() or any((two / "tb").iterdir())  # rank 0's TensorBoard, one writer
    assert (two / "model" / "model.safetensors").is_file()


def test_killed_two_rank_run_resumes_to_the_same_weights(tmp_path: Path, manifests: list[str]) -> None:
    overrides = [*manifests, *EXACT, "model.dropout=0.3", "train.epochs=3", "train.checkpoint_every=3"]
    whole = _train(tmp_path, "whole", overrides, 2)

    run = tmp_path / "killed"
    proc = subprocess.Popen(_command(tmp_path, run, overrides, 2), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=_env(), start_new_session=True)  # fmt: skip
    marker = run / "checkpoints" / "step" / "trainer.json"
    deadline = time.time() + 300
    while not marker.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "training ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both ranks
    proc.wait()
    assert not (run / "model").exists()
    with pytest.raises(AssertionError, match="same number"):  # a checkpoint of 2 ranks does not resume on 1
        _train(tmp_path, "killed", overrides, 1, "--resume")
    _train(tmp_path, "killed", overrides, 2, "--resume")
    a = load_file(str(whole / "model" / "model.safetensors"))
    b = load_file(str(run / "model" / "model.safetensors"))
    _close(a, b, atol=0.0)  # exact: every rank's dropout RNG came back


def test_a_rank_without_a_share_still_steps_with_the_others(tmp_path: Path, manifests: list[str]) -> None:
    """Batches of one utterance on 2 ranks: rank 1 never has a share, takes part in every all-reduce with a zero
    gradient, and the weights still equal one process's."""
    overrides = [*manifests, *EXACT, "train.max_batch=1", "train.epochs=1"]
    one = _train(tmp_path, "one", overrides, 1)
    two = _train(tmp_path, "two", overrides, 2)
    _close(_weights(one, 0), _weights(two, 0), atol=2e-5)


def test_two_ranks_stream_their_own_shards(tmp_path: Path, data_dir: Path) -> None:
    """data.train_shards under torchrun: each rank streams its half of the shards, both take the same number of
    steps (no rank waits forever in an all-reduce), and rank 0 writes the model."""
    from gruasr.data.manifest import read_manifest
    from gruasr.data.shards import write_shards
    from gruasr.training.streamed import steps_per_epoch

    train_m, dev_m = fsdd_manifests(data_dir, tmp_path / "data", train=32, dev=4)
    write_shards(read_manifest(train_m), tmp_path / "shards", max_count=8)
    overrides = [f'data.train_shards=["{tmp_path / "shards"}"]', f'data.dev=["{dev_m}"]', *EXACT, "train.epochs=1"]
    out = tmp_path / "run"
    done = subprocess.run(_command(tmp_path, out, overrides, 2), capture_output=True, text=True, env=_env(),
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    steps = steps_per_epoch([str(tmp_path / "shards")], 2, 6.0)
    assert f"2 shards on this rank, {steps} batches per epoch" in " ".join(done.stderr.split())  # rich wraps lines
    summary = json.loads((out / "summary.json").read_text())
    assert len(summary["history"]) == 1 and summary["history"][0]["audio_seconds"] > 0
    assert (out / "model" / "model.safetensors").is_file()
