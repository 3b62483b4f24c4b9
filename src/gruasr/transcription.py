"""What every offline engine shares (the torch `OfflineRecognizer`, the ONNX runtime's `OnnxRecognizer`): cutting
audio into utterances by voice activity, decoding them one by one, one `Result` per channel of a file. An engine
provides `sample_rate`, `vad`, `log_probs(samples)` and `decode(log_probs)`; nothing here imports torch.

Audio is cut into utterances by voice activity (WebRTC VAD, the same endpointer rules as live streams,
gruasr.vad), each at most 30 s; utterances in which the VAD heard no speech are skipped. Utterances are decoded
one after another: memory stays bounded whatever the length of the call. Word times are on the recording's clock.
A unidirectional model hears `END_SILENCE` more where the input ends, as live streams do at their end.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from gruasr.audio.io import RawFormat, audio_info, load_audio
from gruasr.audio.resample import resample
from gruasr.decoding.beam import BeamConfig, Lexicon, prefix_beam_search, prefix_beam_search_nbest
from gruasr.decoding.forced import ctc_log_likelihoods
from gruasr.decoding.greedy import greedy_decode
from gruasr.decoding.hypothesis import Hypothesis, Word
from gruasr.errors import ConfigError, ShapeError
from gruasr.vad import EndpointConfig, Segmenter, speech_segments

if TYPE_CHECKING:
    from gruasr.data.tokens import TokenTable
    from gruasr.decoding.lm import LanguageModel


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode: "greedy", or "beam" (with the LM and lexicon when `use_lm` and they exist)."""

    method: str = "beam"
    beam: BeamConfig = field(default_factory=BeamConfig)
    use_lm: bool = True

    def __post_init__(self) -> None:
        if self.method not in ("greedy", "beam"):
            raise ConfigError(f"decoding method must be 'greedy' or 'beam', got {self.method!r}")

    def decode(
        self, log_probs: Any, tokens: TokenTable, step_seconds: float, lm: LanguageModel | None, lexicon: Lexicon | None
    ) -> Hypothesis:
        """CTC log-probabilities (T', V) on the CPU (torch or numpy) -> the best hypothesis by this method: greedy,
        or the prefix beam search, with `lm` and `lexicon` when use_lm (word times in seconds from the first step)."""
        if self.method == "greedy":
            return greedy_decode(log_probs, tokens, step_seconds)
        if not self.use_lm:
            lm, lexicon = None, None
        return prefix_beam_search(log_probs, tokens, step_seconds, self.beam, lm, lexicon)

    def nbest(
        self,
        log_probs: Any,
        tokens: TokenTable,
        step_seconds: float,
        lm: LanguageModel | None,
        lexicon: Lexicon | None,
        count: int,
    ) -> list[Hypothesis]:
        """Up to `count` distinct texts, best first, as `decode` ranks them (greedy: its one text)."""
        if self.method == "greedy":
            return [greedy_decode(log_probs, tokens, step_seconds)]
        if not self.use_lm:
            lm, lexicon = None, None
        return prefix_beam_search_nbest(log_probs, tokens, step_seconds, self.beam, lm, lexicon, nbest=count)


def model_decoding(meta: dict[str, Any], **overrides: object) -> DecodeOptions:
    """The decoding options a model folder recommends (model.json "decoding", tuned on dev when bundled), with
    `overrides` applied: method, use_lm, beam_size, lm_weight, word_bonus (None values are ignored)."""
    saved = meta.get("decoding")
    settings: dict[str, Any] = dict(saved) if isinstance(saved, dict) else {}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    try:
        beam = BeamConfig(
            beam_size=int(settings.get("beam_size", 16)),
            lm_weight=float(settings.get("lm_weight", 0.5)),
            word_bonus=float(settings.get("word_bonus", 1.0)),
        )
    except (TypeError, ValueError) as err:
        raise ConfigError(f"decoding settings {settings}: {err}") from None
    return DecodeOptions(str(settings.get("method", "beam")), beam, bool(settings.get("use_lm", True)))


#: offline cutting: the streaming endpointer's rules with the least aggressive VAD mode, utterances of up to 30 s.
#: Mode 2 (the live default) misses quiet talkers: 3 of the 300 FSDD test digits of its quietest speaker were
#: skipped as unvoiced; mode 0 keeps them all. The models themselves emit nothing for non-speech (their recipes
#: train on it), so a permissive gate costs little: 0.23 words per minute of generated non-speech, measured.
OFFLINE_VAD = EndpointConfig(vad_mode=0, max_utterance=30.0)


