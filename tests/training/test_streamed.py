"""Training streamed from WebDataset shards (data.train_shards): ranks get disjoint shards and equal step counts,
batches are bounded, reproducible and freshly augmented each epoch, a resumed epoch skips exactly what was
trained, and a run killed mid-epoch resumes to the uninterrupted run's weights."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from gruasr.bundle import load_bundle
from gruasr.data.manifest import read_manifest
from gruasr.data.shards import write_shards
from gruasr.errors import ConfigError
from gruasr.features.cmvn import GlobalCMVN
from gruasr.training.config import load_config
from gruasr.training.loop import train
from gruasr.training.streamed import StreamedBatches, rank_shards, steps_per_epoch

from .helpers import fsdd_manifests


@pytest.fixture(scope="module")
def shards(data_dir, tmp_path_factory):
    """32 FSDD takes of one speaker in 4 shards of 8, and 4 dev takes."""
    root = tmp_path_factory.mktemp("streamed")
    train_m, dev_m = fsdd_manifests(data_dir, root / "data", train=32, dev=4)
    write_shards(read_manifest(train_m), root / "shards", max_count=8)
    return root / "shards", dev_m


def _overrides(shards, dev, *more: str) -> list[str]:
    return [
        f'data.train_shards=["{shards}"]', f'data.dev=["{dev}"]', "features.num_mel_bins=23",
        "augment.telephone_prob=0.5", "model.hidden_size=16", "model.num_layers=1", "model.conv_channels=16",
        "train.max_seconds=3.0", "train.warmup_steps=2", "train.average_last=2", "train.num_workers=0", *more,
    ]  # fmt: skip


def _ids(batches) -> list[list[str]]:
    return [[it["id"] for it in batch] for batch in batches]


def test_ranks_get_disjoint_shards_and_the_same_number_of_steps(shards) -> None:
    folder, _ = shards
    mine = [[p.name for p, _ in rank_shards([str(folder)], r, 2)] for r in (0, 1)]
    assert mine == [["shard-000000.tar", "shard-000002.tar"], ["shard-000001.tar", "shard-000003.tar"]]
    seconds = [sum(s["seconds"] for _, s in rank_shards([str(folder)], r, 2)) for r in (0, 1)]
    assert steps_per_epoch([str(folder)], 2, 3.0) == int(min(seconds) // 1.5) >= 2  # local batches of 1.5 s
    with pytest.raises(ConfigError, match="4 training shards for 5 ranks"):
        rank_shards([str(folder)], 0, 5)


def test_streamed_batches_are_bounded_reproducible_fresh_and_resumable(shards) -> None:
    folder, dev = shards
    config = load_config(None, _overrides(folder, dev))
    cmvn = GlobalCMVN(torch.zeros(23), torch.ones(23))
    stream = StreamedBatches(config, cmvn, rank=0, world=2)
    first = list(stream.epoch(0))
    assert len(first) == stream.steps
    for batch in first:  # at most max_seconds / world padded seconds per local batch
        longest = max(it["features"].shape[0] for it in batch) * 0.01
        assert longest * len(batch) <= 1.5 + 1e-9 or len(batch) == 1
        assert {it["key"][2] for it in batch} <= {0, 1}  # this rank's shards only (its shards 0 and 2)
    again = list(StreamedBatches(config, cmvn, rank=0, world=2).epoch(0))
    assert _ids(again) == _ids(first)
    pairs = [(a, b) for x, y in zip(first, again, strict=True) for a, b in zip(x, y, strict=True)]
    assert all(torch.equal(a["features"], b["features"]) for a, b in pairs)
    second = {it["id"]: it["features"] for batch in stream.epoch(1) for it in batch}
    same = [i for b in first for i in b if i["id"] in second and i["features"].shape == second[i["id"]].shape]
    assert len(same) < sum(len(b) for b in first)  # augmented afresh: speeds and lines differ between epochs
    assert _ids(stream.epoch(0, skip=1)) == _ids(first[1:])  # a resumed epoch continues where it stopped
    batch = stream.collate_items(first[0])
    assert batch["features"].shape[0] == len(first[0]) == batch["target_lengths"].shape[0]
    assert int(batch["target_lengths"].sum()) == batch["targets"].shape[0]


def test_a_streamed_training_run_learns_and_saves(shards, tmp_path) -> None:
    folder, dev = shards
    with pytest.raises(ConfigError, match="train_shards"):
        load_config(None, [*_overrides(folder, dev), f'data.train=["{dev}"]'])
    summary = train(load_config(None, _overrides(folder, dev, "train.epochs=2")), tmp_path / "run")
    assert len(summary["history"]) == 2 and summary["history"][0]["audio_seconds"] > 0
    assert np.isfinite(summary["history"][1]["loss"])
    bundle = load_bundle(tmp_path / "run" / "model")
    assert bundle.meta["training"]["data"]["train_shards"] == [str(folder)]


def test_a_streamed_run_killed_mid_epoch_resumes_exactly(shards, tmp_path) -> None:
    folder, dev = shards
    (tmp_path / "empty.toml").write_text("")
    base = [sys.executable, "-m", "gruasr", "train", "--config", str(tmp_path / "empty.toml")]
    sets = [x for o in _overrides(folder, dev, "train.epochs=2", "train.checkpoint_every=3") for x in ("--set", o)]
    whole = subprocess.run([*base, "--out", str(tmp_path / "whole"), *sets], capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    run = tmp_path / "killed"
    proc = subprocess.Popen([*base, "--out", str(run), *sets], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    step = run / "checkpoints" / "step" / "trainer.json"
    deadline = time.time() + 120
    while not step.is_file() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "training ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    resumed = subprocess.run([*base, "--out", str(run), *sets, "--resume"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from" in resumed.stderr
    a = load_file(str(tmp_path / "whole" / "model" / "model.safetensors"))
    b = load_file(str(run / "model" / "model.safetensors"))
    for name in a:
        assert torch.equal(a[name], b[name]), name
