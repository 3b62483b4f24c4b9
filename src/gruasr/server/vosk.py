"""The Vosk server's WebSocket protocol (alphacep/vosk-server `websocket/asr_server.py`), as Asterisk's
res_speech_vosk, FreeSWITCH's mod_vosk and the Vosk client libraries speak it.

Client -> server, on path `/`:
  - optionally first, a text message `{"config": {"sample_rate": N, "words": 0|1, "max_alternatives": N,
    "phrase_list": [...]}}` (no reply; without it: 8000 Hz, no words, no alternatives);
  - binary messages: 16-bit little-endian mono PCM, any size (a leading 44-byte WAV header is skipped; an odd
    byte is kept for the next message);
  - `{"eof" : 1}`: the final result, then the server closes normally (1000);
  - `{"reset" : 1}`: the final result, and the session goes on (times keep counting from the start).
Server -> client: exactly one text message per client message after the config, in order:
  `{"partial": "..."}` while an utterance goes on; at an endpoint (and for eof/reset)
  `{"result": [{"conf", "end", "start", "word"}, ...], "text": "..."}` (`result` only with words on),
  `{"text": ""}` when nothing was said, or with max_alternatives > 0
  `{"alternatives": [{"confidence", "result" (with words on: word, start, end), "text"}, ...]}`.
  Times are seconds from the start of the stream. A bad message gets `{"error": "..."}` and the close code 1003;
  a refused session (full, draining, backlog, a per-key or per-address limit) is closed with 1013 and the reason;
  a key over its quota, an idle session or one past its duration with 1008 (the last two after the final).
The `ws` subprotocol is accepted when offered; no extension is negotiated (uvicorn runs with per-message
deflate off), since a PBX module fails a connection that answers with one it did not offer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from gruasr.decoding.hypothesis import Hypothesis, Word
from gruasr.errors import ConfigError
from gruasr.server.decoding import MAX_ALTERNATIVES, DecodeRequest, normalize_phrases
from gruasr.server.engine import Engine, Interrupt, Leg, Output, Refused
from gruasr.server.guard import Pass
from gruasr.server.legs import close_code
from gruasr.server.security import principal
from gruasr.server.wire import MAX_RATE, MIN_RATE, pcm16_samples

log = logging.getLogger("gruasr.server.vosk")
PROTOCOL = "vosk"
DEFAULT_RATE = 8000  # PBX modules send no config: telephone audio


@dataclass(frozen=True)
class _Reply:
    """An entry of a session's reply queue: "reply" (partial or final, by the outputs), "final" (always a final),
    or "close" (then stop)."""

    kind: str
    ticket: asyncio.Future[list[Output]] | None = None
    code: int = 1000
    reason: str = ""


@dataclass(frozen=True)
class VoskConfig:
    sample_rate: int = DEFAULT_RATE
    words: bool = False
    request: DecodeRequest = DecodeRequest()


def parse_config(config: object, engine: Engine) -> VoskConfig:
    """The `config` object of Vosk's first message; a ConfigError says what is wrong. Unknown keys are ignored,
    as the Vosk server does."""
    if not isinstance(config, dict):
        raise ConfigError("config must be an object")
    rate = config.get("sample_rate", DEFAULT_RATE)
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or rate != int(rate):
        raise ConfigError(f"sample_rate must be a whole number of Hz, got {rate!r}")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ConfigError(f"sample_rate must be {MIN_RATE}..{MAX_RATE} Hz, got {rate!r}")
    words = config.get("words", 0)
    if words not in (0, 1, True, False):
        raise ConfigError(f"words must be 0 or 1, got {words!r}")
    alternatives = config.get("max_alternatives", 0)
    if isinstance(alternatives, bool) or not isinstance(alternatives, int) or not 0 <= alternatives <= MAX_ALTERNATIVES:
        raise ConfigError(f"max_alternatives must be an integer 0..{MAX_ALTERNATIVES}, got {alternatives!r}")
    phrases: tuple[str, ...] = ()
    if config.get("phrase_list") is not None:
        phrases = normalize_phrases(config["phrase_list"], engine.recognizer.finals)
    return VoskConfig(int(rate), bool(words), DecodeRequest(alternatives, phrases))


def _words(words: tuple[Word, ...], conf: bool = True) -> list[dict[str, Any]]:
    out = []
    for w in words:
        item: dict[str, Any] = {"end": round(w.end, 3), "start": round(w.start, 3), "word": w.word}
        if conf:
            item["conf"] = round(w.conf, 6)
        out.append(dict(sorted(item.items())))
    return out


def final_reply(finals: list[Output], config: VoskConfig) -> dict[str, Any]:
    """Vosk's final result for the finals of one reply (usually one; several are joined in order)."""
    if config.request.alternatives:
        before = " ".join(f.event.text for f in finals[:-1] if f.event.text)
        earlier = tuple(w for f in finals[:-1] for w in f.event.words)
        last = finals[-1].alternatives if finals else (Hypothesis("", (), confidence=1.0),)
        alternatives = []
        for hyp in last:
            item: dict[str, Any] = {"confidence": round(hyp.confidence or 0.0, 6)}
            if config.words:
                item["result"] = _words(earlier + hyp.words, conf=False)
            item["text"] = " ".join(t for t in (before, hyp.text) if t)
            alternatives.append(item)
        return {"alternatives": alternatives}
    text = " ".join(f.event.text for f in finals if f.event.text)
    words = tuple(w for f in finals for w in f.event.words)
    if config.words and text:
        return {"result": _words(words), "text": text}
    return {"text": text}


