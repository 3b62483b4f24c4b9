"""The offline recognizer: audio in, text with word times and confidences out.

    from gruasr import load_model
    asr = load_model()                      # the bundled telephone model (or a model directory)
    for result in asr.transcribe_file("call.wav"):   # one result per channel (call leg)
        print(result.channel, result.hypothesis.text)

Audio is cut into utterances by voice activity (WebRTC VAD, the same endpointer rules as live streams,
gruasr.vad), each at most 30 s; utterances in which the VAD heard no speech are skipped, so silence, hold
music between turns and a muted leg cost nothing and produce nothing. Utterances are decoded one after
another: memory stays bounded whatever the length of the call. Word times are on the recording's clock.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from gruasr.audio.io import RawFormat, audio_info, load_audio
from gruasr.audio.resample import resample
from gruasr.decoding.beam import BeamConfig, Lexicon, prefix_beam_search
from gruasr.decoding.greedy import greedy_decode
from gruasr.decoding.hypothesis import Hypothesis, Word
from gruasr.decoding.lm import NGramLM
from gruasr.errors import CheckpointError, ConfigError
from gruasr.features import Fbank
from gruasr.models.ctc_model import SUBSAMPLING
from gruasr.training.checkpoint import ModelBundle, load_bundle
from gruasr.vad import EndpointConfig, Segmenter, speech_segments

BUNDLED = Path(__file__).resolve().parent / "pretrained" / "telephone"
FRAME_SECONDS = 0.01
#: offline cutting: the streaming endpointer's rules, with utterances of up to 30 s
OFFLINE_VAD = EndpointConfig(max_utterance=30.0)


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode: "greedy", or "beam" (with the LM and lexicon when given)."""

    method: str = "beam"
    beam: BeamConfig = field(default_factory=BeamConfig)
    use_lm: bool = True

    def __post_init__(self) -> None:
        if self.method not in ("greedy", "beam"):
            raise ConfigError(f"decoding method must be 'greedy' or 'beam', got {self.method!r}")


@dataclass(frozen=True)
class Result:
    """One channel's transcript."""

    hypothesis: Hypothesis
    channel: int
    duration: float

    @property
    def text(self) -> str:
        return self.hypothesis.text


class Recognizer:
    """A model with its features, CMVN, tokens and (optionally) language model and lexicon."""

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
        self.fbank = Fbank(bundle.features)
        self.lm = lm
        self.lexicon = lexicon
        self.options = options or DecodeOptions()
        #: how audio is cut into utterances (WebRTC VAD; at most 30 s each); stretches without speech are skipped
        self.vad = vad or OFFLINE_VAD

    @property
    def sample_rate(self) -> int:
        return self.bundle.sample_rate

    def log_probs(self, samples: np.ndarray) -> torch.Tensor:
        """Mono float audio at the model's rate -> CTC log-probabilities (T', V)."""
        with torch.inference_mode():
            feats = self.bundle.cmvn(self.fbank(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))))
            log_probs, _, _ = self.model(feats[None])
        return log_probs[0]

    def decode(self, log_probs: torch.Tensor) -> Hypothesis:
        step = SUBSAMPLING * FRAME_SECONDS
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
            raise ConfigError(f"transcribe expects mono audio (n,), got shape {audio.shape}")
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
        hyp = self.decode(self.log_probs(samples))
        offset = start / self.sample_rate
        words = tuple(Word(w.word, w.start + offset, w.end + offset, w.conf) for w in hyp.words)
        return Hypothesis(hyp.text, words, hyp.score)

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
            Result(Hypothesis(" ".join(w.word for w in ws), tuple(ws)), ch, info.duration)
            for ch, ws in enumerate(words)
        ]


def load_model(
    path: str | os.PathLike[str] | None = None,
    lm: str | os.PathLike[str] | None = None,
    lexicon: str | os.PathLike[str] | None = None,
    options: DecodeOptions | None = None,
    device: str = "cpu",
) -> Recognizer:
    """A Recognizer from a model directory (None: the bundled telephone model). The directory's lm.arpa and
    lexicon.txt are used unless `lm` / `lexicon` name others; options.use_lm=False decodes without them.
    Without `options`, the model's own decoding settings apply (model.json "decoding": beam size, LM weight
    and word bonus tuned on dev, and whether the LM helps), else beam search with the LM."""
    folder = Path(path) if path is not None else BUNDLED
    if path is None and not (folder / "model.json").is_file():
        raise CheckpointError(f"the bundled model is missing from {folder}; give --model DIR")
    bundle = load_bundle(folder, device)
    lm_path = Path(lm) if lm is not None else folder / "lm.arpa"
    language_model = NGramLM.from_arpa(lm_path) if lm_path.is_file() or lm is not None else None
    lex_path = Path(lexicon) if lexicon is not None else folder / "lexicon.txt"
    if lex_path.is_file() or lexicon is not None:
        words: Lexicon | None = Lexicon.from_file(str(lex_path))
    else:
        words = Lexicon(language_model.vocab) if language_model is not None else None
    return Recognizer(bundle, language_model, words, options or model_decoding(bundle.meta))


def model_decoding(meta: dict[str, object], **overrides: object) -> DecodeOptions:
    """The decoding options a model directory recommends (model.json "decoding"), with `overrides` applied:
    method, use_lm, beam_size, lm_weight, word_bonus (None values are ignored)."""
    saved = meta.get("decoding")
    settings: dict[str, object] = dict(saved) if isinstance(saved, dict) else {}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    beam = BeamConfig(
        beam_size=int(settings.get("beam_size", 16)),  # type: ignore[call-overload]
        lm_weight=float(settings.get("lm_weight", 0.5)),  # type: ignore[arg-type]
        word_bonus=float(settings.get("word_bonus", 1.0)),  # type: ignore[arg-type]
    )
    return DecodeOptions(
        method=str(settings.get("method", "beam")), beam=beam, use_lm=bool(settings.get("use_lm", True))
    )