#: seconds of digital silence a unidirectional (streaming) model hears after the last sample of its input, offline
#: and at the end of a live stream alike. Such a model emits a word's last letters a few steps after it heard
#: them (CTC lets it wait for context): an utterance the endpointer ends has 0.6 s of trailing silence for that,
#: but input that stops right after the speech (a trimmed clip, a call hung up mid-word) lost them: the streaming
#: Li-GRU recognized 45% of FSDD's isolated dev digits wrongly without it and 12% with it (docs/recognizer.md).
#: A bidirectional model hears the whole utterance at once and gets none.
END_SILENCE = 0.3


#: seconds of exact digital zeros a bidirectional model keeps at an utterance's edges: longer runs (VoIP silence
#: suppression, a muted leg, zero padding) are cut off before it hears the utterance. It hears the utterance as a
#: whole, and 0.9 s of zeros after AN4 test utterances took it from 9.31% to 12.29% WER (docs/streaming.md,
#: "Digital silence"); zeros carry nothing, and a unidirectional model cannot be reached by zeros after the speech.
ZERO_EDGE = 0.1


def zero_edges(samples: np.ndarray, keep: int) -> tuple[int, int]:
    """(first, end) such that samples[first:end] has at most `keep` exact zeros before its first and after its last
    non-zero sample; (0, 0) when every sample is zero."""
    nonzero = np.flatnonzero(samples)
    if nonzero.size == 0:
        return 0, 0
    return max(0, int(nonzero[0]) - keep), min(len(samples), int(nonzero[-1]) + 1 + keep)


def check_second_pass(streaming: Transcriber, second: Transcriber | None) -> Transcriber | None:
    """A streaming recognizer's second pass (None, or a recognizer at the streaming model's rate; ConfigError if
    not): the model that decodes each final from the ended utterance's audio, e.g. the bidirectional default
    model behind the streaming one (partials stay the streaming model's)."""
    if second is not None and second.sample_rate != streaming.sample_rate:
        raise ConfigError(
            f"the second pass runs at {second.sample_rate} Hz and the streaming model at {streaming.sample_rate} Hz:"
            " they must hear the same audio"
        )
    return second


#: how many of the first model's best texts a rescoring model weighs, and its weight when a model folder names none
RESCORE_NBEST = 16
RESCORE_WEIGHT = 1.0


def rescoring_settings(meta: dict[str, Any], folder: Path | None) -> tuple[Path, float, int] | None:
    """The rescoring a model folder asks for (model.json "rescoring": {"model": NAME, "weight": W, "nbest": N}):
    (the second model's folder, weight, nbest), NAME being a folder beside the model's own (the bundled default
    names the bundled streaming model; an ONNX export, the export beside it). None when it asks for none, and,
    with a warning, when that folder is missing (the model then decodes alone)."""
    spec = meta.get("rescoring")
    if not spec:
        return None
    try:
        name, weight, nbest = str(spec["model"]), float(spec["weight"]), int(spec.get("nbest", RESCORE_NBEST))
    except (KeyError, TypeError, ValueError) as err:
        raise ConfigError(f"model.json 'rescoring' {spec!r}: {err!r}") from None
    if folder is None or Path(name).name != name:
        raise ConfigError(f"model.json 'rescoring' names {name!r}: it must be a folder beside the model's own")
    second = folder.parent / name
    if not second.is_dir():
        warnings.warn(
            f"{folder} asks for rescoring by {name!r}, which is not beside it ({second}): decoding without it",
            stacklevel=3,
        )
        return None
    return second, weight, nbest


