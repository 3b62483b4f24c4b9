"""SpecAugment: masks within their limits, padded frames untouched, reproducible, widths scaled to length."""

from __future__ import annotations

import pytest
import torch

from gruasr.errors import ConfigError, ShapeError
from gruasr.features import SpecAugment, SpecAugmentConfig
from gruasr.features.specaugment import spec_augment_masks, warp_frequency

SENTINEL = -1000.0  # a mask value real features never take


def batch(lengths, bins=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor(lengths)
    x = torch.randn(len(lengths), int(lengths.max()), bins, generator=g)
    return x, lengths


def runs(row):
    """Lengths of the runs of True in a 1-D bool tensor."""
    out, n = [], 0
    for v in row.tolist() + [False]:
        if v:
            n += 1
        elif n:
            out.append(n)
            n = 0
    return out


def test_padded_frames_untouched_and_input_unchanged():
    x, lengths = batch([40, 300, 7, 0, 120])
    x[0, 40:] = 5.0  # padding with a recognisable value
    before = x.clone()
    aug = SpecAugment(SpecAugmentConfig(num_time_masks=5, max_time_ratio=0.3, mask_value=SENTINEL))
    for seed in range(20):
        y = aug(x, lengths, torch.Generator().manual_seed(seed))
        assert torch.equal(x, before)  # not in place
        for b, n in enumerate(lengths.tolist()):
            assert torch.equal(y[b, n:], x[b, n:])
        assert (y == SENTINEL).any()


def test_time_masks_within_scaled_limits():
    """Each time mask is at most floor(ratio * length) frames: ~2 frames on a 40-frame digit, 30 on 600 frames."""
    lengths = [40, 600, 41, 250]
    x, lens = batch(lengths, bins=20)
    config = SpecAugmentConfig(num_freq_masks=0, num_time_masks=1, max_time_ratio=0.05, mask_value=SENTINEL)
    widest = [0] * len(lengths)
    for seed in range(200):
        y = SpecAugment(config)(x, lens, torch.Generator().manual_seed(seed))
        masked = (y == SENTINEL).all(dim=2)  # (B, T): whole frames masked
        assert torch.equal(masked, (y == SENTINEL).any(dim=2))  # time masks cover every bin of a frame
        for b, n in enumerate(lengths):
            r = runs(masked[b])
            assert len(r) <= 1
            width = r[0] if r else 0
            assert width <= int(0.05 * n), (n, width)
            widest[b] = max(widest[b], width)
    assert widest == [2, 30, 2, 12]  # the limit is reached, so it is the limit and not something smaller


def test_freq_masks_within_limits_and_cover_whole_utterance():
    x, lens = batch([50, 80], bins=40)
    config = SpecAugmentConfig(num_freq_masks=1, max_freq_width=7, num_time_masks=0, mask_value=SENTINEL)
    seen = set()
    for seed in range(100):
        y = SpecAugment(config)(x, lens, torch.Generator().manual_seed(seed))
        for b, n in enumerate([50, 80]):
            masked = y[b, :n] == SENTINEL  # (n, F)
            cols = masked.all(dim=0)
            assert torch.equal(cols, masked.any(dim=0))  # a band spans every valid frame
            r = runs(cols)
            assert len(r) <= 1 and (not r or r[0] <= 7)
            seen.add(r[0] if r else 0)
    assert seen == set(range(8))


def test_max_time_width_cap_and_multiplicity():
    config = SpecAugmentConfig(
        num_freq_masks=0, max_time_ratio=0.5, max_time_width=3, time_mask_multiplicity=0.01, max_time_masks=4
    )
    lengths = torch.tensor([40, 150, 1000])
    assert config.max_time_widths(lengths).tolist() == [3, 3, 3]
    assert config.time_mask_counts(lengths).tolist() == [0, 1, 4]
    time, freq = spec_augment_masks(lengths, 10, config, torch.Generator().manual_seed(0))
    assert time.shape == (3, 1000) and freq.shape == (3, 10) and not freq.any()
    assert not time[0].any()  # a 40-frame utterance gets no mask at 1 per 100 frames
    assert time[2].sum() <= 4 * 3
    for b, n in enumerate(lengths.tolist()):
        assert not time[b, n:].any()


def test_same_generator_same_masks():
    x, lens = batch([60, 200, 33])
    aug = SpecAugment(SpecAugmentConfig(time_mask_multiplicity=0.02))
    a = aug(x, lens, torch.Generator().manual_seed(11))
    b = aug(x, lens, torch.Generator().manual_seed(11))
    c = aug(x, lens, torch.Generator().manual_seed(12))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert ((a == 0) & (x != 0)).any()  # the default mask value is 0 (the mean after CMVN)


def test_same_masks_on_device(device):
    x, lens = batch([60, 200])
    aug = SpecAugment()
    cpu = aug(x, lens, torch.Generator().manual_seed(5))
    there = aug(x.to(device), lens.to(device), torch.Generator().manual_seed(5))
    assert torch.equal(there.cpu(), cpu)


def test_bad_inputs():
    x, lens = batch([10, 20])
    aug = SpecAugment()
    g = torch.Generator()
    with pytest.raises(ShapeError):
        aug(x[0], lens, g)
    with pytest.raises(ShapeError):
        aug(x, torch.tensor([10, 21]), g)
    with pytest.raises(ShapeError):
        aug(x, torch.tensor([10.0, 20.0]), g)
    with pytest.raises(ConfigError, match="Generator"):
        aug(x, lens, None)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="exceeds"):
        SpecAugment(SpecAugmentConfig(max_freq_width=30))(x[:, :, :20], lens, g)


