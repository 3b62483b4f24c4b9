"""The streaming step graph: chunk after chunk (any chunking, many streams batched in one run) it gives the
whole-utterance graph's log-probabilities, and the ONNX streaming recognizer gives the torch one's events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gruasr.recognizer import OfflineRecognizer
from gruasr.runtime import OnnxModel, OnnxRecognizer, OnnxStreamingRecognizer
from gruasr.streaming import EndpointConfig, StreamingRecognizer

TOLERANCE = 1e-4  # float rounding of different batch shapes; ~1e-5 measured


def run_chunks(model: OnnxModel, feats: list[np.ndarray], chunkings: list[list[int]]) -> list[np.ndarray]:
    """Feed each utterance's frames through streaming.onnx in its own chunk sizes (frames, multiples of 4 except
    an utterance's last), all utterances with work left batched in one run per round."""
    contexts1 = [np.zeros((2, model.dim), np.float32) for _ in feats]
    contexts2 = [np.zeros((2, model.channels), np.float32) for _ in feats]
    states = [np.zeros((model.layers, model.hidden), np.float32) for _ in feats]
    done = [0] * len(feats)
    outs: list[list[np.ndarray]] = [[] for _ in feats]
    chunk_index = [0] * len(feats)
    while True:
        work = []
        for i, f in enumerate(feats):
            if done[i] < f.shape[0]:
                sizes = chunkings[i]
                n = min(sizes[chunk_index[i] % len(sizes)], f.shape[0] - done[i])
                work.append((i, n))
                chunk_index[i] += 1
        if not work:
            return [np.concatenate(o) for o in outs]
        width = -(-max(n for _, n in work) // 4) * 4
        fbank = np.zeros((len(work), width, model.dim), np.float32)
        for row, (i, n) in enumerate(work):
            fbank[row, :n] = feats[i][done[i] : done[i] + n]
        inputs = {
            "fbank": fbank,
            "lengths": np.array([n for _, n in work], np.int64),
            "context1": np.stack([contexts1[i] for i, _ in work]),
            "context2": np.stack([contexts2[i] for i, _ in work]),
            "state": np.stack([states[i] for i, _ in work], axis=1),
        }
        log_probs, steps, c1, c2, state = model.streaming.run(None, inputs)
        for row, (i, n) in enumerate(work):
            outs[i].append(log_probs[row, : steps[row]])
            contexts1[i], contexts2[i], states[i] = c1[row], c2[row], state[:, row]
            done[i] += n


@pytest.fixture(scope="module")
def model(exported: dict[str, Path]) -> OnnxModel:
    return OnnxModel.load(exported["telephone-streaming"])


@pytest.fixture(scope="module")
def feats(model: OnnxModel, an4_speech) -> list[np.ndarray]:
    return [model.fbank(samples) for _, samples, _ in an4_speech[:4]]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.lists(st.integers(1, 12).map(lambda k: 4 * k), min_size=1, max_size=5), min_size=4, max_size=4))
def test_any_chunking_of_many_batched_streams_equals_the_whole_utterance(model, feats, chunkings) -> None:
    streamed = run_chunks(model, feats, chunkings)
    for f, got in zip(feats, streamed, strict=True):
        expected = model.log_probs(f)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=TOLERANCE)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(1, 4000), min_size=1, max_size=6))
def test_onnx_stream_of_any_sample_chunks_equals_offline(model, an4_speech, sizes: list[int]) -> None:
    """The streaming recognizer (endpointing off: one utterance) over sample chunks of any sizes."""
    asr = OnnxStreamingRecognizer.load(model.path, endpoint=EndpointConfig(enabled=False))
    _, samples, _ = an4_speech[1]
    stream = asr.stream(8000, record=True)
    position, k = 0, 0
    while position < len(samples):
        stream.accept(samples[position : position + sizes[k % len(sizes)]])
        position += sizes[k % len(sizes)]
        k += 1
    finals = [e for e in stream.finish() if e.type == "final"]
    assert stream.recorded is not None and len(stream.recorded) == 1
    expected = asr.offline.log_probs(asr.offline.end_padded(samples))  # the stream hears END_SILENCE after it
    np.testing.assert_allclose(stream.recorded[0][2], expected, atol=TOLERANCE)
    assert " ".join(e.text for e in finals) == asr.offline.decode(expected).text


@pytest.mark.parametrize("second_pass", [False, True])
def test_onnx_streaming_gives_the_torch_engines_events(exported, an4_speech, second_pass: bool) -> None:
    """100 ms chunks, endpointing on, several legs advanced together: the same partials and finals; with two
    passes (each final from the default model, torch's or its export) too."""
    torch.set_num_threads(1)
    torch_second = OfflineRecognizer.load() if second_pass else None
    onnx_second = OnnxRecognizer.load(exported["telephone"]) if second_pass else None
    engines = [
        StreamingRecognizer.load(second_pass=torch_second),
        OnnxStreamingRecognizer.load(exported["telephone-streaming"], second_pass=onnx_second),
    ]
    speech = [samples for _, samples, _ in an4_speech[:4]]
    results = []
    for asr in engines:
        streams = [asr.stream(8000, channel=i) for i in range(len(speech))]
        events: list[list[tuple[str, str, float]]] = [[] for _ in streams]
        longest = max(len(x) for x in speech)
        for start in range(0, longest + 800, 800):
            for s, x in zip(streams, speech, strict=True):
                if not s.finished:
                    s.feed(x[start : start + 800], last=start + 800 >= len(x))
            asr.advance(streams)  # type: ignore[arg-type]
            for i, s in enumerate(streams):
                events[i] += [(e.type, e.text, round(e.start, 2)) for e in s.events()]
        results.append(events)
    assert results[0] == results[1]
    assert all(any(kind == "final" for kind, _, _ in leg) for leg in results[1])
