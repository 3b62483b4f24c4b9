"""Per-leg mean normalization (StreamingRecognizer.leg_cmvn): causal, the same for any chunking, shrunk towards
the global mean by its prior, and off by default."""

from __future__ import annotations

import pytest
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


def test_cmvn_with_a_leg_prior_equals_the_streamed_normalization() -> None:
    """GlobalCMVN(leg_prior=P) on a whole utterance (training, offline) = the global CMVN then the stream's
    running leg mean over any chunking; on a padded batch each row is its own leg; saved and read back."""
    from gruasr.errors import ConfigError, ShapeError
    from gruasr.features.cmvn import GlobalCMVN

    cmvn = GlobalCMVN(torch.linspace(5.0, 9.0, 80), torch.linspace(1.0, 3.0, 80), leg_prior=30)
    stream = StreamingRecognizer.load().stream()
    frames = torch.randn(120, 80) * 3.0 + 7.0
    streamed = _normalized(stream, cmvn.normalize(frames), [13, 0, 50, 57], 30)
    assert torch.allclose(cmvn(frames), streamed, atol=1e-5)
    assert not torch.allclose(cmvn(frames), cmvn.normalize(frames), atol=1e-2)  # the leg part does something
    batch = torch.stack([frames, torch.cat([frames[:70], torch.zeros(50, 80)])])  # second row: 70 frames + padding
    out = cmvn(batch)
    assert torch.allclose(out[0], cmvn(frames), atol=1e-5) and torch.allclose(out[1, :70], cmvn(frames[:70]), atol=1e-5)
    again = GlobalCMVN.from_dict(cmvn.to_dict())
    assert again.leg_prior == 30 and torch.allclose(again(frames), cmvn(frames))
    assert "leg_prior" not in cmvn.with_leg_prior(0).to_dict()  # files without it read as before (prior 0)
    for bad in (-1, 2.5, True):
        with pytest.raises(ConfigError, match="leg_prior"):
            GlobalCMVN.from_dict({**cmvn.to_dict(), "leg_prior": bad})
    with pytest.raises(ShapeError, match="leg_prior"):
        cmvn(frames[0])  # one frame without a time axis


def test_a_model_trained_with_leg_normalization_streams_as_it_decodes_offline(tmp_path) -> None:
    """The recipe's cmvn.leg_prior is saved with the model; the offline recognizer normalizes each utterance from
    its start and the streaming one carries the same sums, so a unidirectional model streams what it decodes
    offline; ONNX export refuses the model (its graphs have no leg state) instead of dropping the normalization."""
    import numpy as np

    from gruasr.bundle import ModelBundle, load_bundle, save_model
    from gruasr.data.tokens import TokenTable
    from gruasr.errors import ConfigError
    from gruasr.export.onnx import export_onnx
    from gruasr.features.cmvn import GlobalCMVN
    from gruasr.features.config import FbankConfig
    from gruasr.models.ctc_model import CTCModel, ModelConfig
    from gruasr.recognizer import DecodeOptions, OfflineRecognizer
    from gruasr.streaming import EndpointConfig

    torch.manual_seed(0)
    model = CTCModel(
        ModelConfig(input_dim=80, hidden_size=24, num_layers=2, conv_channels=16, bidirectional=False)
    ).eval()
    cmvn = GlobalCMVN(torch.full((80,), 9.0), torch.full((80,), 3.0), leg_prior=50)
    save_model(tmp_path / "m", model, FbankConfig(), cmvn, TokenTable())
    bundle = load_bundle(tmp_path / "m")
    assert bundle.cmvn.leg_prior == 50
    rec = StreamingRecognizer(OfflineRecognizer(bundle, options=DecodeOptions("greedy")), EndpointConfig(enabled=False))
    audio = np.random.default_rng(0).normal(0, 0.1, 8000 * 2).astype(np.float32)
    heard = rec.offline.end_padded(audio)  # the stream hears END_SILENCE after its input
    offline = rec.offline.log_probs(heard)
    plain = OfflineRecognizer(ModelBundle(bundle.model, bundle.features, cmvn.with_leg_prior(0), bundle.tokens, {}))
    assert float((plain.log_probs(heard) - offline).abs().max()) > 1e-3  # the normalization reaches the model
    stream = rec.stream(record=True)
    for start in range(0, audio.shape[0], 1234):
        stream.accept(audio[start : start + 1234])
    stream.finish()
    assert stream.recorded is not None
    assert float((stream.recorded[0][2] - offline).abs().max()) < 1e-4
    with pytest.raises(ConfigError, match="leg_prior"):
        export_onnx(tmp_path / "m", tmp_path / "onnx")