@dataclass(frozen=True)
class Rescoring:
    """A second model's vote on each utterance (sequence-level fusion): the first model's decoder proposes its
    `nbest` best texts, and the one with the highest score + weight * log P_second(text | audio) wins, where P is
    the second model's CTC likelihood of the text (every alignment summed, gruasr.decoding.forced.
    ctc_log_likelihood). Models that align their outputs differently in time (a unidirectional model emits later
    than a bidirectional one) cannot be averaged frame by frame, but each can say how likely a whole text is.
    The second model hears the audio the first heard, with its own features and its own end silence."""

    model: Transcriber
    weight: float
    nbest: int = 16

    def __post_init__(self) -> None:
        if not self.weight >= 0 or self.nbest < 1:
            raise ConfigError(f"rescoring needs a weight >= 0 and nbest >= 1, got {self.weight} and {self.nbest}")

    def check(self, first: Transcriber) -> Rescoring:
        """Itself, if it can rescore `first`'s texts (same rate and tokens); ConfigError if not."""
        second = self.model
        if second.sample_rate != first.sample_rate:
            raise ConfigError(
                f"the rescoring model runs at {second.sample_rate} Hz and the first at {first.sample_rate} Hz:"
                " they must hear the same audio"
            )
        if second.bundle.tokens.symbols != first.bundle.tokens.symbols:
            raise ConfigError("the rescoring model spells with other tokens than the first: it cannot score its texts")
        return self

    def votes(self, samples: np.ndarray, ends_input: bool = False) -> np.ndarray:
        """The second model's log-probabilities (T'', V) of an utterance's audio (with its end silence when the
        utterance ends the input), float64 numpy: what `pick` weighs the first model's texts by."""
        second = self.model
        heard = second.end_padded(samples) if ends_input else samples
        return as_votes(second.log_probs(heard))

    def pick(self, first: Transcriber, log_probs: Any, theirs: np.ndarray) -> Hypothesis:
        """The winner among `first`'s n-best of `log_probs` by the second model's `votes`, its score the fused one."""
        return rescored(self._candidates(first, log_probs), theirs, self.weight, first.bundle.tokens)

    def best(self, first: Transcriber, log_probs: Any, samples: np.ndarray, ends_input: bool) -> Hypothesis:
        """The winner among `first`'s n-best of `log_probs` (its outputs for `samples`), its score the fused one;
        the second model runs only when there is a choice (greedy decoding gives one text)."""
        candidates = self._candidates(first, log_probs)
        if len(candidates) < 2 or self.weight == 0:
            return rescored(candidates, np.zeros((0, 0)), 0.0, first.bundle.tokens)
        return rescored(candidates, self.votes(samples, ends_input), self.weight, first.bundle.tokens)

    def _candidates(self, first: Transcriber, log_probs: Any) -> list[Hypothesis]:
        bundle = first.bundle
        return first.options.nbest(log_probs, bundle.tokens, bundle.step_seconds, first.lm, first.lexicon, self.nbest)


def rescored(candidates: Sequence[Hypothesis], theirs: np.ndarray, weight: float, tokens: TokenTable) -> Hypothesis:
    """The candidate (n-best texts, best first) with the highest score + weight * log P(text | theirs), P being
    the CTC likelihood under a second model's log-probabilities `theirs`; its score the fused one (an empty
    hypothesis when there is no candidate)."""
    if not candidates:
        return Hypothesis("", (), float("-inf"), confidence=0.0)
    if len(candidates) == 1 or weight == 0:
        return candidates[0]
    likelihoods = ctc_log_likelihoods(theirs, [tokens.encode(h.text) for h in candidates], tokens.blank)
    fused = np.array([h.score for h in candidates]) + weight * likelihoods
    winner = int(np.argmax(fused))
    return replace(candidates[winner], score=float(fused[winner]))


def _cpu(values: Any) -> Any:
    """A torch tensor on the CPU as numpy (numpy arrays pass through)."""
    return values.detach().cpu().numpy() if hasattr(values, "detach") else values


def votes_itself(streaming: Transcriber, second: Transcriber | None) -> bool:
    """Whether a two-pass stream's own model is its second pass's rescoring model: the same folder, or folders of
    the same trained weights (a model folder and its ONNX exports, float or int8, name the weights' SHA-256). Then
    each final's vote is the stream's outputs for the utterance, already computed, not the model run again."""
    if second is None or second.rescoring is None:
        return False
    own, theirs = streaming.bundle, second.rescoring.model.bundle
    if own.path is not None and theirs.path is not None and Path(own.path).resolve() == Path(theirs.path).resolve():
        return True
    return _weights_id(own.meta) is not None and _weights_id(own.meta) == _weights_id(theirs.meta)


def _weights_id(meta: dict[str, Any]) -> str | None:
    """The SHA-256 of the trained weights a model folder (model.json) or an ONNX export (export.json) holds."""
    value = meta.get("source_weights_sha256") or meta.get("weights_sha256")
    return str(value) if value else None


def as_votes(values: Any) -> np.ndarray:
    """Log-probabilities (T, V), a torch tensor on any device or an array, as the float64 numpy `rescored` reads."""
    return np.asarray(_cpu(values), dtype=np.float64)


def decoding_name(transcriber: Transcriber) -> str:
    """How `transcriber` decodes now, as reports name it: "greedy", "beam", "beam+lm", or either beam with
    "+rescore" when a second model votes (weight > 0)."""
    if transcriber.options.method == "greedy":
        return "greedy"
    name = "beam+lm" if transcriber.options.use_lm and transcriber.lm is not None else "beam"
    rescoring = transcriber.rescoring
    return name + "+rescore" if rescoring is not None and rescoring.weight > 0 else name


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