@pytest.mark.parametrize(
    "changes",
    [
        {"num_freq_masks": -1},
        {"max_freq_width": 2.5},
        {"num_time_masks": True},
        {"max_time_ratio": 1.5},
        {"max_time_ratio": float("nan")},
        {"max_time_width": -3},
        {"time_mask_multiplicity": -0.1},
        {"mask_value": float("inf")},
    ],
)
def test_config_validation(changes):
    with pytest.raises(ConfigError):
        SpecAugmentConfig(**changes)


def test_frequency_warp_moves_energy_along_the_bins():
    x = torch.zeros(3, 5, 40)
    x[:, :, 20] = 1.0  # one lit bin
    out = warp_frequency(x, torch.tensor([1.0, 0.5, 2.0]))
    assert torch.equal(out[0], x[0])  # a factor of 1 changes nothing
    assert out[1, 0, 39] == 0.5 and out[1, 0, :39].sum() == 0  # out[f] = x[f/2]: out[39] = x[19.5], half lit
    assert int(out[2, 0].argmax()) == 10 and out[2, 0, 10] == 1.0  # out[f] = x[2f]: bin 20 lands at bin 10
    ramp = torch.arange(40.0).expand(1, 2, 40)
    half = warp_frequency(ramp, torch.tensor([0.5]))
    assert torch.allclose(half[0, 0], torch.arange(40.0) * 0.5)  # linear interpolation between bins


def test_frequency_warp_is_seeded_and_off_by_default():
    x, lengths = batch([50, 30], bins=40)
    plain = SpecAugmentConfig(num_freq_masks=0, num_time_masks=0)
    assert torch.equal(SpecAugment(plain)(x, lengths, torch.Generator().manual_seed(1)), x)
    warped = SpecAugmentConfig(num_freq_masks=0, num_time_masks=0, freq_warp=0.2)
    a = SpecAugment(warped)(x, lengths, torch.Generator().manual_seed(1))
    b = SpecAugment(warped)(x, lengths, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert torch.equal(a[1, 30:], x[1, 30:])  # padded frames (zeros here) stay as they were
