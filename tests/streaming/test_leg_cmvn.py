"""Per-leg mean normalization (StreamingRecognizer.leg_cmvn): causal, the same for any chunking, shrunk towards
the global mean by its prior, and off by default."""

from __future__ import annotations

import torch

from gruasr.streaming import StreamingRecognizer


def _normalized(stream, frames: torch.Tensor, splits: list[int], prior: int) -> torch.Tensor:
    out, start = [], 0
    for size in splits:
        out.append(stream._leg_normalize(frames[start : start + size], prior))
        start += size
    return torch.cat(out)


def test_leg_normalization_is_causal_chunking_free_and_shrunk() -> None:
    recognizer = StreamingRecognizer.load()
    assert recognizer.leg_cmvn == 0  # off unless asked for
    frames = torch.randn(50, 80) + 2.0  # a leg whose mean sits 2 above the global one
    whole = _normalized(recognizer.stream(), frames, [50], 10)
    pieces = _normalized(recognizer.stream(), frames, [1, 7, 0, 20, 22], 10)
    assert torch.allclose(whole, pieces, atol=1e-5)  # any chunking, the same frames
    early = _normalized(recognizer.stream(), frames[:20], [20], 10)
    assert torch.allclose(whole[:20], early, atol=1e-5)  # frame t depends on frames 1..t only
    t = torch.arange(1, 51, dtype=torch.float32)[:, None]
    expected = frames - frames.cumsum(0) / (10 + t)
    assert torch.allclose(whole, expected, atol=1e-5)
    assert abs(float(whole[-10:].mean())) < abs(float(frames[-10:].mean()))  # the leg's offset mostly removed