class Transcriber:
    """Offline recognition of whole recordings on top of an engine's `log_probs` and `decode` (see the module
    docstring)."""

    vad: EndpointConfig
    bundle: Any  # the model folder's contents (tokens, step_seconds, path, ...) as the engine loads them
    options: DecodeOptions
    lm: LanguageModel | None
    lexicon: Lexicon | None
    #: a second model that rescores each utterance's n-best (None: the first model's best text stands)
    rescoring: Rescoring | None = None

    @property
    def sample_rate(self) -> int:
        raise NotImplementedError

    @property
    def bidirectional(self) -> bool:
        raise NotImplementedError

    @property
    def end_silence(self) -> int:
        """Samples of silence the model hears after its input's last sample (END_SILENCE; 0 when bidirectional)."""
        return 0 if self.bidirectional else round(END_SILENCE * self.sample_rate)

    def end_padded(self, samples: np.ndarray) -> np.ndarray:
        """Mono float audio (n,) that ends the input, followed by the `end_silence` the model hears after it
        (what streams and `transcribe` feed the model; `log_probs` of it are a stream's last utterance's)."""
        silence = np.zeros(self.end_silence, dtype=np.float32)
        return np.concatenate([np.asarray(samples, dtype=np.float32), silence]) if len(silence) else samples

    def heard_span(self, samples: np.ndarray) -> tuple[int, int]:
        """(first, end): the part of an utterance's samples the model hears: a bidirectional one not the runs of
        exact zeros beyond ZERO_EDGE at its edges, a unidirectional one all of it."""
        if self.bidirectional:
            return zero_edges(samples, round(ZERO_EDGE * self.sample_rate))
        return 0, len(samples)

    def log_probs(self, samples: Any) -> Any:
        """Mono float audio (n,) at the model's rate -> CTC log-probabilities (T', V)."""
        raise NotImplementedError

    def decode(self, log_probs: Any) -> Hypothesis:
        """CTC log-probabilities (T', V) -> the best hypothesis (word times in seconds from the first frame)."""
        raise NotImplementedError

    def with_rescoring(self, rescoring: bool | Rescoring, load: Callable[[Path], Transcriber]) -> Self:
        """Itself, rescored as `rescoring` says (each engine's `load(..., rescoring=...)`): True by the second
        model its folder names (rescoring_settings; `load` opens that folder with this engine), False by none, or
        by the Rescoring given; checked (Rescoring.check)."""
        if rescoring is True:
            settings = rescoring_settings(self.bundle.meta, self.bundle.path)
            if settings is not None:
                second, weight, nbest = settings
                self.rescoring = Rescoring(load(second), weight, nbest)
        elif isinstance(rescoring, Rescoring):
            self.rescoring = rescoring
        if self.rescoring is not None:
            self.rescoring.check(self)
        return self

    def decode_final(self, log_probs: Any, votes: np.ndarray | None = None) -> Hypothesis:
        """A stream's final from this model's log-probabilities of its utterance: `decode`, or with the rescoring
        model's `votes` of the same audio (gruasr.events.PendingFinal.votes) its `pick`."""
        if votes is None or self.rescoring is None:
            return self.decode(log_probs)
        return self.rescoring.pick(self, _cpu(log_probs), votes)

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
            hyp = self._decode_segment(audio[start:end], start, ends_input=end == len(audio))
            words += hyp.words
            score += hyp.score
        return Hypothesis(" ".join(w.word for w in words), tuple(words), score)

    def _decode_segment(self, samples: np.ndarray, start: int, ends_input: bool = False) -> Hypothesis:
        """One utterance starting at sample `start` of its channel; word times shifted to the channel's clock.
        `ends_input`: the input ends with it (a unidirectional model hears `end_silence` more)."""
        rate = self.sample_rate
        first, end = self.heard_span(samples)
        samples, start = samples[first:end], start + first
        if len(samples) < int(0.03 * rate):  # shorter than one frame: nothing to hear
            return Hypothesis("", ())
        return self.recognize(samples, ends_input).shifted(start / rate)

    def recognize(self, samples: np.ndarray, ends_input: bool = False) -> Hypothesis:
        """One utterance's audio (n,) at the model's rate -> its hypothesis (word times from its first sample):
        `log_probs` and `decode`, with the end silence when it `ends_input` (word times clipped to the audio), and
        the `rescoring` model's vote when there is one."""
        padded = ends_input and self.end_silence
        log_probs = self.log_probs(self.end_padded(samples) if padded else samples)
        if self.rescoring is None:
            hyp = self.decode(log_probs)
        else:
            hyp = self.rescoring.best(self, _cpu(log_probs), samples, ends_input)
        return hyp.clipped(len(samples) / self.sample_rate) if padded else hyp

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
        received = [0] * info.channels  # channel samples at the model's rate
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
                received[ch] += len(samples)
                cuts = segmenters[ch].accept(samples)
                if position >= info.frames:
                    cuts += segmenters[ch].finish()
                for start, end, voiced in cuts:
                    if voiced:
                        segment = buffers[ch][start - origin[ch] : end - origin[ch]]
                        ends = position >= info.frames and end == received[ch]
                        words[ch] += self._decode_segment(segment, start, ends).words
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
