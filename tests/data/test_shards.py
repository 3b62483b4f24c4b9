"""WebDataset shards: written from a real manifest, read back streamed bit for bit, split between ranks."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest

from gruasr import ConfigError
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.data.shards import read_shards, write_shards

from .helpers import run_cli


@pytest.fixture(scope="module")
def fsdd(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("fsdd")
    code, _, stderr = run_cli(["data", "fsdd", "--src", str(data_dir / "fsdd"), "--out", str(out),
                               "--numbers-train", "0", "--numbers-dev", "0", "--numbers-test", "0"])  # fmt: skip
    assert code == 0, stderr
    return read_manifest(out / "test.jsonl")[:50]


def test_shards_round_trip_and_split_between_ranks(fsdd, tmp_path) -> None:
    paths = write_shards(fsdd, tmp_path / "shards", max_count=16)
    assert [p.name for p in paths] == [f"shard-{i:06d}.tar" for i in range(4)]  # 16 + 16 + 16 + 2
    with tarfile.open(paths[0]) as tar:  # a plain tar of <key>.flac and <key>.json members
        names = tar.getnames()
    assert len(names) == 32 and names[0].endswith(".flac") and names[1].endswith(".json")
    index = json.loads((tmp_path / "shards" / "index.json").read_text())
    assert index["utterances"] == 50 and [s["utterances"] for s in index["shards"]] == [16, 16, 16, 2]

    back = list(read_shards(tmp_path / "shards"))
    assert [u.id for u, _ in back] == [u.id for u in fsdd] and [u.text for u, _ in back] == [u.text for u in fsdd]
    for (utt, samples), original in zip(back, fsdd, strict=True):
        assert np.array_equal(samples, load_utterance(original, utt.sample_rate))  # 16-bit FLAC: lossless
    ranks = [[u.id for u, _ in read_shards(tmp_path / "shards", rank, 2)] for rank in (0, 1)]
    assert set(ranks[0]).isdisjoint(ranks[1]) and sorted(ranks[0] + ranks[1]) == sorted(u.id for u in fsdd)
    assert len(ranks[0]) == 32 and len(ranks[1]) == 18  # shards 0 and 2, shards 1 and 3


def test_shard_command_and_errors(fsdd, tmp_path) -> None:
    manifest = tmp_path / "m.jsonl"
    from gruasr.data.manifest import write_manifest

    write_manifest(manifest, fsdd[:5], relative=False)
    code, stdout, stderr = run_cli(["data", "shard", "--manifest", str(manifest), "--out", str(tmp_path / "s")])
    assert code == 0, stderr
    assert "wrote 1 shard of 5 utterances" in stdout
    with pytest.raises(ConfigError, match="twice"):
        write_shards([fsdd[0], fsdd[0]], tmp_path / "dup")
    with pytest.raises(ConfigError, match="index.json"):
        list(read_shards(tmp_path / "nothing"))
    with pytest.raises(ConfigError, match="rank"):
        list(read_shards(tmp_path / "s", 2, 2))
