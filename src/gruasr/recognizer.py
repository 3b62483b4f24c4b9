"""The offline recognizer (torch): audio in, text with word times and confidences out.

    from gruasr.recognizer import OfflineRecognizer
    asr = OfflineRecognizer.load()          # the bundled telephone model (or a model folder), device="cpu"
    for result in asr.transcribe_file("call.wav"):   # one result per channel (call leg)
        print(result.channel, result.leg, result.hypothesis.text)

Audio is cut into utterances by voice activity (WebRTC VAD, the same endpointer rules as live streams,
gruasr.vad), each at most 30 s; utterances in which the VAD heard no speech are skipped, so silence, hold
music between turns and a muted leg cost nothing and produce nothing. Utterances are decoded one after
another: memory stays bounded whatever the length of the call. Word times are on the recording's clock.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from gruasr.bundle import PRETRAINED, DecodeOptions, ModelBundle, bundled, load_bundle, model_decoding
from gruasr.decoding.beam import Lexicon
from gruasr.decoding.hypothesis import Hypothesis
from gruasr.decoding.lm import NGramLM
from gruasr.features import Fbank
from gruasr.integrity import TrustedKey
from gruasr.transcription import OFFLINE_VAD, Rescoring, Result, Transcriber, leg_name
from gruasr.vad import EndpointConfig

__all__ = [
    "BUNDLED", "OFFLINE_VAD", "DecodeOptions", "OfflineRecognizer", "Result", "leg_name", "load_model",
    "model_decoding",
]  # fmt: skip

#: the bundled telephone model's folder
BUNDLED = PRETRAINED / "telephone"


class OfflineRecognizer(Transcriber):
    """Whole recordings in, transcripts out: a model with its features, CMVN, tokens and (optionally) language
    model and lexicon. Make one with `OfflineRecognizer.load(path, device=...)`. The filterbank and CMVN live on
    the model's device; decoding runs on the CPU."""

    def __init__(
        self,
        bundle: ModelBundle,
        lm: NGramLM | None = None,
        lexicon: Lexicon | None = None,
        options: DecodeOptions | None = None,
        vad: EndpointConfig | None = None,
    ) -> None:
        self.bundle = bundle
        self.model = bundle.model.eval()
        self.model.encoder.use_inference_backend()
        self.fbank = Fbank(bundle.features).to(bundle.device)
        bundle.cmvn.to(bundle.device)
        self.lm = lm
        self.lexicon = lexicon
        self.options = options or DecodeOptions()
        #: how audio is cut into utterances (WebRTC VAD; at most 30 s each); stretches without speech are skipped
        self.vad = vad or OFFLINE_VAD

    @classmethod
    def load(
        cls,
        path: str | os.PathLike[str] | None = None,
        device: str | torch.device = "cpu",
        lm: str | os.PathLike[str] | None = None,
        lexicon: str | os.PathLike[str] | None = None,
        options: DecodeOptions | None = None,
        vad: EndpointConfig | None = None,
        *,
        trusted_keys: Sequence[TrustedKey] | None = None,
        rescoring: bool | Rescoring = True,
    ) -> OfflineRecognizer:
        """A recognizer from a model folder (None: the bundled telephone model), its model, filterbank and CMVN
        on `device`. The folder's lm.arpa and lexicon.txt are used unless `lm` / `lexicon` name others;
        options.use_lm=False decodes without them. Without `options`, the model's own decoding settings apply
        (model.json "decoding": beam size, LM weight and word bonus tuned on dev, and whether the LM helps),
        else beam search with the LM. The folder's files are checked against its manifest; with `trusted_keys`
        (PEM public key files or Ed25519PublicKey objects) it must also be signed by one of them (gruasr.bundle).
        `rescoring`: True takes the second model the folder names (model.json "rescoring"; the bundled default
        model's is the bundled streaming model, gruasr.transcription.Rescoring), False none, or a Rescoring."""
        folder = Path(path) if path is not None else bundled("telephone")
        bundle = load_bundle(folder, device, trusted_keys=trusted_keys)
        language_model, words = bundle.language_model(lm, lexicon)
        recognizer = cls(bundle, language_model, words, options or bundle.decoding(), vad)
        return recognizer.with_rescoring(
            rescoring, lambda second: cls.load(second, device, trusted_keys=trusted_keys, rescoring=False)
        )

    @property
    def sample_rate(self) -> int:
        return self.bundle.sample_rate

    @property
    def bidirectional(self) -> bool:
        return bool(self.model.config.bidirectional)

    @property
    def device(self) -> torch.device:
        """Where the model, filterbank and CMVN are."""
        return self.bundle.device

    def log_probs(self, samples: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Mono float audio (n,) at the model's rate -> CTC log-probabilities (T', V) on the model's device,
        T' = ceil(T / 4) for T feature frames."""
        with torch.inference_mode():
            if isinstance(samples, torch.Tensor):
                samples = samples.to(self.device, torch.float32)
            feats = self.bundle.cmvn(self.fbank(samples))  # (T, F)
            log_probs, _, _ = self.model(feats[None])  # (1, T', V)
        return log_probs[0]

    def decode(self, log_probs: torch.Tensor) -> Hypothesis:
        """CTC log-probabilities (T', V), any device -> the best hypothesis (word times in seconds from the
        first frame), by the options' method."""
        bundle = self.bundle
        return self.options.decode(log_probs.cpu(), bundle.tokens, bundle.step_seconds, self.lm, self.lexicon)


def load_model(
    path: str | os.PathLike[str] | None = None,
    lm: str | os.PathLike[str] | None = None,
    lexicon: str | os.PathLike[str] | None = None,
    options: DecodeOptions | None = None,
    device: str | torch.device = "cpu",
    *,
    trusted_keys: Sequence[TrustedKey] | None = None,
) -> OfflineRecognizer:
    """The same as `OfflineRecognizer.load(path, device, lm, lexicon, options, trusted_keys=...)`: a short name
    kept for scripts."""
    return OfflineRecognizer.load(path, device, lm, lexicon, options, trusted_keys=trusted_keys)
