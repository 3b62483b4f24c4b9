"""FbankConfig.mel_floor: the floor before the log of the mel energies (0: Kaldi's FLT_EPSILON). Exact digital
zeros get log(mel_floor) instead of -15.9; frames above the floor are untouched; torch and the numpy front end
of the runtime agree. On the default model a floor of 1.0 takes errors on speech followed by exact zeros down,
but it makes the model output words on speech-free audio holding zeros, so the bundled models keep Kaldi's floor
(benchmarks/digital_silence.py; docs/streaming.md, "Digital silence")."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from gruasr.audio.io import AN4_RAW, load_audio
from gruasr.data.corpora.an4 import parse_transcription
from gruasr.errors import ConfigError
from gruasr.evaluation.metrics import ErrorCounts
from gruasr.features.config import FLT_EPSILON, FbankConfig, MfccConfig
from gruasr.features.fbank import Fbank, Mfcc
from gruasr.features.kaldi import NumpyFbank
from gruasr.recognizer import DecodeOptions, OfflineRecognizer
from gruasr.streaming.recognizer import bundled_streaming_model


def _speech_then_zeros(speech: np.ndarray) -> np.ndarray:
    return np.concatenate([speech, np.zeros(4000, np.float32)])


def test_exact_zeros_are_floored_and_speech_is_untouched(speech_8k: dict[str, np.ndarray]) -> None:
    audio = _speech_then_zeros(next(iter(speech_8k.values())))
    kaldi, floored = Fbank(FbankConfig()), Fbank(FbankConfig(mel_floor=1.0))
    a, b = kaldi(torch.from_numpy(audio)), floored(torch.from_numpy(audio))
    assert float(a.min()) == pytest.approx(math.log(FLT_EPSILON))  # the zeros, with Kaldi's floor
    assert float(b.min()) == 0.0 and bool((b[-20:] == 0).all())  # log(1.0)
    above = a > 0
    assert bool(above[:-60].float().mean() > 0.5) and torch.equal(a[above], b[above])
    np.testing.assert_allclose(NumpyFbank(FbankConfig(mel_floor=1.0))(audio), b.numpy(), atol=1e-3)
    mfcc = Mfcc(MfccConfig(fbank=FbankConfig(mel_floor=1.0)))(torch.from_numpy(audio))
    assert torch.isfinite(mfcc).all() and not torch.equal(mfcc, Mfcc(MfccConfig())(torch.from_numpy(audio)))


def test_mel_floor_is_checked_and_old_configs_keep_kaldis() -> None:
    with pytest.raises(ConfigError, match="mel_floor"):
        FbankConfig(mel_floor=-1.0)
    old = {k: v for k, v in FbankConfig().to_dict().items() if k != "mel_floor"}  # a model saved before the key
    assert FbankConfig.from_dict(old).log_floor == FLT_EPSILON
    assert FbankConfig.from_dict(FbankConfig(mel_floor=1.0).to_dict()).log_floor == 1.0


def test_a_floor_helps_the_default_model_on_speech_followed_by_zeros(data_dir: Path) -> None:
    """The default model (greedy) on 40 AN4 test utterances, each followed by 0.5 s of exact zeros: fewer errors
    with a floor of 1.0 than with Kaldi's (33 against 38 of 253 words when written); both bundled models keep
    Kaldi's floor (on speech-free dev audio the floor made the default model output words)."""
    torch.set_num_threads(1)
    rec = OfflineRecognizer.load(options=DecodeOptions("greedy"))
    assert rec.bundle.features.log_floor == FLT_EPSILON
    assert OfflineRecognizer.load(bundled_streaming_model()).bundle.features.log_floor == FLT_EPSILON
    folder = data_dir / "an4" / "etc"
    texts, _ = parse_transcription(folder / "an4_test.transcription")
    paths = sorted((data_dir / "an4" / "wav" / "an4test_clstk").glob("*/*.raw"))[::3][:40]
    audios = [_speech_then_zeros(load_audio(p, raw=AN4_RAW, sample_rate=8000).channel(0)) for p in paths]
    errors = {}
    for floor in (1.0, 0.0):
        rec.fbank = Fbank(dataclasses.replace(rec.bundle.features, mel_floor=floor))
        counts = ErrorCounts()
        for path, audio in zip(paths, audios, strict=True):
            counts.add(texts[path.stem], rec.transcribe(audio, 8000).text)
        errors[floor] = counts.errors
    assert errors[1.0] < errors[0.0], errors
