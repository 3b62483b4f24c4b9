"""Offline recognition on ONNX Runtime: `OnnxRecognizer`, the torch-free twin of gruasr.recognizer's
OfflineRecognizer (same cutting, decoding and results; gruasr.transcription holds what they share).

    from gruasr.runtime import OnnxRecognizer
    asr = OnnxRecognizer.load("exports/telephone")      # a folder written by `gruasr model export --onnx`
    for result in asr.transcribe_file("call.wav"):
        print(result.leg, result.text)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gruasr.decoding.beam import Lexicon
from gruasr.decoding.hypothesis import Hypothesis
from gruasr.decoding.lm import NGramLM
from gruasr.errors import ShapeError
from gruasr.integrity import TrustedKey
from gruasr.runtime.model import OnnxModel
from gruasr.transcription import OFFLINE_VAD, DecodeOptions, Rescoring, Transcriber
from gruasr.vad import EndpointConfig


class OnnxRecognizer(Transcriber):
    """Whole recordings in, transcripts out, on ONNX Runtime (see the module docstring). `bundle` is the
    OnnxModel (named as OfflineRecognizer's, so callers that read `.bundle.decoding()` or `.bundle.path` work
    with either engine)."""

    engine = "onnx"

    def __init__(
        self,
        model: OnnxModel,
        lm: NGramLM | None = None,
        lexicon: Lexicon | None = None,
        options: DecodeOptions | None = None,
        vad: EndpointConfig | None = None,
    ) -> None:
        self.bundle = model
        self.lm = lm
        self.lexicon = lexicon
        self.options = options or DecodeOptions()
        self.vad = vad or OFFLINE_VAD

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str],
        lm: str | os.PathLike[str] | None = None,
        lexicon: str | os.PathLike[str] | None = None,
        options: DecodeOptions | None = None,
        vad: EndpointConfig | None = None,
        *,
        trusted_keys: Sequence[TrustedKey] | None = None,
        threads: int = 1,
        rescoring: bool | Rescoring = True,
    ) -> OnnxRecognizer:
        """A recognizer from an exported folder (checked against its manifest; signed by one of `trusted_keys`
        when given), with its LM and lexicon unless `lm` / `lexicon` name others, and its recommended decoding
        unless `options` say otherwise. `rescoring` as OfflineRecognizer.load's: True takes the second model the
        export names, which must be exported beside it (e.g. build/onnx/telephone-streaming beside
        build/onnx/telephone)."""
        model = OnnxModel.load(Path(path), trusted_keys=trusted_keys, threads=threads)
        language_model, words = model.language_model(lm, lexicon)
        recognizer = cls(model, language_model, words, options or model.decoding(), vad)
        return recognizer.with_rescoring(
            rescoring, lambda second: cls.load(second, trusted_keys=trusted_keys, threads=threads, rescoring=False)
        )

    @property
    def sample_rate(self) -> int:
        return self.bundle.sample_rate

    @property
    def bidirectional(self) -> bool:
        return self.bundle.bidirectional

    def log_probs(self, samples: np.ndarray) -> np.ndarray:
        """Mono float audio (n,) at the model's rate -> CTC log-probabilities (T', V) float32 (numpy)."""
        samples = np.asarray(samples, dtype=np.float32)
        if samples.ndim != 1:
            raise ShapeError(f"expected mono audio (n,), got shape {samples.shape}")
        fbank = self.bundle.fbank(samples)
        if fbank.shape[0] == 0:
            return np.zeros((0, len(self.bundle.tokens)), dtype=np.float32)
        return self.bundle.log_probs(fbank)

    def decode(self, log_probs: np.ndarray) -> Hypothesis:
        """CTC log-probabilities (T', V) -> the best hypothesis, by the options' method (as OfflineRecognizer)."""
        log_probs = np.asarray(log_probs, dtype=np.float32)
        bundle = self.bundle
        return self.options.decode(log_probs, bundle.tokens, bundle.step_seconds, self.lm, self.lexicon)
