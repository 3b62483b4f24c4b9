"""Bucketed batching, seeded augmentation and the multi-worker loader."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gruasr import ConfigError
from gruasr.audio.telephony import spectral_tilt
from gruasr.data.augment import AugmentConfig, augment, speed_perturb
from gruasr.data.batching import BucketBatchSampler, Collate, SpeechDataset, make_loader
from gruasr.data.manifest import Utterance


def _durations(n=500, seed=0):
    return np.random.default_rng(seed).uniform(0.3, 8.0, size=n)


def test_every_utterance_once_per_epoch_within_budget():
    durations = _durations()
    sampler = BucketBatchSampler(durations, max_seconds=40.0, max_batch=16, seed=3)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = [[i for _, i in b] for b in sampler]
        flat = sorted(i for b in batches for i in b)
        assert flat == list(range(len(durations)))
        for b in batches:
            assert len(b) <= 16
            assert len(b) == 1 or max(durations[b]) * len(b) <= 40.0
        assert all(e == epoch for b in sampler for e, _ in b)


def test_batches_group_similar_lengths():
    durations = _durations()
    sampler = BucketBatchSampler(durations, max_seconds=40.0, max_batch=16, jitter=0.1)
    batches = sampler.batches(0)
    padding = sum(max(durations[b]) * len(b) - durations[b].sum() for b in batches)
    assert padding / durations.sum() < 0.15  # random batches of 16 would pad ~60%


def test_epochs_differ_seeds_reproduce():
    durations = _durations()
    a = BucketBatchSampler(durations, seed=1)
    b = BucketBatchSampler(durations, seed=1)
    c = BucketBatchSampler(durations, seed=2)
    assert a.batches(0) == b.batches(0)
    assert a.batches(0) != a.batches(1)
    assert a.batches(0) != c.batches(0)


def test_resume_mid_epoch_serves_the_rest():
    sampler = BucketBatchSampler(_durations(), max_seconds=30.0, seed=5)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_epoch(2, start_batch=7)
    assert len(sampler) == len(full) - 7
    assert list(sampler) == full[7:]
    assert list(sampler) == full  # the offset applies once


def test_long_utterance_forms_its_own_batch():
    sampler = BucketBatchSampler([1.0, 1.0, 100.0], max_seconds=10.0, shuffle=False)
    assert sorted(map(sorted, sampler.batches(0))) == [[0, 1], [2]]


def test_sampler_rejects_bad_settings():
    with pytest.raises(ConfigError):
        BucketBatchSampler([])
    with pytest.raises(ConfigError):
        BucketBatchSampler([1.0], max_seconds=0)


def test_collate_pads_and_transforms_deterministically():
    items = [
        {"id": f"u{i}", "key": (0, i), "text": "a", "features": torch.randn(n, 3), "seconds": n / 100}
        for i, n in enumerate([5, 9, 2])
    ]
    batch = Collate()(items)
    assert batch["features"].shape == (3, 9, 3)
    assert batch["lengths"].tolist() == [5, 9, 2]
    assert torch.all(batch["features"][2, 2:] == 0)
    assert torch.equal(batch["features"][1], items[1]["features"])

    def noise(x, lengths, gen):
        return x + torch.randn(x.shape, generator=gen)

    one, two = Collate(noise, seed=1)(items), Collate(noise, seed=1)(items)
    assert torch.equal(one["features"], two["features"])
    assert not torch.equal(one["features"], Collate(noise, seed=2)(items)["features"])


def _fsdd_utts(data_dir, n=24):
    files = sorted((data_dir / "fsdd" / "recordings").glob("*_jackson_*.wav"))[:n]
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    return [Utterance(f.stem, str(f), words[int(f.stem[0])]) for f in files]


def _dataset(data_dir, augment_config=None, seed=0):
    from gruasr.features import Fbank, FbankConfig

    return SpeechDataset(_fsdd_utts(data_dir), Fbank(FbankConfig(num_mel_bins=40)), 8000, augment_config, seed=seed)


def test_dataset_gives_features_and_seeded_augmentation(data_dir):
    config = AugmentConfig(speeds=(0.9, 1.1), telephone_prob=1.0, noise_prob=0.5)
    ds = _dataset(data_dir, config, seed=7)
    a, b = ds[(3, 5)], ds[(3, 5)]
    assert a["features"].shape[1] == 40 and a["features"].dtype == torch.float32
    assert torch.equal(a["features"], b["features"])  # same (seed, epoch, index): same augmentation
    assert not torch.equal(a["features"], ds[(4, 5)]["features"])  # another epoch: another draw
    clean = _dataset(data_dir)[(3, 5)]
    assert a["text"] == clean["text"] and a["id"] == clean["id"]
    # speed 0.9 or 1.1 changes the length by about 10%
    ratio = a["features"].shape[0] / clean["features"].shape[0]
    assert 0.85 < ratio < 0.95 or 1.05 < ratio < 1.15


def test_speed_perturbation_changes_duration_and_augment_validates():
    tone = np.sin(2 * np.pi * 440 * np.arange(8000) / 8000).astype(np.float32)
    assert abs(len(speed_perturb(tone, 8000, 1.1)) - 8000 / 1.1) <= 2
    assert abs(len(speed_perturb(tone, 8000, 0.9)) - 8000 / 0.9) <= 2
    out = augment(tone, 8000, AugmentConfig(speeds=(1.0,), gain_db=(-6.0, -6.0)), np.random.default_rng(0))
    assert abs(np.abs(out).max() - 0.5) < 0.01
    for bad in (dict(speeds=()), dict(noise_prob=2.0), dict(snr_db=(30.0, 10.0)), dict(packet_loss=(0.0, 1.0))):
        with pytest.raises(ConfigError):
            AugmentConfig(**bad)


def test_augment_draws_a_spectral_tilt_per_copy():
    noise = np.random.default_rng(1).standard_normal(8000).astype(np.float32) * 0.1
    config = AugmentConfig(speeds=(1.0,), tilt_db=(-4.0, 4.0))
    assert config.active
    slope = np.random.default_rng(0).uniform(-4.0, 4.0)  # augment's first draw after the speed
    expected = np.clip(spectral_tilt(noise, 8000, slope), -1, 1)
    np.testing.assert_allclose(augment(noise, 8000, config, np.random.default_rng(0)), expected, atol=1e-6)
    with pytest.raises(ConfigError, match="tilt_db"):
        AugmentConfig(tilt_db=(0.0, 20.0))
    with pytest.raises(ConfigError, match="tilt_db"):
        AugmentConfig(tilt_db=(3.0, -3.0))
    for name in ("tilt_db", "gain_db", "snr_db"):  # NaN passes every comparison it is not checked for
        with pytest.raises(ConfigError, match=f"{name} must be finite"):
            AugmentConfig(**{name: (float("nan"), 3.0)})


def test_loader_gives_the_same_batches_with_and_without_workers(data_dir):
    from gruasr.features import SpecAugment

    config = AugmentConfig(speeds=(0.9, 1.0, 1.1), telephone_prob=0.5)
    ds = _dataset(data_dir, config, seed=3)
    durations = [1.0] * len(ds)
    runs = []
    for workers in (0, 2):
        sampler = BucketBatchSampler(durations, max_seconds=6.0, seed=3)
        sampler.set_epoch(1)
        loader = make_loader(ds, sampler, Collate(SpecAugment(), seed=3), num_workers=workers)
        runs.append(list(loader))
    assert len(runs[0]) == len(runs[1]) == 4
    for a, b in zip(*runs, strict=True):
        assert a["ids"] == b["ids"]
        assert torch.equal(a["lengths"], b["lengths"])
        assert torch.equal(a["features"], b["features"])
