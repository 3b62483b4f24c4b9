"""Training data streamed from WebDataset shards (`data.train_shards`), for corpora that do not fit in memory.

The in-memory path (gruasr.training.data) computes a few augmented copies of every utterance once and keeps
their features; here nothing is kept: every epoch, each rank reads its own shards (shard i of the list to rank
i mod world, as `read_shards`), in an order shuffled per (seed, epoch), the shards split between the DataLoader's
worker processes; each utterance is resampled to the recipe's rate, augmented afresh (seeded by seed, epoch,
shard and position: a new draw every epoch) and turned into features in the worker. The main process buckets
them: a buffer of `BUFFER` utterances is sorted by length, cut into batches of at most `max_seconds / world`
padded seconds and `max_batch` utterances, and the batches are shuffled (seeded) before they are trained on.

Every rank takes the same number of steps per epoch (DDP needs it): the most that the rank with the least audio
surely fills, floor(min over ranks of its seconds / the local batch seconds), from the shards' index.json; a rank
with more audio leaves its epoch's tail for the next epoch's shuffle, a rank that runs out starts its shards
again (a new order). Everything is a function of (seed, epoch, position), so a run is reproducible and resumes
mid-epoch exactly, by producing and skipping the batches already trained.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from gruasr.audio.resample import resample
from gruasr.bundle import frame_seconds
from gruasr.data.augment import AugmentConfig, augment
from gruasr.data.batching import Collate, _worker_init
from gruasr.data.manifest import Utterance
from gruasr.data.shards import iter_shard, shard_index, shard_paths
from gruasr.data.tokens import TokenTable, check_texts
from gruasr.errors import ConfigError
from gruasr.features import Fbank, GlobalCMVN, SpecAugment
from gruasr.features.cmvn import CmvnStats
from gruasr.training.config import TrainConfig

#: utterances sorted together into batches (more: less padding, more memory)
BUFFER = 512


def at_rate(utt: Utterance, samples: np.ndarray, rate: int) -> np.ndarray:
    """A shard member's samples as mono at `rate` (shards keep each utterance at its own rate)."""
    if samples.ndim != 1:  # soundfile's (frames, channels)
        samples = samples.mean(axis=1)
    return samples if utt.sample_rate == rate else resample(samples, int(utt.sample_rate or rate), rate)


def rank_shards(folders: Sequence[str], rank: int, world: int) -> list[tuple[Path, dict[str, Any]]]:
    """This rank's shards of all the folders (shard i of their joined list: rank i mod world), each with its
    index entry (utterances, seconds)."""
    shards = [(Path(folder) / s["name"], s) for folder in folders for s in shard_index(folder)]
    if len(shards) < world:
        raise ConfigError(f"{len(shards)} training shards for {world} ranks: write more, smaller shards")
    return shards[rank::world]


def steps_per_epoch(folders: Sequence[str], world: int, max_seconds: float) -> int:
    """Steps every rank takes per epoch: what the rank with the least audio surely fills with local batches of
    max_seconds / world padded seconds (at least 1)."""
    least = min(sum(s["seconds"] for _, s in rank_shards(folders, r, world)) for r in range(world))
    return max(1, math.floor(least / (max_seconds / world)))


class ShardUtterances(IterableDataset[dict[str, Any]]):
    """One lap over a rank's shards: {"id", "key", "text", "targets", "features" (T, F) before CMVN, "seconds"}
    per utterance, augmented afresh for (seed, epoch, lap); DataLoader workers take disjoint shards."""

    def __init__(
        self, shards: Sequence[Path], config: TrainConfig, augment_config: AugmentConfig | None, seed: int,
        epoch: int, lap: int,
    ) -> None:  # fmt: skip
        self.shards, self.config, self.augment = list(shards), config, augment_config
        self.seed, self.epoch, self.lap = seed, epoch, lap
        self.tokens = TokenTable()
        self.fbank = Fbank(config.features)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        order = np.random.default_rng([self.seed, self.epoch, self.lap]).permutation(len(self.shards))
        rate, limit = self.config.sample_rate, self.config.data.max_duration
        for k in order[worker::workers]:
            for position, (utt, read) in enumerate(iter_shard(self.shards[k])):
                samples = at_rate(utt, read, rate)
                if limit and samples.shape[0] > limit * rate:
                    continue
                bad = check_texts(self.tokens, [(utt.id, utt.text)])
                if bad:
                    raise ConfigError(f"{self.shards[k]}: {utt.id}: a transcript the model cannot spell: {bad[0]}")
                key = (self.epoch, self.lap, int(k), position)
                if self.augment is not None and self.augment.active:
                    samples = augment(samples, rate, self.augment, np.random.default_rng([self.seed, *key]))
                yield {
                    "id": utt.id, "key": key, "text": utt.text,
                    "targets": torch.tensor(self.tokens.encode(utt.text), dtype=torch.int64),
                    "features": self.fbank(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))),
                    "seconds": samples.shape[0] / rate,
                }  # fmt: skip


