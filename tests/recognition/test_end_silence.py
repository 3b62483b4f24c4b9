"""Where the input ends, a unidirectional model hears END_SILENCE more (gruasr.transcription): offline and at the
end of a stream alike; a bidirectional model hears nothing more. On real FSDD digits, trimmed at the end of the
speech, the bundled streaming model loses fewer last letters with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from gruasr import transcription
from gruasr.audio.io import load_audio, save_wav
from gruasr.bundle import ModelBundle
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.data.tokens import TokenTable
from gruasr.decoding.hypothesis import Hypothesis
from gruasr.evaluation.metrics import score
from gruasr.features.cmvn import GlobalCMVN
from gruasr.features.config import FbankConfig
from gruasr.models.ctc_model import CTCModel, ModelConfig
from gruasr.recognizer import DecodeOptions, OfflineRecognizer
from gruasr.streaming import StreamingRecognizer
from gruasr.streaming.recognizer import bundled_streaming_model
from gruasr.transcription import OFFLINE_VAD, zero_edges
from gruasr.tuning import dev_log_probs
from gruasr.vad import speech_segments

RATE = 8000
WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]


def _recognizer(bidirectional: bool) -> OfflineRecognizer:
    torch.manual_seed(0)
    config = ModelConfig(input_dim=80, hidden_size=24, num_layers=2, conv_channels=16, bidirectional=bidirectional)
    model = CTCModel(config).eval()
    with torch.no_grad():  # a peaked output layer, so greedy paths hold letters and blanks, as trained ones do
        model.output.weight.mul_(8.0)
    cmvn = GlobalCMVN(torch.full((80,), 9.0), torch.full((80,), 3.0))
    return OfflineRecognizer(ModelBundle(model, FbankConfig(), cmvn, TokenTable(), {}), options=DecodeOptions("greedy"))


def _digits(data_dir: Path, takes: range) -> list[tuple[str, np.ndarray]]:
    """FSDD test takes (trimmed at the speech, as the corpus is) of every speaker and digit: (text, audio)."""
    paths = sorted(p for t in takes for p in (data_dir / "fsdd" / "recordings").glob(f"*_*_{t}.wav"))
    assert paths, f"FSDD recordings not found under {data_dir}"
    return [(WORDS[int(p.name.split("_")[0])], load_audio(p, sample_rate=RATE).channel(0)) for p in paths]


def _expected(rec: OfflineRecognizer, audio: np.ndarray) -> Hypothesis:
    """Each voiced segment decoded on its own; the last one, which ends the input, with the end silence."""
    words = []
    for start, end in speech_segments(audio, RATE, rec.vad):
        segment = audio[start:end]
        if end == len(audio):
            hyp = rec.decode(rec.log_probs(rec.end_padded(segment))).clipped(len(segment) / RATE)
        else:
            hyp = rec.decode(rec.log_probs(segment))
        words += hyp.shifted(start / RATE).words
    return Hypothesis(" ".join(w.word for w in words), tuple(words))


def test_a_unidirectional_model_hears_silence_where_the_input_ends(data_dir: Path, tmp_path: Path) -> None:
    rec = _recognizer(bidirectional=False)
    assert rec.end_silence == round(transcription.END_SILENCE * RATE) > 0
    (_, first), (_, second) = _digits(data_dir, range(1))[:2]
    audio = np.concatenate([first, np.zeros(RATE, np.float32), second])  # two utterances; the input ends in speech
    assert len(speech_segments(audio, RATE, rec.vad)) == 2
    padded = rec.end_padded(second)
    assert len(padded) == len(second) + rec.end_silence and not padded[len(second) :].any()
    assert rec.log_probs(padded).shape[0] > rec.log_probs(second).shape[0]
    hyp = rec.transcribe(audio, RATE)
    expected = _expected(rec, audio)
    assert hyp.text == expected.text and [w.to_dict() for w in hyp.words] == [w.to_dict() for w in expected.words]
    assert all(w.end <= len(audio) / RATE for w in hyp.words)
    save_wav(tmp_path / "call.wav", audio, RATE)
    (result,) = rec.transcribe_file(tmp_path / "call.wav")  # read in blocks: the same segments, the same end
    assert result.text == hyp.text
    assert [w.to_dict() for w in result.hypothesis.words] == [w.to_dict() for w in hyp.words]


def test_a_bidirectional_model_hears_nothing_more(data_dir: Path) -> None:
    rec = _recognizer(bidirectional=True)
    (_, audio), *_ = _digits(data_dir, range(1))
    assert rec.end_silence == 0 and rec.end_padded(audio) is audio
    ((start, end),) = speech_segments(audio, RATE, rec.vad)
    assert rec.transcribe(audio, RATE).text == rec.decode(rec.log_probs(audio[start:end])).text


def test_the_end_silence_gives_the_streaming_model_its_last_letters(data_dir: Path, monkeypatch) -> None:
    """The bundled streaming model on FSDD's 300 test digits, greedy: fewer errors with the end silence than
    without (30 against 39 when written); a stream through the offline VAD gives the offline text, and its
    final ends with the audio."""
    torch.set_num_threads(1)
    rec = OfflineRecognizer.load(bundled_streaming_model(), options=DecodeOptions("greedy"))
    digits = _digits(data_dir, range(5))
    with_silence = score((text, rec.transcribe(audio, RATE).text) for text, audio in digits)
    with monkeypatch.context() as patch:
        patch.setattr(transcription, "END_SILENCE", 0.0)
        assert rec.end_silence == 0
        without = score((text, rec.transcribe(audio, RATE).text) for text, audio in digits)
    assert with_silence.errors < without.errors, (with_silence.errors, without.errors)
    streaming = StreamingRecognizer(rec, OFFLINE_VAD)
    for _, audio in digits[::30]:
        stream = streaming.stream()
        events = [e for k in range(0, len(audio), 800) for e in stream.accept(audio[k : k + 800])] + stream.finish()
        finals = [e for e in events if e.type == "final"]
        assert " ".join(e.text for e in finals) == rec.transcribe(audio, RATE).text
        assert all(e.end <= stream.seconds and all(w.end <= stream.seconds for w in e.words) for e in finals)


def test_decoding_is_tuned_on_what_recognition_hears(tiny_model: Path) -> None:
    """gruasr.tuning scores each dev utterance as a whole input: a unidirectional model's log-probabilities are
    those of the utterance followed by the end silence."""
    rec = _recognizer(bidirectional=False)
    config = json.loads((tiny_model.parent / "config.json").read_text())
    config["dev_channel"]["codec"] = None  # the clean audio, to recompute it here
    cached = dev_log_probs(rec, config)
    utts = [u for path in config["data"]["dev"] for u in read_manifest(path)]
    assert len(cached) == len(utts) > 0
    for (text, log_probs, _), utt in zip(cached, utts, strict=True):
        samples = load_utterance(utt, RATE)
        assert text == utt.text and log_probs.shape[0] > rec.log_probs(samples).shape[0]
        torch.testing.assert_close(log_probs, rec.log_probs(rec.end_padded(samples)))


def test_a_bidirectional_model_does_not_hear_long_runs_of_exact_zeros(data_dir: Path) -> None:
    """Exact zeros beyond ZERO_EDGE at an utterance's edges are cut off before a bidirectional model hears it:
    speech followed by 0.9 s of zeros is recognized as speech followed by ZERO_EDGE of them, word for word."""
    assert zero_edges(np.array([0, 0, 0, 1, 2, 0, 0, 0, 0], np.float32), 1) == (2, 6)
    assert zero_edges(np.zeros(5, np.float32), 1) == (0, 0)
    rec = _recognizer(bidirectional=True)
    (_, speech), *_ = _digits(data_dir, range(1))
    keep = round(transcription.ZERO_EDGE * RATE)
    long = rec.transcribe(np.concatenate([speech, np.zeros(int(0.9 * RATE), np.float32)]), RATE)
    short = rec.transcribe(np.concatenate([speech, np.zeros(keep, np.float32)]), RATE)
    assert long.text == short.text and [w.to_dict() for w in long.words] == [w.to_dict() for w in short.words]
    heard = rec.transcribe(np.concatenate([speech, np.zeros(int(0.9 * RATE), np.float32)]) + 1e-4, RATE)
    assert heard.text != long.text  # the same stretch at 1e-4, not exact zeros, is not cut: the model hears it
