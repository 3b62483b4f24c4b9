"""The Vosk WebSocket protocol against real clients on loopback: the project's lock-step client on real AN4 audio
gives what `gruasr stream` gives; the `ws` subprotocol is accepted and no extension is sent unasked; every row of
docs/serving.md's Vosk example table is a test; two clients at once get their own results."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from gruasr.cli.main import main
from gruasr.decoding.grammar import PhraseGrammar
from gruasr.errors import ConfigError
from gruasr.server.config import ServerConfig
from gruasr.streaming import StreamingRecognizer
from tests.server.conftest import RATE, Running, Utterance, pcm16, running, wav
from tests.server.vosk_client import closed, final_text, finals, lockstep

DOCS = Path(__file__).resolve().parents[2] / "docs" / "serving.md"


def _call_audio(an4: list[Utterance]) -> np.ndarray:
    """Two utterances of one speaker with 1.5 s of silence between: the server must find the endpoint."""
    gap = np.zeros(int(1.5 * RATE), np.float32)
    return np.concatenate([gap[: RATE // 2], an4[0].samples, gap, an4[1].samples, gap[: RATE // 2]])


def test_lockstep_client_gets_what_gruasr_stream_gives(
    server: Running, an4: list[Utterance], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Vosk test client's pattern (WAV file bytes, header included, 8000-byte chunks, one reply read per
    chunk, eof) on real AN4 speech: the finals, their words and times equal `gruasr stream --json` on the file."""
    path = wav(tmp_path / "two.wav", _call_audio(an4))
    replies = lockstep(server.ws, path.read_bytes(), {"sample_rate": RATE, "words": 1})
    assert main(["stream", str(path), "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = [e for e in events if e["type"] == "final"]
    got = finals(replies)
    assert len(expected) == 2, expected  # the two utterances, cut at the pause
    assert [r["text"] for r in got if r["text"]] == [e["text"] for e in expected]
    served_words = [(w["word"], w["start"], w["end"]) for r in got for w in r.get("result", [])]
    stream_words = [(w["word"], w["start"], w["end"]) for e in expected for w in e["words"]]
    assert served_words == stream_words
    assert len(replies) == -(-path.stat().st_size // 8000) + 1  # exactly one reply per message
    assert all(set(r) == {"partial"} for r in replies if r not in got)


def test_ws_subprotocol_accepted_and_no_extension_unasked(server: Running) -> None:
    """A PBX module offers the `ws` subprotocol and no extension: it gets `ws` back and no
    Sec-WebSocket-Extensions header; a client offering permessage-deflate is not answered with it either."""
    with connect(server.ws, subprotocols=["ws"], compression=None) as ws:
        assert ws.subprotocol == "ws"
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
    with connect(server.ws, compression="deflate") as ws:  # offers permessage-deflate
        assert ws.subprotocol is None
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
        ws.send('{"eof" : 1}')
        assert json.loads(ws.recv(timeout=30)) == {"text": ""}


def test_two_clients_at_once_get_their_own_results(
    server: Running, an4: list[Utterance], recognizer: StreamingRecognizer
) -> None:
    """Two speakers streamed at the same time through one server (batched in the same ticks): each client's
    final equals its own audio streamed in process, nothing of the other's."""
    a, b = an4[0], an4[2]
    assert a.speaker != b.speaker
    results: dict[str, str] = {}

    def client(utt: Utterance) -> None:
        results[utt.id] = final_text(lockstep(server.ws, utt.pcm, chunk=1600))

    threads = [threading.Thread(target=client, args=(u,)) for u in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for utt in (a, b):
        stream = recognizer.stream(RATE)
        expected = " ".join(e.text for e in stream.accept(utt.samples) + stream.finish() if e.type == "final")
        assert results[utt.id] == expected
    assert results[a.id] != results[b.id]


# -- docs/serving.md: the Vosk example table, one test per row ----------------------------------------------------


def _table_rows() -> list[str]:
    """The `case` column of the table under "### Vosk protocol examples"."""
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("### Vosk protocol examples", 1)[1].split("\n#", 1)[0]
    return re.findall(r"^\| `([a-z0-9-]+)` \|", section, flags=re.MULTILINE)


def _session(server: Running, messages: list[Any]) -> tuple[list[dict[str, Any]], int | None]:
    """Send each message (dict: JSON text; bytes: audio), read one reply per message but the config (a message
    after which the server closes gets none); then the close code."""
    replies = []
    with connect(server.ws, compression=None) as ws:
        for m in messages:
            try:
                ws.send(json.dumps(m) if isinstance(m, dict) else m)
            except Exception:  # the server closed after an error
                break
            if isinstance(m, dict) and "config" in m:
                continue
            try:
                replies.append(json.loads(ws.recv(timeout=30)))
            except Exception:
                break
        try:  # what the server sent before closing (an error after a message that has no reply)
            while True:
                replies.append(json.loads(ws.recv(timeout=30)))
        except Exception:
            return replies, ws.close_code


def _chunks(pcm: bytes, size: int = 8000) -> list[bytes]:
    return [pcm[i : i + size] for i in range(0, len(pcm), size)]


EOF_ = {"eof": 1}


def case_no_config(server: Running, an4: list[Utterance]) -> None:
    replies, code = _session(server, [*_chunks(an4[0].pcm), EOF_])
    assert all(set(r) == {"partial"} for r in replies[:-1])
    assert set(replies[-1]) == {"text"} and replies[-1]["text"]
    assert code == 1000


def case_words(server: Running, an4: list[Utterance]) -> None:
    replies, _ = _session(server, [{"config": {"words": 1}}, *_chunks(an4[0].pcm), EOF_])
    final = replies[-1]
    assert list(final) == ["result", "text"]
    assert all(list(w) == ["conf", "end", "start", "word"] for w in final["result"])
    assert " ".join(w["word"] for w in final["result"]) == final["text"]
    assert all(0 <= w["conf"] <= 1 and w["start"] <= w["end"] for w in final["result"])


def case_silence(server: Running, an4: list[Utterance]) -> None:
    replies, code = _session(server, [{"config": {"words": 1}}, bytes(16000), EOF_])
    assert replies == [{"partial": ""}, {"text": ""}] and code == 1000


def case_alternatives(server: Running, an4: list[Utterance]) -> None:
    replies, _ = _session(server, [{"config": {"max_alternatives": 3}}, *_chunks(an4[0].pcm), EOF_])
    alternatives = replies[-1]["alternatives"]
    assert list(replies[-1]) == ["alternatives"] and 1 <= len(alternatives) <= 3
    assert all(list(a) == ["confidence", "text"] for a in alternatives)
    confidences = [a["confidence"] for a in alternatives]
    assert confidences == sorted(confidences, reverse=True) and 0 < sum(confidences) <= 1.0 + 1e-6
    assert len({a["text"] for a in alternatives}) == len(alternatives)
    plain, _ = _session(server, [*_chunks(an4[0].pcm), EOF_])
    assert alternatives[0]["text"] == plain[-1]["text"]


def case_reset(server: Running, an4: list[Utterance]) -> None:
    first, second = an4[0], an4[1]
    messages = [{"config": {"words": 1}}, *_chunks(first.pcm), {"reset": 1}, *_chunks(second.pcm), EOF_]
    replies, code = _session(server, messages)
    reset_reply = replies[len(_chunks(first.pcm))]
    assert "text" in reset_reply and reset_reply["text"]
    last = replies[-1]
    assert last["text"] and code == 1000
    assert last["result"][0]["start"] >= len(first.samples) / RATE  # the clock goes on after a reset


def case_phrase_list(server: Running, an4: list[Utterance]) -> None:
    phrases = ["yes", "no", "operator", "rubout", "enter", "one", "two", "three", "four", "five", "six", "seven",
               "two three", "[unk]"]  # fmt: skip
    replies, _ = _session(server, [{"config": {"phrase_list": phrases}}, *_chunks(an4[0].pcm), EOF_])
    text = replies[-1]["text"]
    assert text and PhraseGrammar(p for p in phrases if p != "[unk]").accepts(text)  # a sequence of the phrases


def case_wav_header(server: Running, an4: list[Utterance], tmp_path: Path) -> None:
    path = wav(tmp_path / "a.wav", an4[0].samples)
    with_header, _ = _session(server, [*_chunks(path.read_bytes()), EOF_])
    bare, _ = _session(server, [*_chunks(an4[0].pcm), EOF_])
    assert path.read_bytes()[44:] == an4[0].pcm
    assert with_header[-1] == bare[-1]


def case_odd_chunks(server: Running, an4: list[Utterance]) -> None:
    odd, _ = _session(server, [*_chunks(an4[0].pcm, 4001), EOF_])
    even, _ = _session(server, [*_chunks(an4[0].pcm), EOF_])
    assert odd[-1] == even[-1] and odd[-1]["text"]


def case_bad_message(server: Running, an4: list[Utterance]) -> None:
    replies, code = _session(server, ["hello"])
    assert list(replies[0]) == ["error"] and code == 1003


def case_config_after_audio(server: Running, an4: list[Utterance]) -> None:
    replies, code = _session(server, [an4[0].pcm[:8000], {"config": {"sample_rate": 16000}}, EOF_])
    assert replies[0] == {"partial": replies[0]["partial"]}
    assert "error" in replies[-1] and code == 1003


def case_bad_config(server: Running, an4: list[Utterance]) -> None:
    for rate in (100, float("nan"), float("inf"), "8000", 8000.5, True):
        replies, code = _session(server, [{"config": {"sample_rate": rate}}, EOF_])
        assert "sample_rate" in replies[0]["error"] and code == 1003, rate


CASES: dict[str, Callable[..., None]] = {
    "no-config": case_no_config,
    "words": case_words,
    "silence": case_silence,
    "alternatives": case_alternatives,
    "reset": case_reset,
    "phrase-list": case_phrase_list,
    "wav-header": case_wav_header,
    "odd-chunks": case_odd_chunks,
    "bad-message": case_bad_message,
    "config-after-audio": case_config_after_audio,
    "bad-config": case_bad_config,
}


def test_every_table_row_has_a_test() -> None:
    assert sorted(_table_rows()) == sorted(CASES)


@pytest.fixture(scope="module")
def shared_server(recognizer: StreamingRecognizer):  # type: ignore[no-untyped-def]
    with running(recognizer) as r:
        yield r


@pytest.mark.parametrize("case", sorted(CASES))
def test_vosk_table_row(case: str, shared_server: Running, an4: list[Utterance], tmp_path: Path) -> None:
    check = CASES[case]
    if "tmp_path" in check.__code__.co_varnames[: check.__code__.co_argcount]:
        check(shared_server, an4, tmp_path)
    else:
        check(shared_server, an4)


def test_a_client_that_does_not_wait_gets_replies_in_order(shared_server: Running, an4: list[Utterance]) -> None:
    """Audio, reset, more audio and eof sent at once without reading (not lock-step): one reply per message, in
    order; the reset's final holds the first utterance, eof's the second, on the session's clock."""
    first, second = an4[0], an4[1]
    messages: list[Any] = [{"config": {"words": 1}}, *_chunks(first.pcm), {"reset": 1}, *_chunks(second.pcm), EOF_]
    with connect(shared_server.ws, compression=None) as ws:
        for m in messages:
            ws.send(json.dumps(m) if isinstance(m, dict) else m)
        replies = [json.loads(ws.recv(timeout=30)) for _ in messages[1:]]
        assert closed(ws) == 1000
    reset_at = len(_chunks(first.pcm))
    assert all("partial" in r for i, r in enumerate(replies[:-1]) if i != reset_at)
    alone = [_session(shared_server, [{"config": {"words": 1}}, *_chunks(u.pcm), EOF_])[0][-1] for u in (first, second)]
    assert replies[reset_at]["text"] == alone[0]["text"]
    assert replies[-1]["text"] == alone[1]["text"]
    offset = len(first.samples) / RATE
    assert [w["start"] for w in replies[-1]["result"]] == pytest.approx(
        [w["start"] + offset for w in alone[1]["result"]]
    )


def test_a_firehose_client_is_refused_and_others_are_not_slowed(
    recognizer: StreamingRecognizer, an4: list[Utterance]
) -> None:
    """A client that sends far faster than real time fills its own backlog and is told so (close 1013, reason
    "backlog"); a lock-step client beside it gets its normal result."""
    with running(recognizer, max_backlog_seconds=2.0, tick_ms=500.0) as server:
        result: dict[str, str] = {}
        other = threading.Thread(target=lambda: result.update(text=final_text(lockstep(server.ws, an4[2].pcm))))
        other.start()
        with connect(server.ws, compression=None) as ws:
            burst = np.tile(an4[0].samples, 4)  # ~16 s, all at once
            with contextlib.suppress(ConnectionClosed):  # the server may close before the burst is out
                for chunk in _chunks(pcm16(burst)):
                    ws.send(chunk)
            errors = []
            with contextlib.suppress(ConnectionClosed):
                while True:
                    reply = json.loads(ws.recv(timeout=30))
                    if "error" in reply:
                        errors.append(reply["error"])
            assert ws.close_code == 1013 and ws.close_reason == "backlog"
            assert errors and "waiting" in errors[0]
        other.join(60)
    stream = recognizer.stream(RATE)
    expected = " ".join(e.text for e in stream.accept(an4[2].samples) + stream.finish() if e.type == "final")
    assert result["text"] == expected


def test_a_slow_final_stalls_no_other_call(
    recognizer: StreamingRecognizer, an4: list[Utterance], monkeypatch: pytest.MonkeyPatch
) -> None:
    """One session's final is held in its decoder (as a pathological beam search would be): another session
    meanwhile streams, gets every partial and its own final; then the held one gets its final too."""
    from gruasr.server.decoding import FinalDecoder

    release = threading.Event()
    held = threading.Event()
    decode = FinalDecoder.decode

    def slow(self: FinalDecoder, log_probs: Any, request: Any, votes: Any = None) -> Any:
        if request.alternatives:  # only the session that asked for alternatives is slow
            held.set()
            release.wait(60)
        return decode(self, log_probs, request, votes)

    monkeypatch.setattr(FinalDecoder, "decode", slow)
    with running(recognizer, decode_workers=2) as server, connect(server.ws, compression=None) as slow_ws:
        slow_ws.send(json.dumps({"config": {"max_alternatives": 2}}))
        for chunk in _chunks(an4[0].pcm):
            slow_ws.send(chunk)
            slow_ws.recv(timeout=30)
        slow_ws.send('{"eof" : 1}')
        assert held.wait(30)  # its final is in the decoder now, and stays there
        other = lockstep(server.ws, an4[2].pcm)
        assert final_text(other) and any(r.get("partial") for r in other)
        assert not release.is_set()
        release.set()
        reply = json.loads(slow_ws.recv(timeout=30))
        assert reply["alternatives"][0]["text"]


def test_a_server_with_a_second_pass_gives_its_finals(
    an4: list[Utterance], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """server.second_pass = "default": the bundled streaming model gives the partials and the bundled default
    model each final; the lock-step client gets the finals of `gruasr stream --second-pass` on the file."""
    path = wav(tmp_path / "two.wav", _call_audio(an4))
    with running(None, second_pass="default") as server:  # type: ignore[arg-type]  # loaded from the config
        recognizer = server.app.state.engine.recognizer
        assert recognizer.second_pass is not None and recognizer.defer_second_pass  # run in the decoding threads
        replies = lockstep(server.ws, path.read_bytes(), {"sample_rate": RATE, "words": 1})
    assert main(["stream", str(path), "--json", "--second-pass"]) == 0
    expected = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    expected = [e for e in expected if e["type"] == "final"]
    got = finals(replies)
    assert len(expected) == 2 and [r["text"] for r in got if r["text"]] == [e["text"] for e in expected]
    served_words = [(w["word"], w["start"], w["end"]) for r in got for w in r.get("result", [])]
    assert served_words == [(w["word"], w["start"], w["end"]) for e in expected for w in e["words"]]
    with pytest.raises(ConfigError, match="second_pass"):
        ServerConfig(engine="onnx", model="export", second_pass="default")
