"""The offline recognizer: audio in, text with word times and confidences out.

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
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from gruasr.audio.io import RawFormat, audio_info, load_audio
from gruasr.audio.resample import resample
from gruasr.bundle import PRETRAINED, DecodeOptions, ModelBundle, bundled, load_bundle, model_decoding
from gruasr.decoding.beam import Lexicon, prefix_beam_search
from gruasr.decoding.greedy import greedy_decode
from gruasr.decoding.hypothesis import Hypothesis, Word
from gruasr.decoding.lm import NGramLM
from gruasr.errors import ShapeError
from gruasr.features import Fbank
from gruasr.integrity import TrustedKey
from gruasr.vad import EndpointConfig, Segmenter, speech_segments

__all__ = ["BUNDLED", "DecodeOptions", "OfflineRecognizer", "Result", "leg_name", "load_model", "model_decoding"]

#: the bundled telephone model's folder
BUNDLED = PRETRAINED / "telephone"
#: offline cutting: the streaming endpointer's rules with the least aggressive VAD mode, utterances of up to 30 s.
#: Mode 2 (the live default) misses quiet talkers: 3 of the 300 FSDD test digits of its quietest speaker were
#: skipped as unvoiced; mode 0 keeps them all. The models themselves emit nothing for non-speech (their recipes
#: train on it), so a permissive gate costs little: 0.23 words per minute of generated non-speech, measured.
OFFLINE_VAD = EndpointConfig(vad_mode=0, max_utterance=30.0)


def leg_name(channel: int) -> str:
    """The label of a call leg: channel 0 is leg "A", 1 is "B", ... (results and events carry both)."""
    return chr(ord("A") + channel) if 0 <= channel < 26 else f"C{channel}"


@dataclass(frozen=True)
class Result:
    """One channel's transcript. `channel` is the channel's index in the file (0 for mono); `leg` its call-leg
    label ("A", "B", ...) when the file has several channels, else None: the same fields as a streaming Event
    and the CLI's JSON."""

    hypothesis: Hypothesis
    channel: int
    duration: float  # seconds of audio in the channel
    leg: str | None = None

    @property
    def text(self) -> str:
        return self.hypothesis.text

    def to_dict(self) -> dict[str, object]:
        """{"channel", "leg" (when labelled), "text", "words": [{"word", "start", "end", "conf"}]}."""
        out: dict[str, object] = {"channel": self.channel}
        if self.leg is not None:
            out["leg"] = self.leg
        return {**out, **self.hypothesis.to_dict()}


class OfflineRecognizer:
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
    ) -> OfflineRecognizer:
        """A recognizer from a model folder (None: the bundled telephone model), its model, filterbank and CMVN
        on `device`. The folder's lm.arpa and lexicon.txt are used unless `lm` / `lexicon` name others;
        options.use_lm=False decodes without them. Without `options`, the model's own decoding settings apply
        (model.json "decoding": beam size, LM weight and word bonus tuned on dev, and whether the LM helps),
        else beam search with the LM. The folder's files are checked against its manifest; with `trusted_keys`
        (PEM public key files or Ed25519PublicKey objects) it must also be signed by one of them (gruasr.bundle)."""
        folder = Path(path) if path is not None else bundled("telephone")
        bundle = load_bundle(folder, device, trusted_keys=trusted_keys)
        language_model, words = bundle.language_model(lm, lexicon)
        return cls(bundle, language_model, words, options or bundle.decoding(), vad)

    @property
    def sample_rate(self) -> int:
        return self.bundle.sample_rate

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
        log_probs = log_probs.cpu()
        step = self.bundle.step_seconds
        if self.options.method == "greedy":
            return greedy_decode(log_probs, self.bundle.tokens, step)
        lm = self.lm if self.options.use_lm else None
        lexicon = self.lexicon if self.options.use_lm else None
        return prefix_beam_search(log_probs, self.bundle.tokens, step, self.options.beam, lm, lexicon)

    def transcribe(self, samples: np.ndarray, sample_rate: int) -> Hypothesis:
        """Recognize mono float audio (n,) at any rate: the utterances the VAD finds are decoded one by one
        (stretches without speech are skipped); word times are on the input's clock."""
        audio = np.asarray(samples, dtype=np.float32)
        if audio.ndim != 1:
            raise ShapeError(f"transcribe expects mono audio (n,), got shape {audio.shape}")
        if sample_rate != self.sample_rate:
            audio = resample(audio, sample_rate, self.sample_rate)
        words: list[Word] = []
        score = 0.0
        for start, end in speech_segments(audio, self.sample_rate, self.vad):
            hyp = self._decode_segment(audio[start:end], start)
            words += hyp.words
            score += hyp.score
        return Hypothesis(" ".join(w.word for w in words), tuple(words), score)

    def _decode_segment(self, samples: np.ndarray, start: int) -> Hypothesis:
        """One utterance starting at sample `start` of its channel; word times shifted to the channel's clock."""
        if len(samples) < int(0.03 * self.sample_rate):  # shorter than one frame: nothing to hear
            return Hypothesis("", ())
        return self.decode(self.log_probs(samples)).shifted(start / self.sample_rate)

    def transcribe_file(self, path: str | os.PathLike[str], raw: RawFormat | None = None) -> list[Result]:
        """Recognize every channel of a file (any format gruasr.audio reads, any rate); one Result each.

        The file is read in blocks of `vad.max_utterance` seconds; each channel's VAD cuts it into utterances
        (gruasr.vad.Segmenter), the voiced ones are decoded as they end, and only the open utterance is kept:
        memory stays bounded whatever the length of the call."""
        info = audio_info(path, raw)
        rate, block = self.sample_rate, max(1, int(self.vad.max_utterance * info.sample_rate))
        segmenters = [Segmenter(self.vad, rate) for _ in range(info.channels)]
        buffers = [np.zeros(0, dtype=np.float32) for _ in range(info.channels)]
        origin = [0] * info.channels  # channel sample (at the model's rate) of buffers[ch][0]
        words: list[list[Word]] = [[] for _ in range(info.channels)]
        position = 0
        while position < info.frames:
            count = min(block, info.frames - position)
            audio = load_audio(
                path, raw=raw, sample_rate=rate, start=position / info.sample_rate, duration=count / info.sample_rate
            )
            position += count
            for ch in range(info.channels):
                samples = audio.channel(ch)
                buffers[ch] = np.concatenate([buffers[ch], samples])
                cuts = segmenters[ch].accept(samples)
                if position >= info.frames:
                    cuts += segmenters[ch].finish()
                for start, end, voiced in cuts:
                    if voiced:
                        segment = buffers[ch][start - origin[ch] : end - origin[ch]]
                        words[ch] += self._decode_segment(segment, start).words
                    buffers[ch] = buffers[ch][end - origin[ch] :]
                    origin[ch] = end
        return [
            Result(
                Hypothesis(" ".join(w.word for w in ws), tuple(ws)),
                ch,
                info.duration,
                leg_name(ch) if info.channels > 1 else None,
            )
            for ch, ws in enumerate(words)
        ]


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
