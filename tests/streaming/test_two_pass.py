"""Two passes: with a `second_pass`, each final of a stream is that recognizer's result on the ended utterance's
audio (the partials stay the streaming model's); `gruasr stream` / `gruasr call --second-pass` give the library's
results; a second pass at another rate is refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gruasr.audio.io import AN4_RAW, load_audio, save_wav
from gruasr.bundle import ModelBundle, bundled
from gruasr.cli.main import main
from gruasr.data.tokens import TokenTable
from gruasr.errors import ConfigError
from gruasr.features.cmvn import GlobalCMVN
from gruasr.features.config import FbankConfig
from gruasr.models.ctc_model import CTCModel, ModelConfig
from gruasr.recognizer import DecodeOptions, OfflineRecognizer
from gruasr.streaming import EndpointConfig, Event, StreamingRecognizer
from gruasr.streaming.calls import call_transcript
from gruasr.transcription import as_votes, zero_edges

RATE = 8000
SAMPLE_CALL = Path(__file__).resolve().parents[2] / "src" / "gruasr" / "samples" / "call.wav"


def _offline(bidirectional: bool, seed: int, rate: int = RATE) -> OfflineRecognizer:
    torch.manual_seed(seed)
    config = ModelConfig(input_dim=80, hidden_size=24, num_layers=2, conv_channels=16, bidirectional=bidirectional)
    model = CTCModel(config).eval()
    with torch.no_grad():  # a peaked output layer, so greedy paths hold letters and blanks, as trained ones do
        model.output.weight.mul_(8.0)
    cmvn = GlobalCMVN(torch.full((80,), 9.0), torch.full((80,), 3.0))
    bundle = ModelBundle(model, FbankConfig(sample_rate=rate), cmvn, TokenTable(), {})
    return OfflineRecognizer(bundle, options=DecodeOptions("greedy"))


@pytest.fixture(scope="module")
def call_audio(data_dir: Path) -> np.ndarray:
    """Two AN4 test utterances with 1.2 s of silence between (the endpointer cuts there); the input ends in speech."""
    paths = sorted((data_dir / "an4" / "wav" / "an4test_clstk").glob("*/*.raw"))[:2]
    assert len(paths) == 2, f"AN4 audio not found under {data_dir}"
    first, second = (load_audio(p, raw=AN4_RAW, sample_rate=RATE).channel(0) for p in paths)
    return np.concatenate([first, np.zeros(int(1.2 * RATE), np.float32), second])


def _run(rec: StreamingRecognizer, audio: np.ndarray) -> tuple[list, list]:
    stream = rec.stream(record=True)
    events = [e for k in range(0, len(audio), 800) for e in stream.accept(audio[k : k + 800])] + stream.finish()
    assert stream.recorded is not None
    return events, stream.recorded


def test_each_final_is_the_second_pass_on_its_utterance(call_audio: np.ndarray) -> None:
    streaming, second = _offline(False, 0), _offline(True, 1)
    endpoint = EndpointConfig(trailing_silence=0.5, drop_unvoiced=False)
    one_pass = StreamingRecognizer(streaming, endpoint)
    two_pass = StreamingRecognizer(streaming, endpoint, second)
    assert one_pass.finals is streaming and two_pass.finals is second
    plain, _ = _run(one_pass, call_audio)
    events, recorded = _run(two_pass, call_audio)
    assert len(recorded) >= 2
    partials = [e for e in events if e.type == "partial"]
    assert partials == [e for e in plain if e.type == "partial"]  # the streaming model's, unchanged
    expected = []
    for first, end, log_probs in recorded:  # frames first..end-1: samples first*80 .. (end-1)*80 + 200
        audio = call_audio[first * 80 : end * 80 + 120]
        lo, hi = zero_edges(audio, 800)  # a bidirectional second pass keeps 0.1 s of exact zeros at each edge
        assert hi - lo < len(audio) or not log_probs.shape[0]  # the 1.2 s of zeros between the utterances
        if log_probs.shape[0] and hi - lo >= 200:
            hyp = second.decode(second.log_probs(audio[lo:hi]).cpu())
            if hyp.text:
                expected.append((hyp.text, [round(w.start + first * 0.01 + lo / RATE, 6) for w in hyp.words]))
    finals = [e for e in events if e.type == "final"]
    assert [(e.text, [round(w.start, 6) for w in e.words]) for e in finals] == expected
    assert [e.text for e in finals] != [e.text for e in plain if e.type == "final"]  # another model's finals
    assert all(w.end <= len(call_audio) / RATE for e in finals for w in e.words)
    stream = two_pass.stream()
    stream.accept(call_audio)
    assert sum(len(c) for c in stream._heard) < len(call_audio)  # the ended utterance's audio is let go
    two_pass.defer_second_pass = True  # the server's way: the audio travels, the decoder runs the second pass
    stream = two_pass.stream()
    stream.feed(call_audio, last=True)
    two_pass.advance([stream])
    pending = [p for p in stream.take() if not isinstance(p, Event)]
    assert any(p.audio is not None for p in pending)  # an utterance of zeros alone has none to hear
    assert all(p.log_probs.shape[0] == 0 for p in pending)
    deferred = [p.event(second.decode(p.scores(second))) for p in pending]
    assert [e.text for e in deferred if e is not None] == [e.text for e in finals]


def _heard_utterances(recorded: list, audio: np.ndarray) -> list[tuple[torch.Tensor, np.ndarray]]:
    """(the stream's log-probabilities, the audio a bidirectional second pass hears) of each recorded utterance
    that has some: frames first..end-1, exact zeros beyond 0.1 s cut from its edges."""
    out = []
    for first, end, log_probs in recorded:
        samples = audio[first * 80 : end * 80 + 120]
        lo, hi = zero_edges(samples, 800)
        if log_probs.shape[0] and hi - lo >= 200:
            out.append((log_probs, samples[lo:hi]))
    return out


def test_a_rescored_second_pass_is_voted_by_the_streams_own_outputs(call_audio: np.ndarray, tmp_path: Path) -> None:
    """The bundled default model as the second pass, rescored by the streaming model (its model.json), behind that
    same streaming model: each final is the second pass's n-best of the utterance's audio picked by the stream's own
    outputs for the utterance (already computed: the streaming model does not run again); the server's deferred way
    gives the same. Behind another streaming model the vote is the rescoring model run on the audio."""
    torch.set_num_threads(1)
    second = OfflineRecognizer.load()
    assert second.rescoring is not None
    rec = StreamingRecognizer.load(second_pass=second)
    assert rec.votes_itself
    events, recorded = _run(rec, call_audio)
    expected = []
    for log_probs, heard in _heard_utterances(recorded, call_audio):
        hyp = second.rescoring.pick(second, second.log_probs(heard).cpu(), as_votes(log_probs))
        expected += [hyp.text] if hyp.text else []
    finals = [e.text for e in events if e.type == "final"]
    assert finals == expected and finals
    rec.defer_second_pass = True
    stream = rec.stream()
    stream.feed(call_audio, last=True)
    rec.advance([stream])
    pending = [p for p in stream.take() if not isinstance(p, Event)]
    assert all(p.vote is not None for p in pending if p.audio is not None)  # the stream's outputs travel along
    deferred = [p.event(p.decoded(second, second)) for p in pending]
    assert [e.text for e in deferred if e is not None] == finals
    copy = OfflineRecognizer.load(shutil.copytree(bundled("telephone-streaming"), tmp_path / "elsewhere"))
    assert StreamingRecognizer(copy, second_pass=second).votes_itself  # the same weights in another folder
    other = StreamingRecognizer(_offline(False, 0), EndpointConfig(trailing_silence=0.5), second)
    assert not other.votes_itself  # a tiny streaming model: the second pass's own rescoring model votes
    events, recorded = _run(other, call_audio)
    expected = []
    for _, heard in _heard_utterances(recorded, call_audio):
        hyp = second.rescoring.best(second, second.log_probs(heard).cpu(), heard, ends_input=False)
        expected += [hyp.text] if hyp.text else []
    assert [e.text for e in events if e.type == "final"] == expected


def test_a_second_pass_must_hear_the_streaming_models_rate() -> None:
    with pytest.raises(ConfigError, match="16000 Hz.*8000 Hz"):
        StreamingRecognizer(_offline(False, 0), None, _offline(True, 1, rate=16000))


def test_gruasr_call_and_stream_with_a_second_pass(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The bundled streaming model with the bundled default model as the second pass, on the sample call: the CLI
    gives what the library gives, and the finals are the default model's (not the streaming model's)."""
    torch.set_num_threads(1)
    rec = StreamingRecognizer.load(second_pass=OfflineRecognizer.load())
    expected = [e.to_dict() for e in call_transcript(rec, SAMPLE_CALL)]
    assert main(["call", str(SAMPLE_CALL), "--json", "--second-pass"]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [{k: v for k, v in e.items() if k != "audio"} for e in got] == expected
    assert main(["call", str(SAMPLE_CALL), "--json"]) == 0
    one_pass = [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()]
    assert one_pass != [e["text"] for e in expected]
    mono = tmp_path / "a.wav"
    save_wav(mono, load_audio(SAMPLE_CALL).channel(0), RATE)
    assert main(["stream", str(mono), "--json", "--second-pass"]) == 0
    finals = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"final"' in line]
    assert [e["text"] for e in finals] == [e["text"] for e in expected if e.get("leg") == "A"]
    assert main(["call", str(SAMPLE_CALL), "--engine", "onnx", "--model", "x", "--second-pass"]) == 1
    assert "--second-pass DIR" in capsys.readouterr().err
