"""Training and dev data for the trainer: manifests -> token targets, features computed once, batches.

On a CPU the waveform pipeline (speed perturbation, telephone channel, fbank) costs more than a small model's
training step, so the trainer computes `variants` augmented copies of every training utterance once, with
worker processes, and epoch e trains on copy e mod variants. Batches then only pad, normalize and apply
SpecAugment, seeded by (seed, epoch, position), in the main process.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import torch
from rich.progress import Progress
from torch import Tensor
from torch.utils.data import DataLoader

from gruasr.bundle import frame_seconds
from gruasr.data.augment import AugmentConfig
from gruasr.data.batching import BucketBatchSampler, Collate, SpeechDataset, _worker_init
from gruasr.data.manifest import Utterance, read_manifest
from gruasr.data.tokens import TokenTable, check_texts
from gruasr.errors import ConfigError
from gruasr.features import Fbank, GlobalCMVN, SpecAugment
from gruasr.features.cmvn import CmvnStats
from gruasr.training.config import TrainConfig


@dataclass
class Corpus:
    """Utterances with their targets and, per augmentation variant, their features (T, F) float32."""

    utts: list[Utterance]
    targets: list[Tensor]  # (L,) int64 token ids
    features: list[list[Tensor]]  # [variant][utterance]
    frame_seconds: float  # seconds between feature frames (the feature config's frame shift)
    sizes: list[int] = field(default_factory=list)  # utterances per manifest, in order (when made from several)

    def frames(self, variant: int) -> np.ndarray:
        return np.array([f.shape[0] for f in self.features[variant]], dtype=np.int64)


def take_fraction(utts: Sequence[Utterance], fraction: float) -> list[Utterance]:
    """round(fraction * n) of the utterances (at least one), those whose ids' SHA-256 come first, in their
    manifest order: a fixed choice per utterance, so a smaller fraction's utterances are all in a larger one's."""
    if fraction >= 1:
        return list(utts)
    keep = max(1, round(fraction * len(utts)))
    ranked = sorted(range(len(utts)), key=lambda i: hashlib.sha256(utts[i].id.encode("utf-8")).digest())
    chosen = set(ranked[:keep])
    return [u for i, u in enumerate(utts) if i in chosen]


def read_utterances(
    paths: Sequence[str], tokens: TokenTable, max_duration: float | None, limit: int = 0, fraction: float = 1.0
) -> list[list[Utterance]]:
    """Utterances of each manifest; too long ones are dropped, unspellable texts are an error; then the first
    `limit` (0: all) and of those a `fraction` (take_fraction)."""
    out = []
    for path in paths:
        utts = read_manifest(path)
        if max_duration:
            utts = [u for u in utts if u.duration is None or u.duration <= max_duration]
        if limit:
            utts = utts[:limit]
        utts = take_fraction(utts, fraction)
        bad = check_texts(tokens, [(u.id, u.text) for u in utts])
        if bad:
            raise ConfigError(f"{path}: {len(bad)} transcripts use characters the model cannot spell, e.g. {bad[:3]}")
        if not utts:
            raise ConfigError(f"{path}: no utterances to use")
        out.append(utts)
    return out


def compute_features(
    utts: Sequence[Utterance],
    config: TrainConfig,
    augment: AugmentConfig | None,
    variants: int,
    seed: int,
    workers: int,
    progress: Progress | None = None,
    description: str = "features",
    end_silence: int = 0,
) -> list[list[Tensor]]:
    """Features of every utterance for each variant (variant v is augmentation 'epoch' v), with workers;
    `end_silence` samples of zeros after each utterance's audio (SpeechDataset)."""
    dataset = SpeechDataset(
        utts, Fbank(config.features), config.sample_rate, augment, seed=seed, end_silence=end_silence
    )
    keys = [(v, i) for v in range(variants) for i in range(len(utts))]
    loader: DataLoader[dict[str, object]] = DataLoader(
        dataset,  # keys are (variant, index) tuples, which the dataset accepts
        batch_size=None,
        sampler=keys,
        num_workers=workers,
        worker_init_fn=_worker_init if workers > 0 else None,
        prefetch_factor=8 if workers > 0 else None,
    )
    store: list[list[Tensor]] = [[torch.empty(0)] * len(utts) for _ in range(variants)]
    job = progress.add_task(description, total=len(keys)) if progress is not None else None
    for key, item in zip(keys, loader, strict=True):
        store[key[0]][key[1]] = cast(Tensor, item["features"]).clone()
        if progress is not None and job is not None:
            progress.advance(job)
    return store


def build_corpus(
    utts: list[Utterance],
    tokens: TokenTable,
    config: TrainConfig,
    augment: AugmentConfig | None,
    variants: int,
    seed: int,
    progress: Progress | None,
    description: str,
    end_silence: int = 0,
) -> Corpus:
    targets = [torch.tensor(tokens.encode(u.text), dtype=torch.int64) for u in utts]
    workers = config.train.num_workers
    features = compute_features(utts, config, augment, variants, seed, workers, progress, description, end_silence)
    return Corpus(utts, targets, features, frame_seconds(config.features))


def estimate_cmvn(corpus: Corpus) -> GlobalCMVN:
    """Global mean and standard deviation of the first variant's features."""
    stats = CmvnStats(corpus.features[0][0].shape[1])
    for feats in corpus.features[0]:
        stats.update(feats)
    return stats.to_cmvn()


@dataclass
class EpochPlan:
    """Which utterance each position of an epoch's list is (manifests repeated as configured)."""

    order: list[int]

    @classmethod
    def from_repeats(cls, sizes: Sequence[int], repeats: Sequence[int]) -> EpochPlan:
        order: list[int] = []
        start = 0
        for size, times in zip(sizes, repeats, strict=True):
            for _ in range(times):
                order.extend(range(start, start + size))
            start += size
        if not order:
            raise ConfigError("data.repeat leaves nothing to train on")
        return cls(order)


class BatchMaker:
    """Pads, normalizes and augments the cached features of one batch of epoch positions."""

    def __init__(self, corpus: Corpus, plan: EpochPlan, cmvn: GlobalCMVN, spec: SpecAugment | None, seed: int):
        self.corpus, self.plan, self.cmvn = corpus, plan, cmvn
        self.collate = Collate(spec, seed=seed)

    def sampler(self, config: TrainConfig) -> BucketBatchSampler:
        return BucketBatchSampler(
            self.durations(0).tolist(), config.train.max_seconds, config.train.max_batch, shuffle=True, seed=config.seed
        )

    def durations(self, epoch: int) -> np.ndarray:
        variant = epoch % len(self.corpus.features)
        frames = self.corpus.frames(variant)[self.plan.order]
        return frames.astype(np.float64) * self.corpus.frame_seconds

    def __call__(self, keys: list[tuple[int, int]]) -> dict[str, object]:
        variants = len(self.corpus.features)
        items = []
        for epoch, position in keys:
            index = self.plan.order[position]
            feats = self.cmvn(self.corpus.features[epoch % variants][index])
            utt = self.corpus.utts[index]
            items.append({"id": utt.id, "key": (epoch, position), "text": utt.text, "features": feats, "seconds": 0.0})
        batch = self.collate(items)
        targets = [self.corpus.targets[self.plan.order[p]] for _, p in keys]
        batch["targets"] = torch.cat(targets)
        batch["target_lengths"] = torch.tensor([len(t) for t in targets], dtype=torch.int64)
        return batch
