"""Phone calls over the wire: a recorded stereo call replayed in real time as Twilio media-stream frames, and an
AudioSocket call over TCP; their transcripts arrive over server-sent events, in the per-call JSON Lines file and
at a webhook, with the legs and order of `gruasr call --json` on the same audio."""

from __future__ import annotations

import base64
import http.server
import json
import socket
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.sync.client import connect

from gruasr.audio.g711 import lin2ulaw, ulaw2lin
from gruasr.server.audiosocket import KIND_AUDIO, KIND_DTMF, KIND_HANGUP, KIND_UUID, message
from gruasr.streaming import StreamingRecognizer
from gruasr.streaming.calls import call_transcript
from tests.server.conftest import RATE, Utterance, pcm16, running, wav

FRAME = 160  # 20 ms of 8 kHz mu-law, as Twilio sends


class _Events(threading.Thread):
    """Reads GET /v1/calls/{id}/events (server-sent events) until the call's "end" event."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.events: list[dict[str, Any]] = []

    def run(self) -> None:
        deadline = time.monotonic() + 30
        while True:  # the call exists once the server has its start message
            try:
                response = urllib.request.urlopen(self.url, timeout=60)
                break
            except urllib.error.HTTPError:
                if time.monotonic() > deadline:
                    return
                time.sleep(0.05)
        with response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            for raw in response:
                line = raw.decode().strip()
                if line.startswith("data: "):
                    item = json.loads(line[6:])
                    self.events.append(item)
                    if item["type"] == "end":
                        return


def _stereo_call(an4: list[Utterance]) -> np.ndarray:
    """Leg A (caller) says one utterance, then leg B (agent, another speaker) another: (2, n) on the mu-law grid."""
    a, b = an4[0].samples, an4[2].samples
    gap = RATE // 2
    n = gap + len(a) + 2 * gap + len(b) + 2 * gap
    call = np.zeros((2, n), np.float32)
    call[0, gap : gap + len(a)] = a
    start_b = gap + len(a) + 2 * gap
    call[1, start_b : start_b + len(b)] = b
    return ulaw2lin(lin2ulaw(np.frombuffer(pcm16(call.reshape(-1)), "<i2"))).reshape(2, n) / 32768.0


def _finals(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["leg"], e["text"]) for e in items if e["type"] == "final"]


def test_twilio_media_stream_replayed_in_real_time(
    recognizer: StreamingRecognizer, an4: list[Utterance], tmp_path: Path
) -> None:
    audio = _stereo_call(an4)
    expected = [(e.leg, e.text) for e in call_transcript(recognizer, wav(tmp_path / "call.wav", audio))]
    assert [leg for leg, _ in expected] == ["A", "B"]
    codes = lin2ulaw(np.round(audio * 32768).astype(np.int32))
    call_sid = "CA0123456789abcdef"
    out = tmp_path / "calls"
    with running(recognizer, output=str(out)) as server, connect(f"{server.ws}/media", compression=None) as ws:
        events = _Events(f"{server.url}/v1/calls/{call_sid}/events")
        ws.send(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        start = {"streamSid": "MZ1", "accountSid": "AC1", "callSid": call_sid, "tracks": ["inbound", "outbound"],
                 "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
                 "customParameters": {}}  # fmt: skip
        ws.send(json.dumps({"event": "start", "sequenceNumber": "1", "start": start, "streamSid": "MZ1"}))
        events.start()
        began, seq = time.perf_counter(), 2
        for k, i in enumerate(range(0, codes.shape[1], FRAME)):
            for track, row in (("inbound", 0), ("outbound", 1)):
                payload = base64.b64encode(codes[row, i : i + FRAME].tobytes()).decode()
                media = {"track": track, "chunk": str(k + 1), "timestamp": str(i // 8), "payload": payload}
                ws.send(json.dumps({"event": "media", "sequenceNumber": str(seq), "streamSid": "MZ1", "media": media}))
                seq += 1
            if k == 10:
                dtmf = {"track": "inbound_track", "digit": "7"}
                ws.send(json.dumps({"event": "dtmf", "streamSid": "MZ1", "sequenceNumber": str(seq), "dtmf": dtmf}))
            ahead = (i + FRAME) / RATE - (time.perf_counter() - began)
            if ahead > 0:
                time.sleep(ahead)  # real time: 20 ms frames as a live call sends them
        ws.send(json.dumps({"event": "stop", "sequenceNumber": str(seq), "streamSid": "MZ1",
                            "stop": {"accountSid": "AC1", "callSid": call_sid}}))  # fmt: skip
        events.join(30)
    sse = events.events
    assert sse and sse[-1]["type"] == "end"
    assert _finals(sse) == expected
    assert any(e["type"] == "partial" for e in sse)
    assert [e for e in sse if e["type"] == "dtmf"] == [
        {"call": call_sid, "type": "dtmf", "channel": 0, "leg": "A", "digit": "7", "time": 0.22}
    ]
    lines = [json.loads(line) for line in (out / f"{call_sid}.jsonl").read_text().splitlines()]
    assert _finals(lines) == expected
    assert all(e["call"] == call_sid and e["words"] for e in lines if e["type"] == "final")
    assert [e["channel"] for e in lines if e["type"] == "final"] == [0, 1]


class _Hook(http.server.BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []

    def do_POST(self) -> None:  # noqa: N802 -- the http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("ending", ["hangup", "closed socket"])
def test_audiosocket_call_over_tcp(
    recognizer: StreamingRecognizer, an4: list[Utterance], tmp_path: Path, ending: str
) -> None:
    """UUID, 320-byte signed-linear frames of a real utterance, a DTMF digit, then a hangup message or just a
    closed socket: the final equals the same audio streamed in process; it reaches the call's file, its events
    and the webhook."""
    utt = an4[4]
    stream = recognizer.stream(RATE, "A")
    expected = [e.text for e in stream.accept(utt.samples) + stream.finish() if e.type == "final"]
    assert expected
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    _Hook.received = []
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    call_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    out = tmp_path / "calls"
    try:
        settings = {"audiosocket_port": 0, "output": str(out), "webhook": f"http://127.0.0.1:{hook.server_port}/"}
        with running(recognizer, **settings) as server:
            port = server.app.state.audiosocket_port
            with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
                sock.sendall(message(KIND_UUID, call_id.bytes))
                events = _Events(f"{server.url}/v1/calls/{call_id}/events")
                events.start()
                pcm = utt.pcm + bytes(RATE)  # and half a second of silence
                for i in range(0, len(pcm), 320):
                    sock.sendall(message(KIND_AUDIO, pcm[i : i + 320]))
                sock.sendall(message(KIND_DTMF, b"5"))
                if ending == "hangup":
                    sock.sendall(message(KIND_HANGUP))
                    assert sock.recv(1) == b""  # the server closes when the call is over
            events.join(30)
            deadline = time.monotonic() + 10
            while not _Hook.received and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        hook.shutdown()
    lines = [json.loads(line) for line in (out / f"{call_id}.jsonl").read_text().splitlines()]
    assert [e["text"] for e in lines if e["type"] == "final"] == expected
    assert [e["digit"] for e in lines if e["type"] == "dtmf"] == ["5"]
    assert [e["text"] for e in events.events if e["type"] == "final"] == expected
    assert events.events[-1]["type"] == "end"
    assert [e["text"] for e in _Hook.received] == expected and _Hook.received[0]["call"] == str(call_id)
