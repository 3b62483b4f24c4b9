"""Redaction in the server (`redact = ["card"]`): a card number read by an FSDD speaker in four groups, with
pauses that make the endpointer cut it into several finals, leaves the process as `[card]` and never as digits:
in Vosk replies (partials and finals), in a call's events (server-sent events, the JSON Lines file, the webhook)
and in REST responses."""

from __future__ import annotations

import http.server
import json
import socket
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest

from gruasr.redact import CARD, digit_string
from gruasr.server.audiosocket import KIND_AUDIO, KIND_HANGUP, KIND_UUID, message
from gruasr.streaming import StreamingRecognizer
from tests.server.conftest import RATE, pcm16, running, wav
from tests.server.test_calls import _Events, _Hook
from tests.server.vosk_client import lockstep
from tests.test_redact import CARD_NUMBER, fsdd_number


def _digits(text: str) -> list[str]:
    return [w for w in text.split() if digit_string(w) is not None]


@pytest.fixture(scope="module")
def card_audio(data_dir: Path) -> np.ndarray:
    samples = fsdd_number(data_dir, CARD_NUMBER, group=4, gap=1.5)
    return np.round(np.clip(samples, -1, 32767 / 32768) * 32768).astype(np.float32) / 32768


def test_the_model_hears_the_digits_and_cuts_them_into_several_finals(
    recognizer: StreamingRecognizer, card_audio: np.ndarray
) -> None:
    """The control: without redaction the streamed finals spell the number, over more than one final."""
    stream = recognizer.stream(RATE)
    finals = [e.text for e in stream.accept(card_audio) + stream.finish() if e.type == "final" and e.text]
    assert len(finals) > 1
    assert "".join(digit_string(w) or "" for w in " ".join(finals).split()) == CARD_NUMBER


def test_no_digit_of_a_card_leaves_the_server_by_any_path(
    recognizer: StreamingRecognizer, card_audio: np.ndarray, tmp_path: Path
) -> None:
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    out = tmp_path / "calls"
    call_id = uuid.UUID("87654321-4321-8765-4321-876543218765")
    # the call is sent faster than real time: room for all of it in the backlog
    settings = {"redact": ("card",), "audiosocket_port": 0, "output": str(out), "max_backlog_seconds": 60.0,
                "webhook": f"http://127.0.0.1:{hook.server_port}/"}  # fmt: skip
    try:
        with running(recognizer, **settings) as server:
            # Vosk: every reply, partials included
            replies = lockstep(server.ws, pcm16(card_audio), {"sample_rate": RATE, "words": 1}, chunk=3200)
            texts = [r.get("partial", r.get("text", "")) for r in replies]
            assert not any(_digits(t) for t in texts), texts
            assert CARD in " ".join(r.get("text", "") for r in replies)
            words = [w["word"] for r in replies for w in r.get("result", [])]
            assert CARD in words and not _digits(" ".join(words))
            # a call over AudioSocket: events, file and webhook
            port = server.app.state.audiosocket_port
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(message(KIND_UUID, call_id.bytes))
                events = _Events(f"{server.url}/v1/calls/{call_id}/events")
                events.start()
                pcm = pcm16(card_audio)
                for i in range(0, len(pcm), 320):
                    sock.sendall(message(KIND_AUDIO, pcm[i : i + 320]))
                sock.sendall(message(KIND_HANGUP))
                assert sock.recv(1) == b""
            events.join(30)
            deadline = time.monotonic() + 10
            while not any(CARD in e["text"] for e in _Hook.received) and time.monotonic() < deadline:
                time.sleep(0.05)
            # REST: the whole file
            path = wav(tmp_path / "card.wav", card_audio)
            client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
            with path.open("rb") as f:
                verbose = client.audio.transcriptions.create(
                    model="gruasr", file=f, response_format="verbose_json", timestamp_granularities=["word"]
                )
    finally:
        hook.shutdown()
    lines = [json.loads(line) for line in (out / f"{call_id}.jsonl").read_text().splitlines()]
    channels: dict[str, list[dict[str, Any]]] = {
        "file": lines,
        "events": [e for e in events.events if e["type"] in ("partial", "final")],
        "webhook": list(_Hook.received),
    }
    for name, items in channels.items():
        assert items, name
        assert not any(_digits(e["text"]) for e in items), (name, [e["text"] for e in items])
        assert not any(_digits(" ".join(w["word"] for w in e.get("words", []))) for e in items), name
        assert CARD in " ".join(e["text"] for e in items if e["type"] == "final"), name
    assert CARD in verbose.text and not _digits(verbose.text)
    assert CARD in [w.word for w in verbose.words or []]
