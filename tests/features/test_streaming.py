"""StreamingFbank gives exactly (bit for bit) the offline frames whatever the chunk sizes, on real speech."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gruasr.errors import ConfigError
from gruasr.features import Fbank, FbankConfig, Mfcc, MfccConfig, StreamingFbank

CONFIGS = {
    "8k-snip": FbankConfig(),
    "8k-nosnip": FbankConfig(snip_edges=False),
    "8k-nosnip-odd-frame-energy": FbankConfig(snip_edges=False, frame_length_ms=25.125, use_energy=True),
}


def stream(features, x, sizes):
    """Feed x in chunks of the given sizes (cycled), check the buffer stays bounded, return all frames."""
    s = StreamingFbank(features)
    cfg = s.config
    bound = cfg.window_size + (0 if cfg.snip_edges else cfg.window_size + cfg.window_shift)
    out, i, k = [], 0, 0
    while i < len(x):
        n = sizes[k % len(sizes)]
        out.append(s.accept(x[i : i + n]))
        i, k = i + n, k + 1
        assert s.buffered_samples <= bound + n, (s.buffered_samples, bound, n)
    out.append(s.finalize())
    assert s.num_samples == len(x) and s.num_frames == sum(o.shape[0] for o in out)
    return torch.cat(out)


def chunkings(rate):
    rng = np.random.default_rng(7)
    return {
        "1-sample": [1],
        "10ms": [rate // 100],
        "2s": [2 * rate],
        "random": [int(v) for v in rng.integers(0, 3 * rate // 10, 200)],  # 0 .. 300 ms, zero-size chunks too
    }


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("chunking", ["1-sample", "10ms", "2s", "random"])
def test_streaming_equals_offline_fsdd(name, chunking, speech_8k):
    fbank = Fbank(CONFIGS[name])
    sizes = chunkings(8000)[chunking]
    files = list(speech_8k.items())[:2] if chunking == "1-sample" else list(speech_8k.items())
    for file, x in files:
        offline = fbank(x)
        online = stream(fbank, x, sizes)
        assert online.shape == offline.shape, file
        assert torch.equal(online, offline), f"{file}: max diff {(online - offline).abs().max()}"


@pytest.mark.parametrize("snip_edges", [True, False])
def test_streaming_equals_offline_an4_16k(snip_edges, speech_16k):
    fbank = Fbank(FbankConfig(sample_rate=16000, snip_edges=snip_edges))
    for chunking, sizes in chunkings(16000).items():
        for file, x in list(speech_16k.items())[: 1 if chunking == "1-sample" else 4]:
            assert torch.equal(stream(fbank, x, sizes), fbank(x)), (file, chunking)


def test_streaming_mfcc_equals_offline(speech_8k):
    mfcc = Mfcc(MfccConfig(fbank=FbankConfig(num_mel_bins=23, snip_edges=False)))
    for x in list(speech_8k.values())[:4]:
        assert torch.equal(stream(mfcc, x, [123, 7, 401]), mfcc(x))


@pytest.mark.parametrize("snip_edges", [True, False])
def test_streaming_short_signals(snip_edges, speech_8k):
    """Every length from 0 to 3 frames (where reflection may wrap both ends) matches offline."""
    fbank = Fbank(FbankConfig(snip_edges=snip_edges))
    x = next(iter(speech_8k.values()))[1000:]
    for n in range(0, 3 * fbank.config.window_size, 3):
        assert torch.equal(stream(fbank, x[:n], [1, 17, 60]), fbank(x[:n])), n


@settings(max_examples=25, deadline=None)
@given(
    sizes=st.lists(st.integers(min_value=0, max_value=2500), min_size=1, max_size=30),
    snip_edges=st.booleans(),
)
def test_streaming_any_chunking(sizes, snip_edges, speech_8k):
    if not any(sizes):
        sizes = [*sizes, 1]
    fbank = Fbank(FbankConfig(snip_edges=snip_edges))
    x = list(speech_8k.values())[3]
    assert torch.equal(stream(fbank, x, sizes), fbank(x))


def test_frames_come_out_as_soon_as_complete(speech_8k):
    """snip_edges: a frame appears with its last sample; nothing waits for finalize()."""
    x = next(iter(speech_8k.values()))
    s = StreamingFbank(FbankConfig())
    assert s.accept(x[:199]).shape[0] == 0
    assert s.accept(x[199:200]).shape[0] == 1  # samples 0..199 make frame 0
    assert s.accept(x[200:279]).shape[0] == 0
    assert s.accept(x[279:280]).shape[0] == 1  # frame 1 ends at sample 279
    assert s.finalize().shape == (0, 80)


def test_lifecycle_errors_and_reset(speech_8k):
    x = next(iter(speech_8k.values()))
    s = StreamingFbank(Fbank())
    first = torch.cat([s.accept(x), s.finalize()])
    assert s.finished and s.finalize().shape == (0, 80)  # a second finalize adds nothing
    with pytest.raises(ConfigError, match="finalize"):
        s.accept(x[:10])
    s.reset()
    assert s.num_samples == 0 and s.num_frames == 0
    assert torch.equal(torch.cat([s.accept(x), s.flush()]), first)
    with pytest.raises(ConfigError, match="Generator"):
        StreamingFbank(FbankConfig(dither=1.0))


def test_frames_of_many_streams_computed_in_one_call(speech_8k):
    """cut() + one compute_frames over the frames of several streams (what batch dispatch does) gives each
    stream's offline features bit for bit: a frame's features depend on that frame alone."""
    fbank = Fbank()
    signals = list(speech_8k.values())[:3]
    streams = [StreamingFbank(fbank) for _ in signals]
    cut: list[list[torch.Tensor]] = [[] for _ in signals]
    for start in range(0, max(len(x) for x in signals), 700):  # 87.5 ms chunks, not on the frame grid
        for i, (s, x) in enumerate(zip(streams, signals, strict=True)):
            if start < len(x):
                cut[i].append(s.cut(x[start : start + 700]))
    for i, s in enumerate(streams):
        cut[i].append(s.cut_final())
    raw = [torch.cat(c) for c in cut]
    assert all(r.shape[1] == FbankConfig().window_size for r in raw)
    together = fbank.compute_frames(torch.cat(raw))
    for part, x in zip(together.split([r.shape[0] for r in raw]), signals, strict=True):
        assert torch.equal(part, fbank(x))
