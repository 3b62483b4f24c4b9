"""Streaming recognition: streamed log-probabilities and text equal offline ones on real AN4 and FSDD audio
whatever the chunk sizes, with and without endpointing; batching many streams changes nothing; bad input is
refused clearly; memory stays bounded; `gruasr stream` and `gruasr call` work."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from gruasr.audio.io import AN4_RAW, load_audio, save_wav
from gruasr.audio.resample import resample
from gruasr.bundle import ModelBundle, save_model
from gruasr.cli.main import main
from gruasr.data.corpora.an4 import parse_transcription
from gruasr.data.tokens import TokenTable
from gruasr.errors import ConfigError, ShapeError
from gruasr.evaluation.metrics import ErrorCounts
from gruasr.features.cmvn import GlobalCMVN
from gruasr.features.config import FbankConfig
from gruasr.models.ctc_model import CTCModel, ModelConfig
from gruasr.models.recurrent import available
from gruasr.recognizer import DecodeOptions, OfflineRecognizer
from gruasr.streaming import EndpointConfig, Endpointer, Stream, StreamingRecognizer

RATE = 8000
BACKENDS = {"lstm": "fused", "rnn": "fused"}


def _bundle(unit: str = "gru", bidirectional: bool = False, seed: int = 0) -> ModelBundle:
    torch.manual_seed(seed)
    config = ModelConfig(input_dim=80, unit=unit, hidden_size=24, num_layers=2, conv_channels=16,
                         bidirectional=bidirectional, backend=BACKENDS.get(unit))  # fmt: skip
    model = CTCModel(config).eval()
    with torch.no_grad():  # a peaked output layer, so greedy paths hold letters and blanks, as trained ones do
        model.output.weight.mul_(8.0)
    cmvn = GlobalCMVN(torch.full((80,), 9.0), torch.full((80,), 3.0))
    return ModelBundle(model, FbankConfig(), cmvn, TokenTable(), {})


def _recognizer(unit: str = "gru", endpoint: EndpointConfig | None = None, seed: int = 0) -> StreamingRecognizer:
    offline = OfflineRecognizer(_bundle(unit, seed=seed), options=DecodeOptions("greedy"))
    return StreamingRecognizer(offline, endpoint or EndpointConfig(enabled=False))


@pytest.fixture(scope="module")
def real_audio(data_dir: Path) -> list[np.ndarray]:
    """Two AN4 test utterances (16 kHz raw, resampled) and two FSDD takes, at 8 kHz."""
    an4 = sorted((data_dir / "an4" / "wav" / "an4test_clstk").glob("*/*.raw"))[:2]
    fsdd = sorted((data_dir / "fsdd" / "recordings").glob("*_jackson_1*.wav"))[:2]
    assert len(an4) == 2 and len(fsdd) == 2, f"AN4/FSDD audio not found under {data_dir}"
    out = [load_audio(p, raw=AN4_RAW, sample_rate=RATE).channel(0) for p in an4]
    return out + [load_audio(p, sample_rate=RATE).channel(0) for p in fsdd]


def _feed(stream: Stream, audio: np.ndarray, sizes: list[int] | int) -> list:
    events, position, k = [], 0, 0
    while position < audio.shape[0]:
        size = sizes if isinstance(sizes, int) else sizes[k % len(sizes)]
        events += stream.accept(audio[position : position + size])
        position, k = position + size, k + 1
    return events + stream.finish()


def _decided(streamed: torch.Tensor, offline: torch.Tensor, margin: float = 1e-3) -> bool:
    """The greedy choices agree at every step the offline log-probs decide by more than `margin`; True when that
    is every step (then the texts must be equal: an untrained model can leave a near tie to float rounding)."""
    top = offline.topk(2, dim=-1).values
    decided = (top[:, 0] - top[:, 1]) > margin
    assert bool((streamed.argmax(-1) == offline.argmax(-1))[decided].all())
    return bool(decided.all())


def _random_sizes(seed: int) -> list[int]:
    return np.random.default_rng(seed).integers(1, 2 * RATE, 50).tolist()  # 1 sample to 2 s


@pytest.mark.parametrize("unit", available())
def test_streamed_equals_offline_on_real_audio_for_any_chunking(unit: str, real_audio: list[np.ndarray]) -> None:
    rec = _recognizer(unit)
    for index, audio in enumerate(real_audio):
        offline = rec.offline.log_probs(rec.offline.end_padded(audio))  # a stream's end hears END_SILENCE more
        text = rec.offline.decode(offline).text
        for sizes in (80, 1600, 16000, _random_sizes(index)):  # 10 ms, 200 ms, 2 s, random 1 sample .. 2 s
            stream = rec.stream(record=True)
            events = _feed(stream, audio, sizes)
            assert stream.recorded is not None and len(stream.recorded) == 1
            streamed = stream.recorded[0][2]
            assert streamed.shape == offline.shape
            assert float((streamed - offline).abs().max()) < 1e-4, (unit, sizes)
            finals = [e for e in events if e.type == "final"]
            if _decided(streamed, offline):
                assert [e.text for e in finals] == ([text] if text else [])


def test_partials_grow_towards_the_final(real_audio: list[np.ndarray]) -> None:
    rec = _recognizer()
    events = _feed(rec.stream(), real_audio[0], 800)
    partials = [e for e in events if e.type == "partial"]
    finals = [e for e in events if e.type == "final"]
    assert partials and len(finals) == 1
    assert len({p.text for p in partials}) == len(partials)  # only when the text changes
    ends = [p.end for p in partials]
    assert ends == sorted(ends) and ends[-1] <= finals[0].end
    assert finals[0].words and finals[0].words[0].start >= finals[0].start
    d = finals[0].to_dict()
    assert set(d) == {"type", "channel", "text", "start", "end", "words"} and set(d["words"][0]) == {
        "word",
        "start",
        "end",
        "conf",
    }
    assert set(partials[0].to_dict()) == {"type", "channel", "text", "start", "end"}


def test_partials_are_the_greedy_text_of_the_steps_so_far(real_audio: list[np.ndarray]) -> None:
    """Partials grow the best path step by step; each is what greedy_decode gives on all the utterance's
    log-probabilities so far (whatever the chunk size)."""
    from gruasr.decoding.greedy import greedy_decode

    rec = _recognizer(seed=3)
    for chunk in (320, 800, 2000):
        stream = rec.stream()
        seen = 0
        for start in range(0, len(real_audio[1]), chunk):
            for event in stream.accept(real_audio[1][start : start + chunk]):
                if event.type == "partial":
                    so_far = torch.cat(stream._utterance.log_probs)
                    assert event.text == greedy_decode(so_far, rec.offline.bundle.tokens, rec.step_seconds).text
                    seen += 1
        assert seen > 1


def test_endpointed_utterances_equal_offline_segments(real_audio: list[np.ndarray]) -> None:
    """Speech, 1.2 s of silence, speech: two utterances, each streamed exactly as offline recognition of its
    own segment (cut on the 40 ms grid)."""
    silence = np.zeros(int(1.2 * RATE), dtype=np.float32)
    audio = np.concatenate([real_audio[0], silence, real_audio[2]])
    rec = _recognizer(endpoint=EndpointConfig(trailing_silence=0.5, drop_unvoiced=False))
    for sizes in (160, _random_sizes(7)):
        stream = rec.stream(record=True)
        _feed(stream, audio, sizes)
        assert stream.recorded is not None and len(stream.recorded) >= 2
        for first, end, streamed in stream.recorded:
            assert first % 4 == 0
            last = end == stream.recorded[-1][1]
            # frames first..end-1; the last utterance ends the stream: END_SILENCE more
            segment = rec.offline.end_padded(audio[first * 80 :]) if last else audio[first * 80 : end * 80 + 120]
            if streamed.shape[0] == 0:
                continue
            offline = rec.offline.log_probs(segment)
            assert streamed.shape == offline.shape
            assert float((streamed - offline).abs().max()) < 1e-4
        # the cuts fall in the silence: the first utterance ends after the first speech, before the second
        cuts = [end * rec.frame_seconds for _, end, _ in stream.recorded[:-1]]
        speech_end, second_start = real_audio[0].shape[0] / RATE, (real_audio[0].shape[0] + silence.shape[0]) / RATE
        assert any(speech_end < c < second_start for c in cuts)


def test_batched_streams_equal_unbatched(real_audio: list[np.ndarray]) -> None:
    rec = _recognizer("gru", EndpointConfig(trailing_silence=0.4, drop_unvoiced=False))
    pairs = zip(real_audio, real_audio[::-1], strict=True)
    audios = [np.concatenate([a, np.zeros(RATE // 2, np.float32), b]) for a, b in pairs]
    alone = []
    for audio in audios:
        stream = rec.stream(record=True)
        alone.append((_feed(stream, audio, 1000), stream.recorded))
    streams = [rec.stream(record=True) for _ in audios]
    events: list[list] = [[] for _ in audios]
    sizes = [400, 1000, 2400, 640]  # different chunkings, so streams hold different amounts of ready audio
    positions = [0] * len(audios)
    batches_before = rec.batches
    while any(p < a.shape[0] for p, a in zip(positions, audios, strict=True)):
        for i, (stream, audio) in enumerate(zip(streams, audios, strict=True)):
            if positions[i] < audio.shape[0]:
                stream.feed(audio[positions[i] : positions[i] + sizes[i]])
                positions[i] += sizes[i]
        rec.advance(streams)
        for i, stream in enumerate(streams):
            events[i] += stream.events()
    for i, stream in enumerate(streams):
        events[i] += stream.finish()
    assert rec.batches - batches_before < sum(len(a) // s + 1 for a, s in zip(audios, sizes, strict=True))
    for (solo_events, solo_recorded), batched, stream in zip(alone, events, streams, strict=True):
        assert len(stream.recorded) == len(solo_recorded)
        decided = True
        for (f1, e1, lp1), (f2, e2, lp2) in zip(stream.recorded, solo_recorded, strict=True):
            assert (f1, e1) == (f2, e2) and lp1.shape == lp2.shape
            if lp1.numel():
                assert float((lp1 - lp2).abs().max()) < 1e-4
                decided &= _decided(lp1, lp2)
        if decided:
            assert [e.text for e in batched if e.type == "final"] == [e.text for e in solo_events if e.type == "final"]


def test_threads_share_one_recognizer(real_audio: list[np.ndarray]) -> None:
    rec = _recognizer()
    expected = [[e.text for e in _feed(rec.stream(), a, 800) if e.type == "final"] for a in real_audio]
    got: list[list[str]] = [[] for _ in real_audio]

    def work(i: int) -> None:
        got[i] = [e.text for e in _feed(rec.stream(), real_audio[i], 560) if e.type == "final"]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(real_audio))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == expected


def test_other_sample_rates_are_resampled_in_the_stream(real_audio: list[np.ndarray]) -> None:
    rec = _recognizer()
    wide = resample(real_audio[0], RATE, 16000)
    stream = rec.stream(16000, record=True)
    _feed(stream, wide, 3200)
    assert stream.recorded is not None
    streamed = stream.recorded[0][2]
    offline = rec.offline.log_probs(rec.offline.end_padded(resample(wide, 16000, RATE)))
    assert abs(streamed.shape[0] - offline.shape[0]) <= 1
    n = min(streamed.shape[0], offline.shape[0])
    assert float((streamed[: n - 1] - offline[: n - 1]).exp().sub(offline[: n - 1].exp()).abs().mean()) < 1.0
    assert stream.seconds == pytest.approx(real_audio[0].shape[0] / RATE, abs=0.01)


def test_memory_stays_bounded_over_a_long_stream() -> None:
    """Ten minutes of alternating tone bursts and silence: state, buffers and the utterance stay small."""
    rec = _recognizer(endpoint=EndpointConfig(trailing_silence=0.5, max_utterance=3.0))
    stream = rec.stream()
    t = np.arange(RATE) / RATE
    burst = (0.3 * np.sin(2 * np.pi * 440 * t) * np.sin(2 * np.pi * 3 * t)).astype(np.float32)
    second = np.concatenate([burst, np.zeros(RATE, np.float32)])
    largest = 0
    for _ in range(300):  # 300 x 2 s
        stream.accept(second)
        steps = sum(lp.shape[0] for lp in stream._utterance.log_probs)
        largest = max(largest, steps, stream._pending.shape[0], stream._front.buffered_samples // 80)
    assert largest <= 3.0 / 0.04 + 4
    assert stream._context.shape[0] <= 8 and len(stream._cuts) <= 1
    assert stream.seconds == pytest.approx(600.0)


def test_bad_input_and_models_are_refused() -> None:
    with pytest.raises(ConfigError, match="unidirectional"):
        StreamingRecognizer(OfflineRecognizer(_bundle(bidirectional=True)))
    rec = _recognizer()
    stream = rec.stream()
    with pytest.raises(ShapeError, match="mono"):
        stream.accept(np.zeros((2, 100), np.float32))
    with pytest.raises(ShapeError, match="NaN"):
        stream.accept(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ShapeError, match="numbers"):
        stream.accept(np.array(["a", "b"]))
    assert stream.accept(np.zeros(0, np.float32)) == []  # an empty chunk is fine
    stream.finish()
    assert stream.finish() == []
    with pytest.raises(ConfigError, match="after finish"):
        stream.accept(np.zeros(10, np.float32))
    with pytest.raises(ConfigError, match="sample_rate"):
        rec.stream(0)


def test_endpointer_rules(real_audio: list[np.ndarray]) -> None:
    silence = np.zeros(5 * RATE, np.float32)
    ep = Endpointer(EndpointConfig(trailing_silence=1.0), RATE)
    cuts = ep.accept(silence)
    assert [c for c, _ in cuts] == [RATE * k for k in range(1, 6)] and not any(v for _, v in cuts)
    speech = real_audio[0]
    ep = Endpointer(EndpointConfig(trailing_silence=0.5), RATE)
    cuts = ep.accept(np.concatenate([speech, silence[:RATE]]))
    assert cuts and cuts[0][1] and cuts[0][0] > 0.5 * RATE  # speech heard, cut after it, in the silence
    assert ep.speech_frames > 0
    forced = Endpointer(EndpointConfig(trailing_silence=0.5, max_utterance=1.0), RATE)
    tone = (0.5 * np.sin(2 * np.pi * 300 * np.arange(3 * RATE) / RATE)).astype(np.float32)
    assert all(c[0] % RATE == 0 for c in forced.accept(tone))
    disabled = Endpointer(EndpointConfig(enabled=False), RATE)
    assert disabled.accept(silence) == []
    for bad in ({"vad_mode": 4}, {"frame_ms": 25}, {"trailing_silence": 0.0}, {"max_utterance": 0.5}):
        with pytest.raises(ConfigError):
            EndpointConfig(**bad)
    with pytest.raises(ConfigError, match="VAD"):
        Endpointer(EndpointConfig(), 11025)


def _model_dir(tmp_path: Path) -> Path:
    bundle = _bundle()
    return save_model(tmp_path / "uni", bundle.model, bundle.features, bundle.cmvn, bundle.tokens, {})


def test_stream_and_call_commands(tmp_path: Path, real_audio: list[np.ndarray], capsys) -> None:
    model = _model_dir(tmp_path)
    gap = np.zeros(RATE, np.float32)
    left = np.concatenate([real_audio[0], gap, gap, gap, real_audio[2]])
    right = np.concatenate([gap, gap, real_audio[1], gap, gap[: RATE // 2]])
    n = max(left.shape[0], right.shape[0])
    stereo = np.zeros((2, n), np.float32)
    stereo[0, : left.shape[0]], stereo[1, : right.shape[0]] = left, right
    call = tmp_path / "call.wav"
    save_wav(call, stereo, RATE)
    common = ["--model", str(model), "--greedy", "--trailing-silence", "0.5"]

    assert main(["stream", str(call), "--json", "--chunk-ms", "50", *common]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {e["type"] for e in lines} <= {"partial", "final"} and {e["leg"] for e in lines} <= {"A", "B"}
    assert all({"text", "start", "end"} <= set(e) for e in lines)

    assert main(["call", str(call), "--json", *common, "--no-endpoint"]) == 0
    turns = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    offline_rec = OfflineRecognizer(_bundle(), options=DecodeOptions("greedy"))
    rec = StreamingRecognizer(offline_rec, EndpointConfig(enabled=False))
    for leg, audio in (("A", stereo[0]), ("B", stereo[1])):  # one utterance per leg: the offline text
        offline = rec.offline.log_probs(rec.offline.end_padded(audio))
        stream = rec.stream(record=True)
        _feed(stream, audio, 800)
        text = rec.offline.decode(offline).text
        if _decided(stream.recorded[0][2], offline):
            assert [t["text"] for t in turns if t["leg"] == leg] == ([text] if text else [])

    assert main(["call", str(call), "--srt", *common, "--keep-unvoiced"]) == 0
    srt = capsys.readouterr().out
    assert srt.startswith("1\n00:00:") and " --> " in srt
    assert main(["call", str(call), "--vtt", *common]) == 0
    assert capsys.readouterr().out.startswith("WEBVTT")


def test_stream_without_a_streaming_model_says_what_to_do(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setattr("gruasr.streaming.recognizer.BUNDLED_STREAMING", tmp_path / "none")
    wav = tmp_path / "a.wav"
    save_wav(wav, np.zeros((1, RATE), np.float32), RATE)
    assert main(["stream", str(wav)]) != 0
    assert "unidirectional" in capsys.readouterr().err


def test_the_bundled_streaming_model_transcribes_a_real_call(tmp_path: Path, data_dir: Path, capsys) -> None:
    """`gruasr call` with no --model uses the bundled unidirectional model: a stereo call of real AN4 test
    speakers (two utterances per leg, taking turns) comes back as time-ordered turns, one per utterance, with the
    right legs, and close to the words said."""
    texts, _ = parse_transcription(data_dir / "an4" / "etc" / "an4_test.transcription")
    paths = sorted((data_dir / "an4" / "wav" / "an4test_clstk").glob("*/*.raw"))
    chosen = [paths[i] for i in (0, 20, 40, 60)]  # four speakers
    audio = [load_audio(p, raw=AN4_RAW, sample_rate=RATE).channel(0) for p in chosen]
    gap = np.zeros(int(1.5 * RATE), np.float32)
    legs: dict[str, list[np.ndarray]] = {"A": [], "B": []}
    starts: list[tuple[float, str, str]] = []  # (start, leg, reference)
    position = gap.shape[0]
    for k, (path, samples) in enumerate(zip(chosen, audio, strict=True)):
        leg = "AB"[k % 2]
        own = sum(part.shape[0] for part in legs[leg])
        legs[leg].append(np.zeros(position - own, np.float32))  # silence until this turn
        legs[leg].append(samples)
        starts.append((position / RATE, leg, texts[path.stem]))
        position += samples.shape[0] + gap.shape[0]
    n = position
    stereo = np.zeros((2, n), np.float32)
    for row, leg in enumerate("AB"):
        joined = np.concatenate(legs[leg])
        stereo[row, : joined.shape[0]] = joined
    call = tmp_path / "call.wav"
    save_wav(call, stereo, RATE)

    assert main(["call", str(call), "--json"]) == 0
    turns = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [t["start"] for t in turns] == sorted(t["start"] for t in turns)
    assert [t["leg"] for t in turns] == [leg for _, leg, _ in starts]
    counts = ErrorCounts()
    for turn, (start, _, reference) in zip(turns, starts, strict=True):
        assert start - 0.1 <= turn["start"] and turn["end"] <= start + 10.0
        assert turn["words"] and all(0.0 <= w["conf"] <= 1.0 for w in turn["words"])
        counts.add(reference, turn["text"])
    assert counts.wer < 0.5, f"WER {counts.wer:.2%} on {[t['text'] for t in turns]}"


def test_a_closed_pipe_stops_the_stream_quietly() -> None:
    """`gruasr stream FILE --json | head -1`: no traceback when the reader leaves."""
    sample = Path(__file__).resolve().parents[2] / "src" / "gruasr" / "samples" / "call.wav"
    command = [sys.executable, "-m", "gruasr.cli.main", "stream", str(sample), "--json", "--partials"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    first = json.loads(process.stdout.readline())
    assert first["type"] in ("partial", "final")
    process.stdout.close()
    error = process.stderr.read().decode()
    assert process.wait(timeout=120) == 141 and "Traceback" not in error, error
