"""Media streams of cloud telephony in Twilio's message format (Twilio Media Streams, the `<Stream>` verb), on
WebSocket path `/media`. JSON text messages, client -> server:

  {"event": "connected", "protocol": "Call", "version": "1.0.0"}
  {"event": "start", "sequenceNumber": "1", "streamSid": "MZ...", "start": {"streamSid", "callSid", "accountSid",
   "tracks": ["inbound", "outbound"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000,
   "channels": 1}, "customParameters": {...}}}
  {"event": "media", "sequenceNumber": "3", "streamSid", "media": {"track": "inbound", "chunk": "1",
   "timestamp": "5", "payload": "<base64 mu-law>"}}
  {"event": "dtmf", "streamSid", "dtmf": {"track": "inbound_track", "digit": "1"}}
  {"event": "mark", "streamSid", "mark": {"name": "..."}}
  {"event": "stop", "streamSid", "stop": {"accountSid", "callSid"}}

The inbound track is leg A (channel 0: the caller), the outbound track leg B (channel 1). A media message's
`timestamp` (ms from the start of the stream) places its audio: a gap (lost or suppressed packets) becomes silence,
so the legs stay on one clock. Nothing is sent back; transcripts go to the call's events (gruasr.server.calls)
under the callSid. A malformed message or an unsupported format closes the socket with 1003 and the reason.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from typing import Any

import numpy as np
from starlette.websockets import WebSocket, WebSocketDisconnect

from gruasr.errors import ConfigError
from gruasr.server.calls import Call, CallHub
from gruasr.server.engine import Engine, Interrupt, Leg, Refused
from gruasr.server.guard import Pass, Principal
from gruasr.server.legs import close_code
from gruasr.server.security import principal
from gruasr.server.wire import mulaw_samples

log = logging.getLogger("gruasr.server.media")
PROTOCOL = "media"
RATE = 8000
TRACKS = {"inbound": (0, "A"), "outbound": (1, "B")}
MAX_GAP_SECONDS = 5.0  # silence inserted for a timestamp jump at most (a longer jump is a clock reset)


def _field(obj: dict[str, Any], name: str, kind: type) -> Any:
    value = obj.get(name)
    if not isinstance(value, kind):
        raise ConfigError(f"'{name}' must be a {kind.__name__}")
    return value


class _MediaCall:
    """One media stream: its call (events) and a leg per track; the handlers of start, media and dtmf."""

    def __init__(self, engine: Engine, hub: CallHub, who: Principal) -> None:
        self.engine = engine
        self.hub = hub
        self.who = who
        self.held: Pass | None = None
        self.call: Call | None = None
        self.legs: dict[str, Leg] = {}

    def start(self, message: dict[str, Any]) -> None:
        if self.call is not None:
            raise ConfigError("a second 'start' on one stream")
        start = _field(message, "start", dict)
        media_format = _field(start, "mediaFormat", dict)
        encoding, rate, channels = (media_format.get(k) for k in ("encoding", "sampleRate", "channels"))
        if (encoding, rate, channels) != ("audio/x-mulaw", RATE, 1):
            raise ConfigError(f"unsupported mediaFormat {media_format}: expected audio/x-mulaw, 8000 Hz, 1 channel")
        tracks = start.get("tracks", ["inbound"])
        if not isinstance(tracks, list) or not tracks or any(t not in TRACKS for t in tracks):
            raise ConfigError(f"tracks must be a list of {sorted(TRACKS)}, got {tracks!r}")
        self.held = self.engine.admit(self.who, len(set(tracks)))
        call_id = start.get("callSid") or start.get("streamSid") or message.get("streamSid")
        if not isinstance(call_id, str) or not call_id:
            raise ConfigError("start has no callSid or streamSid")
        self.call = self.hub.begin(call_id, PROTOCOL)
        for track in dict.fromkeys(tracks):
            channel, name = TRACKS[track]
            leg = self.engine.open(PROTOCOL, RATE, channel, name)
            leg.listener = self.call.listener
            leg.meter = self.held.spend
            self.legs[track] = leg
        log.info("call started", extra={"protocol": PROTOCOL, "call": self.call.id, "tracks": list(self.legs)})

    def media(self, message: dict[str, Any]) -> None:
        media = _field(message, "media", dict)
        track = media.get("track", "inbound")
        leg = self.legs.get(track)
        if leg is None:
            raise ConfigError(f"media on track {track!r} before 'start' or not among its tracks")
        try:
            samples = mulaw_samples(base64.b64decode(_field(media, "payload", str), validate=True))
        except ValueError:  # binascii.Error, or characters outside ASCII
            raise ConfigError("media payload is not base64") from None
        timestamp = media.get("timestamp")
        if isinstance(timestamp, str) and timestamp.isdigit():
            gap = int(timestamp) / 1000 - leg.seconds
            if 0.02 < gap <= MAX_GAP_SECONDS:  # lost packets: silence keeps the legs on one clock
                leg.push(np.zeros(int(round(gap * RATE)), np.float32))
        if samples.size:
            leg.push(samples)

    def dtmf(self, message: dict[str, Any]) -> None:
        dtmf = _field(message, "dtmf", dict)
        track = str(dtmf.get("track", "inbound_track")).removesuffix("_track")
        channel, name = TRACKS.get(track, (0, "A"))
        leg = self.legs.get(track)
        if self.call is not None:
            time = round(leg.seconds, 3) if leg is not None else 0.0
            self.call.publish({"type": "dtmf", "channel": channel, "leg": name, "digit": str(dtmf.get("digit")),
                               "time": time})  # fmt: skip

    async def finish(self) -> None:
        """End every leg, wait until their finals are published, end the call."""
        tickets = [leg.end() for leg in self.legs.values() if not leg.ended]
        await asyncio.gather(*tickets, return_exceptions=True)
        for leg in self.legs.values():
            leg.close()
        if self.held is not None:
            self.held.release()
        if self.call is not None:
            self.call.end()
            log.info("call ended", extra={"protocol": PROTOCOL, "call": self.call.id})


async def _serve(websocket: WebSocket, session: _MediaCall, interrupt: Interrupt) -> None:
    handlers = {"start": session.start, "media": session.media, "dtmf": session.dtmf}
    clock = session.engine.clock()
    while True:
        message = await interrupt.receive(clock.within(websocket.receive()))
        if message is not None and message["type"] == "websocket.disconnect" and message.get("code") == 1009:
            session.engine.metrics.refuse("too_large")  # uvicorn refused a message over max_message_bytes
        if message is None or message["type"] == "websocket.disconnect":
            await session.finish()
            if message is None:
                await websocket.close(1001, "server shutting down")
            return
        try:
            obj = json.loads(message.get("text") or "")
        except (ValueError, RecursionError):
            raise ConfigError("media stream messages are JSON text") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("event"), str):
            raise ConfigError("a media stream message needs an 'event'")
        event = obj["event"]
        if event == "stop":
            await session.finish()
            await websocket.close(1000)
            return
        handler = handlers.get(event)
        if handler is not None:
            handler(obj)
        elif event not in ("connected", "mark"):
            raise ConfigError(f"unknown event {event!r}")


async def media_endpoint(websocket: WebSocket, engine: Engine, hub: CallHub) -> None:
    """Serve one media stream (see the module docstring)."""
    await websocket.accept()
    metrics = engine.metrics
    if engine.draining:
        metrics.refuse("draining")
        await websocket.close(1013, "the server is shutting down")
        return
    session = _MediaCall(engine, hub, principal(websocket.scope))
    interrupt = Interrupt()
    unregister = engine.on_drain(interrupt)
    metrics.sessions.labels(PROTOCOL).inc()
    metrics.active.labels(PROTOCOL).inc()
    try:
        await _serve(websocket, session, interrupt)
    except (ConfigError, Refused) as err:
        reason = err.reason if isinstance(err, Refused) else "bad_request"
        metrics.refuse(reason)
        log.info("media stream refused", extra={"protocol": PROTOCOL, "reason": reason})
        await session.finish()
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await websocket.close(close_code(reason), str(err)[:120])
    except WebSocketDisconnect:
        await session.finish()
    finally:
        unregister()
        metrics.active.labels(PROTOCOL).dec()
