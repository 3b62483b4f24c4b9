"""Batches for training: length-bucketed sampling, feature extraction with augmentation, padding, and a loader
that keeps every core busy.

Reproducibility without shared state: the batch sampler yields keys (epoch, index), so a worker process knows
which epoch an utterance belongs to without being told; the dataset seeds each utterance's augmentation from
(seed, epoch, index), and the collate function seeds SpecAugment from (seed, epoch, first index of the batch).
The same seed therefore gives the same batches with 0, 1 or 8 workers, and a resumed run (start_batch) sees
exactly the batches the interrupted run would have seen next.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from gruasr.data.augment import AugmentConfig, augment
from gruasr.data.manifest import Utterance, load_utterance
from gruasr.errors import ConfigError

Key = tuple[int, int]  # (epoch, utterance index)


class BucketBatchSampler(Sampler[list[Key]]):
    """Batches of utterances of similar duration, each under a budget of padded seconds.

    Durations are jittered by up to +-`jitter` (relative) before sorting, with a generator seeded by
    (seed, epoch), so neighbouring lengths mix differently each epoch; batch order is shuffled likewise.
    A batch holds at most `max_batch` utterances and at most `max_seconds` of padded audio
    (batch size x its longest utterance); an utterance longer than max_seconds forms a batch of its own.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_seconds: float = 200.0,
        max_batch: int = 64,
        shuffle: bool = True,
        seed: int = 0,
        jitter: float = 0.1,
    ) -> None:
        if len(durations) == 0:
            raise ConfigError("cannot batch an empty data set")
        if max_seconds <= 0 or max_batch < 1:
            raise ConfigError(f"batching: max_seconds ({max_seconds}) and max_batch ({max_batch}) must be positive")
        self.durations = np.asarray(durations, dtype=np.float64)
        self.max_seconds = float(max_seconds)
        self.max_batch = int(max_batch)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.jitter = float(jitter)
        self.epoch = 0
        self.start_batch = 0  # batches of this epoch to skip (resuming mid-epoch)

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch to iterate, optionally resuming after its first `start_batch` batches."""
        self.epoch = int(epoch)
        self.start_batch = int(start_batch)

    def batches(self, epoch: int) -> list[list[int]]:
        """All batches of an epoch, as utterance indices, in the order they are served."""
        rng = np.random.default_rng([self.seed, epoch])
        keys = self.durations
        if self.shuffle and self.jitter > 0:
            keys = keys * np.exp(rng.uniform(-self.jitter, self.jitter, size=len(keys)))
        order = np.argsort(keys, kind="stable")
        out: list[list[int]] = []
        current: list[int] = []
        longest = 0.0
        for i in order.tolist():
            d = float(self.durations[i])
            grown = max(longest, d)
            if current and (len(current) >= self.max_batch or grown * (len(current) + 1) > self.max_seconds):
                out.append(current)
                current, grown = [], d
            current.append(i)
            longest = grown
        if current:
            out.append(current)
        if self.shuffle:
            out = [out[j] for j in rng.permutation(len(out))]
        return out

    def __iter__(self) -> Iterator[list[Key]]:
        epoch, start = self.epoch, self.start_batch
        self.start_batch = 0  # a resume offset applies once
        for batch in self.batches(epoch)[start:]:
            yield [(epoch, i) for i in batch]

    def __len__(self) -> int:
        return len(self.batches(self.epoch)) - self.start_batch


FeatureFn = Callable[[Tensor], Tensor]  # samples (n,) float32 -> features (T, F)


@dataclass
class SpeechDataset(Dataset[dict[str, Any]]):
    """Utterances -> {"id", "text", "features" (T, F) float32, "seconds"} with seeded waveform augmentation.

    `features` is the feature extractor (e.g. gruasr.features.Fbank), applied after augmentation;
    `normalize` (e.g. global CMVN) after that. Indexed by (epoch, index) keys from BucketBatchSampler, or
    by a plain index (epoch 0).
    """

    utterances: Sequence[Utterance]
    features: FeatureFn
    sample_rate: int
    augment: AugmentConfig | None = None
    normalize: FeatureFn | None = None
    seed: int = 0
    #: samples of silence (zeros) after each utterance, after augmentation: what a unidirectional model hears
    #: where a stream ends (gruasr.transcription.END_SILENCE)
    end_silence: int = 0

    def __len__(self) -> int:
        return len(self.utterances)

    def __getitem__(self, key: Key | int) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, int(key))
        utt = self.utterances[index]
        samples = load_utterance(utt, self.sample_rate)
        if self.augment is not None and self.augment.active:
            rng = np.random.default_rng([self.seed, epoch, index])
            samples = augment(samples, self.sample_rate, self.augment, rng)
        if self.end_silence:
            samples = np.concatenate([samples, np.zeros(self.end_silence, dtype=samples.dtype)])
        feats = self.features(torch.from_numpy(np.ascontiguousarray(samples)))
        if self.normalize is not None:
            feats = self.normalize(feats)
        return {
            "id": utt.id,
            "key": (epoch, index),
            "text": utt.text,
            "features": feats,
            "seconds": len(samples) / self.sample_rate,
        }


BatchTransform = Callable[[Tensor, Tensor, torch.Generator], Tensor]  # (B, T, F), lengths, gen -> (B, T, F)


@dataclass
class Collate:
    """Pad a list of dataset items into a batch; optionally apply a batch transform (SpecAugment) seeded by
    the run seed and the batch's (epoch, index) keys.

    Returns {"ids", "texts", "features" (B, T, F), "lengths" (B,), "seconds"}."""

    transform: BatchTransform | None = None
    seed: int = 0

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        if not items:
            raise ConfigError("cannot collate an empty batch")
        lengths = torch.tensor([int(it["features"].shape[0]) for it in items], dtype=torch.int64)
        dim = int(items[0]["features"].shape[1])
        feats = torch.zeros(len(items), int(lengths.max()), dim, dtype=items[0]["features"].dtype)
        for b, it in enumerate(items):
            feats[b, : lengths[b]] = it["features"]
        if self.transform is not None:
            gen = torch.Generator().manual_seed(_batch_seed(self.seed, [it["key"] for it in items]))
            feats = self.transform(feats, lengths, gen)
        return {
            "ids": [it["id"] for it in items],
            "texts": [it["text"] for it in items],
            "features": feats,
            "lengths": lengths,
            "seconds": float(sum(it["seconds"] for it in items)),
        }


def _batch_seed(seed: int, keys: list[Key]) -> int:
    """A 63-bit seed from the run seed and the batch's keys (stable across processes, unlike hash())."""
    words = np.random.SeedSequence([seed, *(k for key in keys for k in key)]).generate_state(2, np.uint32)
    return (int(words[0]) << 31 | int(words[1])) % (2**63)


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # one process per core: intra-op threads would only fight over the cores


def make_loader(
    dataset: SpeechDataset, sampler: BucketBatchSampler, collate: Collate, num_workers: int = 2, prefetch: int = 4
) -> DataLoader[dict[str, Any]]:
    """A DataLoader over bucketed batches, with `num_workers` worker processes (0: in the main process)."""
    return DataLoader(
        dataset,  # keys are (epoch, index) tuples, which the dataset accepts
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=num_workers,
        persistent_workers=num_workers > 0,
        prefetch_factor=prefetch if num_workers > 0 else None,
        worker_init_fn=_worker_init if num_workers > 0 else None,
    )