class StreamedBatches:
    """A rank's training batches for each epoch, streamed from shards (the module docstring says how)."""

    def __init__(self, config: TrainConfig, cmvn: GlobalCMVN, rank: int, world: int) -> None:
        data, train = config.data, config.train
        self.config, self.cmvn, self.world = config, cmvn, world
        mine = rank_shards(data.train_shards, rank, world)
        self.shards = [path for path, _ in mine]
        #: utterances sorted together: BUFFER, or all of this rank's when fewer
        self.buffer = max(1, min(BUFFER, sum(int(s["utterances"]) for _, s in mine)))
        self.steps = steps_per_epoch(data.train_shards, world, train.max_seconds)
        self.local_seconds = train.max_seconds / world
        self.collate = Collate(SpecAugment(config.specaugment), seed=config.seed)
        self.augment = config.augment.to_augment()
        self.seed = config.augment.seed if config.augment.seed is not None else config.seed
        self.frame_seconds = frame_seconds(config.features)

    def _utterances(self, epoch: int) -> Iterator[dict[str, Any]]:
        """This rank's utterances of an epoch, lap after lap over its shards (as many as the epoch takes)."""
        workers = self.config.train.num_workers
        for lap in range(1_000_000):
            dataset = ShardUtterances(self.shards, self.config, self.augment, self.seed, epoch, lap)
            # its own generator: a DataLoader otherwise draws its workers' base seed from torch's global RNG,
            # which dropout uses, so a resumed epoch (which makes its loaders again) would shift the masks
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch * 1009 + lap)
            loader: DataLoader[dict[str, Any]] = DataLoader(
                dataset, batch_size=None, num_workers=workers, worker_init_fn=_worker_init if workers else None,
                prefetch_factor=8 if workers else None, generator=generator,
            )  # fmt: skip
            found = False
            for item in loader:
                found = True
                yield item
            if not found:
                raise ConfigError(f"this rank's shards hold no usable utterance ({len(self.shards)} shards)")

    def _cut(self, buffer: list[dict[str, Any]], rng: np.random.Generator) -> list[list[dict[str, Any]]]:
        buffer.sort(key=lambda it: it["features"].shape[0])
        batches: list[list[dict[str, Any]]] = []
        current: list[dict[str, Any]] = []
        for item in buffer:
            longest = item["features"].shape[0] * self.frame_seconds
            full = len(current) >= self.config.train.max_batch or longest * (len(current) + 1) > self.local_seconds
            if current and full:
                batches.append(current)
                current = []
            current.append(item)
        if current:
            batches.append(current)
        return [batches[i] for i in rng.permutation(len(batches))]

    def epoch(self, epoch: int, skip: int = 0) -> Iterator[list[dict[str, Any]]]:
        """The epoch's `steps` local batches (lists of items), after skipping the first `skip` (a resumed epoch)."""
        made, buffer, cut = 0, [], 0
        for item in self._utterances(epoch):
            buffer.append(item)
            if len(buffer) < self.buffer:
                continue
            for batch in self._cut(buffer, np.random.default_rng([self.seed, epoch, cut])):
                if made >= skip:
                    yield batch
                made += 1
                if made == self.steps:
                    return
            buffer, cut = [], cut + 1
        raise AssertionError("unreachable: the utterances repeat lap after lap")  # pragma: no cover

    def collate_items(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        """A training batch of items: CMVN per utterance, padded, SpecAugment, targets."""
        normalized = [{**it, "features": self.cmvn(it["features"])} for it in items]
        batch = self.collate(normalized)
        batch["targets"] = torch.cat([it["targets"] for it in items])
        batch["target_lengths"] = torch.tensor([len(it["targets"]) for it in items], dtype=torch.int64)
        return batch


def estimate_streamed_cmvn(config: TrainConfig, utterances: int = 2000) -> GlobalCMVN:
    """Global CMVN from the first `utterances` of the shards (in index order, no augmentation): every rank computes
    the same statistics from the same audio."""
    fbank = Fbank(config.features)
    stats: CmvnStats | None = None
    seen = 0
    for path in (p for folder in config.data.train_shards for p in shard_paths(folder)):
        for utt, read in iter_shard(path):
            feats = fbank(torch.from_numpy(np.ascontiguousarray(at_rate(utt, read, config.sample_rate), np.float32)))
            stats = stats or CmvnStats(feats.shape[1])
            stats.update(feats)
            seen += 1
            if seen >= utterances:
                return stats.to_cmvn()
    if stats is None:
        raise ConfigError("the training shards hold no utterances")
    return stats.to_cmvn()
