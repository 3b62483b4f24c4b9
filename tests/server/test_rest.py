"""The OpenAI-compatible REST endpoint with the official `openai` client (base_url pointed at the server): json,
verbose_json with words, srt; OpenAI-style errors; health, readiness and Prometheus metrics."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

from gruasr.recognizer import OfflineRecognizer
from gruasr.streaming import StreamingRecognizer
from tests.server.conftest import RATE, Running, Utterance, running, wav
from tests.server.vosk_client import lockstep


@pytest.fixture
def client(server: Running) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)


def _expected(offline: OfflineRecognizer, path: Path) -> str:
    return " ".join(r.text for r in offline.transcribe_file(path) if r.text)


def test_openai_client_json_verbose_and_srt(
    client: openai.OpenAI, server: Running, an4: list[Utterance], tmp_path: Path
) -> None:
    """json gives the text the server's model gives the file offline; verbose_json with word timestamps gives
    the same words with times inside the audio; srt gives one cue per segment with the same text."""
    gap = np.zeros(RATE, np.float32)
    path = wav(tmp_path / "call.wav", np.concatenate([gap, an4[2].samples, gap, gap, an4[3].samples, gap]))
    offline = server.app.state.engine.offline
    assert offline.model is not server.app.state.engine.recognizer.model  # the bundled offline model
    assert offline.model.config.bidirectional
    expected = _expected(offline, path)
    assert expected

    with path.open("rb") as f:
        plain = client.audio.transcriptions.create(model="whisper-1", file=f)
    assert plain.text == expected

    with path.open("rb") as f:
        verbose = client.audio.transcriptions.create(
            model="gruasr", file=f, response_format="verbose_json", timestamp_granularities=["word"]
        )
    assert verbose.text == expected
    assert verbose.duration == pytest.approx(path.stat().st_size / 2 / RATE, abs=0.01)
    assert verbose.words is not None and " ".join(w.word for w in verbose.words) == expected
    assert all(0 <= w.start <= w.end <= verbose.duration for w in verbose.words)
    assert verbose.segments is not None and len(verbose.segments) == 2  # two utterances, 2 s apart
    assert " ".join(s.text for s in verbose.segments) == expected

    with path.open("rb") as f:
        srt = client.audio.transcriptions.create(model="gruasr", file=f, response_format="srt")
    blocks = [b.splitlines() for b in str(srt).strip().split("\n\n")]
    assert [b[0] for b in blocks] == ["1", "2"]
    assert all(" --> " in b[1] and "," in b[1] for b in blocks)
    assert " ".join(" ".join(b[2:]) for b in blocks) == expected


# -- docs/serving.md: the REST example table, one test per row ---------------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "serving.md"


def _table_rows() -> list[str]:
    section = DOCS.read_text(encoding="utf-8").split("### REST examples", 1)[1].split("\n#", 1)[0]
    return re.findall(r"^\| `([a-z0-9_-]+)` \|", section, flags=re.MULTILINE)


@pytest.fixture(scope="module")
def rest(recognizer: StreamingRecognizer, an4: list[Utterance], tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A server, its client, a mono recording and a stereo call (leg B answers leg A), and their offline texts."""
    folder = tmp_path_factory.mktemp("rest")
    gap = np.zeros(RATE // 2, np.float32)
    mono = wav(folder / "mono.wav", np.concatenate([gap, an4[4].samples, gap]))
    a, b = an4[0].samples, an4[2].samples
    stereo = np.zeros((2, len(a) + len(b) + 3 * RATE), np.float32)
    stereo[0, RATE // 2 : RATE // 2 + len(a)] = a
    stereo[1, len(a) + RATE * 2 : len(a) + RATE * 2 + len(b)] = b
    call = wav(folder / "call.wav", stereo)
    with running(recognizer) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)
        yield client, mono, call, _expected(server.app.state.engine.offline, mono), folder


def _create(client: openai.OpenAI, path: Path, **kwargs: Any) -> Any:
    with path.open("rb") as f:
        return client.audio.transcriptions.create(model="gruasr", file=f, **kwargs)


def row_json(client: openai.OpenAI, mono: Path, call: Path, text: str, folder: Path) -> None:
    assert _create(client, mono).text == text


def row_text(client: openai.OpenAI, mono: Path, call: Path, text: str, folder: Path) -> None:
    assert str(_create(client, mono, response_format="text")) == text + "\n"


def row_srt(client: openai.OpenAI, mono: Path, call: Path, text: str, folder: Path) -> None:
    lines = str(_create(client, mono, response_format="srt")).splitlines()
    assert lines[0] == "1" and re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", lines[1])
    assert lines[2] == text


def row_vtt(client: openai.OpenAI, mono: Path, call: Path, text: str, folder: Path) -> None:
    lines = str(_create(client, mono, response_format="vtt")).splitlines()
    assert lines[:2] == ["WEBVTT", ""]
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} --> \d\d:\d\d:\d\d\.\d{3}", lines[2]) and lines[3] == text