class _Session:
    """One WebSocket client: a reader that pushes audio as it comes, a writer that sends one reply per message
    in order (the replies wait for the tick that consumed their audio)."""

    def __init__(self, websocket: WebSocket, engine: Engine, held: Pass) -> None:
        self.ws = websocket
        self.engine = engine
        self.held = held
        self.clock = engine.clock()
        self.config = VoskConfig()
        self.leg: Leg | None = None
        self.partial = ""
        self.replies: asyncio.Queue[_Reply] = asyncio.Queue(engine.config.max_outbox)
        self.interrupt = Interrupt()  # the drain
        self._carry = b""
        self._first_audio = True

    def _open(self) -> Leg:
        if self.leg is None:
            self.leg = self.engine.open(PROTOCOL, self.config.sample_rate, request=self.config.request)
            self.leg.meter = self.held.spend
        return self.leg

    def _queue(self, reply: _Reply) -> None:
        try:
            self.replies.put_nowait(reply)
        except asyncio.QueueFull:
            raise Refused(
                "slow", f"more than {self.replies.maxsize} replies waiting: the client does not read"
            ) from None

    async def read(self) -> None:
        """Receive until eof, a disconnect, an error or a drain; queue the replies (and a last 'close')."""
        while True:
            try:
                message = await self.interrupt.receive(self.clock.within(self.ws.receive()))
            except Refused as limit:  # idle or over the session's duration: the final of what was said, then 1008
                self._finish(close_code(limit.reason), str(limit), limit.reason)
                return
            if message is None:  # drain: the final of what was said, then "going away"
                self._finish(1001, "server shutting down")
                return
            if message["type"] == "websocket.disconnect":  # the client left: nothing more to send
                if message.get("code") == 1009:  # uvicorn refused a message over max_message_bytes
                    self.engine.metrics.refuse("too_large")
                raise WebSocketDisconnect(message.get("code", 1000))
            if message.get("bytes") is not None:
                self._queue(_Reply("reply", self._open().push(self._samples(message["bytes"]))))
                continue
            text = message.get("text") or ""
            try:
                obj = json.loads(text)
            except (ValueError, RecursionError):
                raise ConfigError("a text message must be JSON: config, eof or reset") from None
            if isinstance(obj, dict) and "config" in obj:
                if self.leg is not None:
                    raise ConfigError("config must come before the audio")
                self.config = parse_config(obj["config"], self.engine)
            elif isinstance(obj, dict) and obj.get("eof"):
                self._queue(_Reply("final", self._open().end()))
                self._queue(_Reply("close"))
                return
            elif isinstance(obj, dict) and obj.get("reset"):
                self._queue(_Reply("final", self._open().end(reset=True)))
            else:
                raise ConfigError("unknown message: expected config, eof, reset or binary audio")

    def _finish(self, code: int, reason: str, refusal: str | None = None) -> None:
        """End the session from our side: the final of what was said (if anything was), then a close."""
        if refusal is not None:
            self.engine.metrics.refuse(refusal)
            log.info("session ended by a limit", extra={"protocol": PROTOCOL, "reason": refusal})
        if self.leg is not None and not self.leg.ended:
            self._queue(_Reply("final", self.leg.end()))
        self._queue(_Reply("close", code=code, reason=reason[:120]))

    def _samples(self, data: bytes) -> np.ndarray:
        if self._first_audio and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
            data = data[44:]  # a WAV file sent as is: its canonical 44-byte header
        self._first_audio = False
        samples, self._carry = pcm16_samples(self._carry + data)
        return samples

    async def write(self) -> None:
        """Send the replies in order until a close."""
        while True:
            reply = await self.replies.get()
            if reply.kind == "close" or reply.ticket is None:
                await self.ws.close(reply.code, reply.reason)
                return
            outputs = await reply.ticket
            finals = [o for o in outputs if o.event.type == "final"]
            for o in outputs:  # the partial text after the last final
                self.partial = o.event.text if o.event.type == "partial" else ""
            if finals or reply.kind == "final":
                await self.ws.send_text(json.dumps(final_reply(finals, self.config)))
            else:
                await self.ws.send_text(json.dumps({"partial": self.partial}))


async def vosk_endpoint(websocket: WebSocket, engine: Engine) -> None:
    """Serve one Vosk-protocol client (see the module docstring)."""
    offered = websocket.scope.get("subprotocols") or []
    await websocket.accept(subprotocol="ws" if "ws" in offered else None)
    metrics = engine.metrics
    try:
        held = engine.admit(principal(websocket.scope))
    except Refused as refused:
        metrics.refuse(refused.reason)
        await websocket.close(close_code(refused.reason), str(refused)[:120])
        return
    session = _Session(websocket, engine, held)
    metrics.sessions.labels(PROTOCOL).inc()
    metrics.active.labels(PROTOCOL).inc()
    unregister = engine.on_drain(session.interrupt)
    writer = asyncio.create_task(session.write())
    try:
        await session.read()
        await writer
    except (ConfigError, Refused) as err:
        reason = err.reason if isinstance(err, Refused) else "bad_request"
        metrics.refuse(reason)
        log.info("session refused", extra={"protocol": PROTOCOL, "reason": reason})
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.send_text(json.dumps({"error": str(err)}))
            await websocket.close(close_code(reason), reason)
    except (WebSocketDisconnect, OSError):  # the client left (uvicorn's ClientDisconnected is an OSError)
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
    except Exception:  # a failure of ours (decoding, a bug): this session ends with 1011, the others go on
        log.exception("session failed", extra={"protocol": PROTOCOL})
        writer.cancel()
        await asyncio.gather(writer, return_exceptions=True)
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.close(1011, "internal error")
    finally:
        unregister()
        held.release()
        if session.leg is not None:
            session.leg.close()
        metrics.active.labels(PROTOCOL).dec()
