"""The convolutional front of the CTC model: the streaming shortcut (`last_outputs`, only the outputs wanted,
one matrix product per layer for many windows) equals the Conv1d forward."""

from __future__ import annotations

import pytest
import torch

from gruasr.errors import ShapeError
from gruasr.models.ctc_model import Subsampling


def test_last_outputs_equal_the_forward_ones() -> None:
    torch.manual_seed(0)
    sub = Subsampling(20, 16).eval()
    # windows as streaming makes them (0, 4 or 8 frames of context + new frames) and odd lengths (a stream's end)
    lengths_and_wanted = [(4, 1), (8, 1), (12, 1), (16, 2), (18, 3), (13, 2), (1, 1), (40, 10), (9, 3), (16, 4)]
    windows = [(torch.randn(n, 20), m) for n, m in lengths_and_wanted]
    with torch.no_grad():
        got = sub.last_outputs(windows)
        for (window, m), out in zip(windows, got, strict=True):
            full = sub(window[None])[0]
            assert out.shape == (m, 16)
            torch.testing.assert_close(out, full[-m:], rtol=1e-5, atol=1e-6)
        alone = [sub.last_outputs([w])[0] for w in windows]  # one window at a time: the same rows
        for a, b in zip(alone, got, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        sub.conv2.weight.mul_(2.0)  # changed weights are seen (the cached matrices follow them)
        torch.testing.assert_close(sub.last_outputs(windows[:1])[0], sub(windows[0][0][None])[0, -1:])
    with pytest.raises(ShapeError, match="outputs"):
        sub.last_outputs([(torch.randn(8, 20), 3)])  # an 8-frame window has 2 outputs