def row_verbose_json(client: openai.OpenAI, mono: Path, call: Path, text: str, folder: Path) -> None:
    out = _create(client, mono, response_format="verbose_json", timestamp_granularities=["word"])
    assert (out.task, out.language, out.text) == ("transcribe", "english", text)
    assert [w.word for w in out.words] == text.split()
    assert all(0.0 <= w.confidence <= 1.0 for w in out.words)  # type: ignore[attr-defined]


def row_stereo(client: openai.OpenAI, mono: Path, call: Path, text: str, folder: Path) -> None:
    out = _create(client, call, response_format="verbose_json")
    legs = [(s.channel, s.leg) for s in out.segments]  # type: ignore[attr-defined]
    assert legs == [(0, "A"), (1, "B")]
    assert [s.start for s in out.segments] == sorted(s.start for s in out.segments)
    assert out.words is None  # words only when asked for


def row_bad_audio(client: openai.OpenAI, mono: Path, call: Path, text: str, folder: Path) -> None:
    bad = folder / "not-audio.wav"
    bad.write_bytes(b"RIFF....WAVEnot really")
    with pytest.raises(openai.BadRequestError) as caught:
        _create(client, bad)
    body = caught.value.body
    assert isinstance(body, dict) and body["type"] == "invalid_request_error" and body["code"] == "bad_audio"
    assert str(folder) not in body["message"] and "gruasr-upload" not in body["message"]


def row_bad_format(client: openai.OpenAI, mono: Path, call: Path, text: str, folder: Path) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        _create(client, mono, response_format="mp3")
    assert isinstance(caught.value.body, dict) and caught.value.body["param"] == "response_format"


ROWS = {"json": row_json, "text": row_text, "srt": row_srt, "vtt": row_vtt, "verbose_json": row_verbose_json,
        "stereo": row_stereo, "bad-audio": row_bad_audio, "bad-format": row_bad_format}  # fmt: skip


def test_every_rest_table_row_has_a_test() -> None:
    assert sorted(_table_rows()) == sorted(ROWS)


@pytest.mark.parametrize("case", sorted(ROWS))
def test_rest_table_row(case: str, rest: tuple[openai.OpenAI, Path, Path, str, Path]) -> None:
    ROWS[case](*rest)


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_health_readiness_and_metrics(server: Running, an4: list[Utterance]) -> None:
    """/healthz and /readyz answer 200; after one Vosk session /metrics counts it, its audio and its ticks, and
    lists every refusal reason (at zero); a bad message counts as a refusal."""
    assert _get(f"{server.url}/healthz") == (200, json.dumps({"status": "ok"}, separators=(",", ":")))
    status, body = _get(f"{server.url}/readyz")
    assert status == 200 and json.loads(body)["status"] == "ready"
    lockstep(server.ws, an4[0].pcm)
    _, text = _get(f"{server.url}/metrics")
    metrics = {
        line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line and not line.startswith("#")
    }
    assert metrics['gruasr_sessions_total{protocol="vosk"}'] == 1
    assert metrics['gruasr_audio_seconds_total{protocol="vosk"}'] == pytest.approx(len(an4[0].samples) / RATE)
    assert metrics["gruasr_tick_seconds_count"] >= 1
    assert metrics["gruasr_final_latency_seconds_count"] >= 1
    assert metrics['gruasr_sessions_active{protocol="vosk"}'] == 0
    assert metrics['gruasr_refusals_total{reason="capacity"}'] == 0
    from websockets.sync.client import connect

    with connect(server.ws, compression=None) as ws:
        ws.send("not json")
        ws.recv(timeout=30)
    _, text = _get(f"{server.url}/metrics")
    assert 'gruasr_refusals_total{reason="bad_request"} 1.0' in text
