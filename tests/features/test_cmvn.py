"""Global CMVN: statistics equal numpy's on real features, the JSON round trip, and clear errors for bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gruasr.errors import ConfigError, ShapeError
from gruasr.features import CmvnStats, Fbank, FbankConfig, GlobalCMVN, Mfcc, compute_cmvn


@pytest.fixture(scope="module")
def feats(speech_8k):
    fbank = Fbank(FbankConfig(use_energy=True))
    return [fbank(x) for x in speech_8k.values()]


def test_stats_equal_numpy(feats):
    stats = CmvnStats(81)
    for f in feats:
        stats.update(f)
    stats.update(feats[0][:0])  # an empty matrix changes nothing
    allf = np.concatenate([f.double().numpy() for f in feats])
    assert stats.count == allf.shape[0]
    np.testing.assert_allclose(stats.mean, allf.mean(axis=0), rtol=0, atol=1e-10)
    np.testing.assert_allclose(np.sqrt(stats.variance), allf.std(axis=0), rtol=1e-10)
    cmvn = stats.to_cmvn()
    normed = cmvn(torch.from_numpy(allf)).numpy()
    np.testing.assert_allclose(normed.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(normed.std(axis=0), 1, atol=1e-5)


def test_merge_equals_one_pass(feats):
    one, a, b = CmvnStats(81), CmvnStats(81), CmvnStats(81)
    for i, f in enumerate(feats):
        one.update(f)
        (a if i % 3 else b).update(f.numpy())
    a.merge(b)
    assert a.count == one.count
    np.testing.assert_allclose(a.mean, one.mean, rtol=1e-12)
    np.testing.assert_allclose(a.variance, one.variance, rtol=1e-10)


def test_large_offset_keeps_precision():
    """Welford: a large common offset (where sum(x^2) - n mean^2 would cancel in float32) loses nothing."""
    rng = np.random.default_rng(0)
    x = 1e6 + rng.standard_normal((20000, 3))
    stats = CmvnStats(3)
    for part in np.array_split(x, 7):
        stats.update(part)
    np.testing.assert_allclose(stats.variance, x.var(axis=0), rtol=1e-9)


def test_variance_floor_and_shape_checks():
    stats = CmvnStats(2)
    stats.update(np.array([[1.0, 5.0], [3.0, 5.0]]))  # second dimension constant
    cmvn = stats.to_cmvn(variance_floor=1e-4)
    assert cmvn.std.tolist() == pytest.approx([1.0, 1e-2])
    assert torch.isfinite(cmvn(torch.tensor([[2.0, 5.0]]))).all()
    with pytest.raises(ShapeError):
        stats.update(np.zeros((4, 3)))
    with pytest.raises(ShapeError):
        stats.update(np.array([[np.nan, 1.0]]))
    with pytest.raises(ShapeError):
        cmvn(torch.zeros(2, 3))
    with pytest.raises(ConfigError, match="empty"):
        CmvnStats(2).to_cmvn()


def test_applies_over_batches_and_dtypes(feats):
    cmvn = GlobalCMVN(torch.arange(81.0), torch.full((81,), 2.0))
    batch = torch.stack([feats[0][:20], feats[1][:20]])  # (B, T, F)
    out = cmvn(batch.double())
    assert out.dtype == torch.float64 and out.shape == batch.shape
    torch.testing.assert_close(out, (batch.double() - torch.arange(81.0).double()) / 2)


def test_json_round_trip(tmp_path, feats):
    stats = CmvnStats(81)
    for f in feats:
        stats.update(f)
    cmvn = stats.to_cmvn()
    cmvn.feature_config = {"kind": "fbank", "config": FbankConfig(use_energy=True).to_dict()}
    path = cmvn.save(tmp_path / "model" / "cmvn.json")
    back = GlobalCMVN.load(path)
    assert torch.equal(back.mean, cmvn.mean) and torch.equal(back.std, cmvn.std)
    assert back.count == stats.count and back.feature_config == cmvn.feature_config
    assert FbankConfig.from_dict(back.feature_config["config"]) == FbankConfig(use_energy=True)
    x = feats[2]
    assert torch.equal(back(x), cmvn(x))
    # the state dict carries the statistics too (for checkpoints)
    fresh = GlobalCMVN(torch.zeros(81), torch.ones(81))
    fresh.load_state_dict(cmvn.state_dict())
    assert torch.equal(fresh(x), cmvn(x))


def _good():
    return GlobalCMVN([0.5, -1.0, 2.0], [1.0, 2.0, 0.5], count=10).to_dict()


BAD = {
    "not JSON": ("{mean: [1,", "not valid JSON"),
    "a list": ([1, 2], "expected a JSON object"),
    "wrong format": ({**_good(), "format": "kaldi"}, "not a CMVN file"),
    "wrong version": ({**_good(), "version": 9}, "version"),
    "unknown key": ({**_good(), "means": [1]}, "unknown keys"),
    "bad dim": ({**_good(), "dim": 0}, "dim"),
    "mean too short": ({**_good(), "mean": [1.0, 2.0]}, "mean must be a list of 3"),
    "std not numbers": ({**_good(), "std": [1.0, "2", 3.0]}, "std holds"),
    "NaN": ({**_good(), "mean": [float("nan"), 1.0, 2.0]}, "mean holds"),
    "zero std": ({**_good(), "std": [1.0, 0.0, 1.0]}, "std must be positive"),
    "negative count": ({**_good(), "count": -1}, "count"),
    "bad floor": ({**_good(), "variance_floor": 0}, "variance_floor"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_files_give_clear_errors(case, tmp_path):
    content, message = BAD[case]
    path = tmp_path / "cmvn.json"
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ConfigError, match=message) as err:
        GlobalCMVN.load(path)
    assert "cmvn.json" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        GlobalCMVN.load(tmp_path / "nope.json")


def test_compute_cmvn_from_manifest(tmp_path, fsdd_paths, an4_paths):
    """A manifest mixing FSDD WAV (8 kHz) and AN4 raw (16 kHz, resampled): compute_cmvn equals the statistics
    of the same features computed by hand."""
    from gruasr.audio.io import AN4_RAW, load_audio

    lines = [{"id": p.stem, "audio": str(p), "text": "x"} for p in fsdd_paths[:5]]
    lines += [
        {"id": p.stem, "audio": str(p), "text": "x", "encoding": "s16be", "sample_rate": 16000} for p in an4_paths[:2]
    ]
    manifest = tmp_path / "train.jsonl"
    manifest.write_text("".join(json.dumps(line) + "\n" for line in lines))
    fbank = Fbank()
    audio = [load_audio(p).samples[0] for p in fsdd_paths[:5]]
    audio += [load_audio(p, raw=AN4_RAW, sample_rate=8000).samples[0] for p in an4_paths[:2]]
    allf = np.concatenate([fbank(x).double().numpy() for x in audio])

    cmvn = compute_cmvn(manifest, fbank, 8000, progress=False)
    assert cmvn.count == allf.shape[0]
    np.testing.assert_allclose(cmvn.mean.double().numpy(), allf.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(cmvn.std.double().numpy(), allf.std(axis=0), rtol=1e-6)
    assert cmvn.feature_config == {"kind": "fbank", "config": FbankConfig().to_dict()}

    first3 = compute_cmvn(manifest, fbank, 8000, max_utterances=3, progress=True)
    assert first3.count == sum(fbank(x).shape[0] for x in audio[:3])

    mfcc = compute_cmvn(manifest, Mfcc(), 8000, max_utterances=2, progress=False)
    assert mfcc.dim == 13 and mfcc.feature_config["kind"] == "mfcc"
    with pytest.raises(ConfigError, match="sample_rate"):
        compute_cmvn(manifest, fbank, 16000, progress=False)
    with pytest.raises(ConfigError, match="max_utterances"):
        compute_cmvn(manifest, fbank, 8000, max_utterances=0, progress=False)
