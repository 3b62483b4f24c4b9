"""Corpora as WebDataset tar shards: written from our manifests, read back streamed, shard by shard, each rank of a
torchrun job its own shards (`gruasr data shard`).

A shard is a plain tar file (webdataset's format, read and written by the `webdataset` library): per utterance
`<key>.flac` (its audio, 16-bit FLAC at the utterance's own sample rate, the segment and channel of the manifest
line only) and `<key>.json` (id, text, speaker, duration, sample_rate). Shards hold at most `max_count`
utterances and about `max_seconds` of audio; `index.json` beside them lists every shard with its utterances and
seconds, so a reader can plan without opening them. Keys are the utterance ids with dots replaced (webdataset
splits a member's name at its first dot).

`read_shards(folder, rank, world)` yields (Utterance, samples) for the shards of one rank (shard i belongs to
rank i mod world), streamed: one shard open at a time, nothing extracted to disk. Training streams them with
`data.train_shards` (gruasr.training.streamed: fresh augmentation every epoch, features in worker processes,
nothing held in memory beyond a bucketing buffer).
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from gruasr.data.manifest import Utterance, load_utterance
from gruasr.errors import ConfigError

INDEX = "index.json"


def _key(utt_id: str) -> str:
    return utt_id.replace(".", "_")


def write_shards(
    utts: Iterable[Utterance], out: str | os.PathLike[str], max_count: int = 1000, max_seconds: float = 3600.0
) -> list[Path]:
    """Write `utts` as out/shard-NNNNNN.tar and out/index.json; returns the shard paths."""
    import webdataset as wds

    if max_count < 1 or max_seconds <= 0:
        raise ConfigError(f"shards need max_count >= 1 and max_seconds > 0, got {max_count}, {max_seconds}")
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("shard-*.tar"):
        old.unlink()
    shards: list[dict[str, Any]] = []
    writer: Any = None
    seconds = 0.0
    seen: set[str] = set()
    for utt in utts:
        key = _key(utt.id)
        if key in seen:
            raise ConfigError(f"utterance id {utt.id!r} appears twice: shard keys must be unique")
        seen.add(key)
        rate = int(utt.sample_rate) if utt.raw_format is not None and utt.sample_rate else sf.info(utt.audio).samplerate
        samples = load_utterance(utt, rate)
        length = samples.shape[0] / rate
        if writer is None or shards[-1]["utterances"] >= max_count or seconds + length > max_seconds:
            if writer is not None:
                writer.close()
            path = folder / f"shard-{len(shards):06d}.tar"
            writer = wds.TarWriter(str(path))
            shards.append({"name": path.name, "utterances": 0, "seconds": 0.0})
            seconds = 0.0
        audio = io.BytesIO()
        sf.write(audio, samples, rate, format="FLAC", subtype="PCM_16")
        meta = {"id": utt.id, "text": utt.text, "speaker": utt.speaker, "duration": length, "sample_rate": rate}
        writer.write({"__key__": key, "flac": audio.getvalue(), "json": json.dumps(meta).encode()})
        shards[-1]["utterances"] += 1
        shards[-1]["seconds"] += length
        seconds += length
    if writer is not None:
        writer.close()
    total = {"utterances": sum(s["utterances"] for s in shards), "seconds": sum(s["seconds"] for s in shards)}
    (folder / INDEX).write_text(json.dumps({"shards": shards, **total}, indent=1) + "\n")
    return [folder / s["name"] for s in shards]


def shard_index(folder: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Each shard of a folder (its index.json): {"name", "utterances", "seconds"}, in order."""
    index = Path(folder) / INDEX
    if not index.is_file():
        raise ConfigError(f"{folder}: no {INDEX} (write shards with `gruasr data shard`)")
    shards: list[dict[str, Any]] = json.loads(index.read_text())["shards"]
    return shards


def shard_paths(folder: str | os.PathLike[str]) -> list[Path]:
    """The shards of a folder written by write_shards, in order (from its index.json)."""
    return [Path(folder) / s["name"] for s in shard_index(folder)]


def read_shards(
    folder: str | os.PathLike[str], rank: int = 0, world: int = 1
) -> Iterator[tuple[Utterance, np.ndarray]]:
    """(utterance, float32 samples) of this rank's shards (shard i: rank i mod world), streamed by webdataset.
    The Utterance's `audio` names the shard and member it came from."""
    if not 0 <= rank < world:
        raise ConfigError(f"rank {rank} is not in 0..{world - 1}")
    for path in shard_paths(folder)[rank::world]:
        yield from iter_shard(path)


def iter_shard(path: str | os.PathLike[str]) -> Iterator[tuple[Utterance, np.ndarray]]:
    """(utterance, float32 samples at its own rate) of one shard, in the order written, streamed by webdataset."""
    import webdataset as wds

    dataset = wds.WebDataset([str(path)], shardshuffle=False, nodesplitter=None, workersplitter=None, empty_check=False)
    for sample in dataset:
        meta = json.loads(sample["json"])
        samples, rate = sf.read(io.BytesIO(sample["flac"]), dtype="float32")
        utt = Utterance(meta["id"], f"{sample['__url__']}#{sample['__key__']}", meta["text"],
                        duration=meta["duration"], speaker=meta["speaker"], sample_rate=rate)  # fmt: skip
        yield utt, samples
