"""The offline recognizer: audio in, text with word times and confidences out.

    from gruasr import load_model
    asr = load_model()                      # the bundled telephone model (or a model directory)
    for result in asr.transcribe_file("call.wav"):   # one result per channel (call leg)
        print(result.channel, result.hypothesis.text)

Long recordings are cut into segments of at most `segment_seconds`, each cut placed at the quietest 100 ms
near the boundary (so words are rarely split), decoded one after another: memory stays bounded whatever the
length of the call. Word times are shifted back to the recording's clock.
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

BUNDLED = Path(__file__).resolve().parent / "pretrained" / "telephone"
FRAME_SECONDS = 0.01


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
        segment_seconds: float = 30.0,
    ) -> None:
        self.bundle = bundle
        self.model = bundle.model.eval()
        self.model.encoder.use_inference_backend()
        self.fbank = Fbank(bundle.features)
        self.lm = lm
        self.lexicon = lexicon
        self.options = options or DecodeOptions()
        if segment_seconds < 2:
            raise ConfigError("segment_seconds must be at least 2")
        self.segment_seconds = segment_seconds

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
        """Recognize mono float audio (n,) at any rate; long audio is decoded segment by segment."""
        audio = np.asarray(samples, dtype=np.float32)
        if audio.ndim != 1:
            raise ConfigError(f"transcribe expects mono audio (n,), got shape {audio.shape}")
        if sample_rate != self.sample_rate:
            audio = resample(audio, sample_rate, self.sample_rate)
        words: list[Word] = []
        score = 0.0
        for start, end in segment_bounds(audio, self.sample_rate, self.segment_seconds):
            if end - start < int(0.03 * self.sample_rate):  # shorter than one frame: nothing to hear
                continue
            hyp = self.decode(self.log_probs(audio[start:end]))
            offset = start / self.sample_rate
            words += [Word(w.word, w.start + offset, w.end + offset, w.conf) for w in hyp.words]
            score += hyp.score
        return Hypothesis(" ".join(w.word for w in words), tuple(words), score)

    def transcribe_file(self, path: str | os.PathLike[str], raw: RawFormat | None = None) -> list[Result]:
        """Recognize every channel of a file (any format gruasr.audio reads, any rate); one Result each.

        The file is read in blocks of `segment_seconds`; each channel is decoded up to the quietest point near
        the end of what has been read, and the rest carried into the next block: memory stays bounded."""
        info = audio_info(path, raw)
        rate, block = self.sample_rate, int(self.segment_seconds * info.sample_rate)
        carry = [np.zeros(0, dtype=np.float32) for _ in range(info.channels)]
        done = [0] * info.channels  # samples (at the model's rate) already decoded, per channel
        words: list[list[Word]] = [[] for _ in range(info.channels)]
        position = 0
        while position < info.frames:
            count = min(block, info.frames - position)
            audio = load_audio(
                path, raw=raw, sample_rate=rate, start=position / info.sample_rate, duration=count / info.sample_rate
            )
            position += count
            last = position >= info.frames
            for ch in range(info.channels):
                buffer = np.concatenate([carry[ch], audio.channel(ch)])
                cut = len(buffer) if last else quietest_cut(buffer, rate, len(buffer) // 2, len(buffer))
                if cut >= int(0.03 * rate):
                    hyp = self.decode(self.log_probs(buffer[:cut]))
                    offset = done[ch] / rate
                    words[ch] += [Word(w.word, w.start + offset, w.end + offset, w.conf) for w in hyp.words]
                else:
                    cut = 0 if not last else cut
                done[ch] += cut
                carry[ch] = buffer[cut:]
        return [
            Result(Hypothesis(" ".join(w.word for w in ws), tuple(ws)), ch, info.duration)
            for ch, ws in enumerate(words)
        ]


def quietest_cut(audio: np.ndarray, sample_rate: int, lo: int, hi: int) -> int:
    """The centre of the quietest 100 ms window within audio[lo:hi] (hi when the range is too short)."""
    window = max(int(0.1 * sample_rate), 1)
    region = audio[lo:hi].astype(np.float64) ** 2
    if len(region) < window:
        return hi
    energy = np.convolve(region, np.ones(window), mode="valid")
    return lo + int(np.argmin(energy)) + window // 2


def segment_bounds(audio: np.ndarray, sample_rate: int, max_seconds: float) -> list[tuple[int, int]]:
    """Cut points for audio longer than max_seconds: each cut at the quietest 100 ms window in the last
    quarter of the segment, so segments never exceed max_seconds and rarely split a word."""
    n = len(audio)
    limit = int(max_seconds * sample_rate)
    bounds, start = [], 0
    while n - start > limit:
        cut = quietest_cut(audio, sample_rate, start + (3 * limit) // 4, start + limit)
        bounds.append((start, cut))
        start = cut
    bounds.append((start, n))
    return bounds


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
