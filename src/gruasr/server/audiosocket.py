"""Asterisk's AudioSocket (res_audiosocket / app_audiosocket): a small TCP protocol, one call per connection.

Every message is a 3-byte header, kind (1 byte) and payload length (2 bytes, big-endian), then the payload:
  0x01  UUID: 16 bytes, the call's id (the first message);
  0x10  audio: 16-bit signed linear, little-endian, 8000 Hz, mono (Asterisk sends 320 bytes = 20 ms);
  0x03  DTMF: one ASCII digit;
  0x00  hangup: the call is over;
  0xFF  error: one byte, Asterisk's error code (the call is over).
A closed socket ends the call cleanly too. Nothing is sent back (the audio direction to Asterisk is unused);
transcripts go to the call's events (gruasr.server.calls) under the UUID, as leg A. A malformed message, or audio
before the UUID, ends the connection (logged with its reason, counted as a refusal "bad_request").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import uuid

from gruasr.errors import ConfigError
from gruasr.server.calls import Call, CallHub
from gruasr.server.engine import Engine, Interrupt, Leg, Refused
from gruasr.server.guard import Pass, Principal, SessionClock
from gruasr.server.wire import pcm16_samples

log = logging.getLogger("gruasr.server.audiosocket")
PROTOCOL = "audiosocket"
RATE = 8000
KIND_HANGUP, KIND_UUID, KIND_DTMF, KIND_AUDIO, KIND_ERROR = 0x00, 0x01, 0x03, 0x10, 0xFF


def message(kind: int, payload: bytes = b"") -> bytes:
    """One AudioSocket message (for clients and tests)."""
    if not 0 <= kind <= 0xFF or len(payload) > 0xFFFF:
        raise ConfigError(f"an AudioSocket message has a one-byte kind and at most 65535 bytes, got {kind}")
    return bytes([kind]) + len(payload).to_bytes(2, "big") + payload


class AudioSocketServer:
    """The TCP listener; each connection is one call."""

    def __init__(self, engine: Engine, hub: CallHub) -> None:
        self.engine = engine
        self.hub = hub
        self.server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()

    async def start(self, host: str, port: int, tls: ssl.SSLContext | None = None) -> int:
        """Listen (over TLS when `tls` is given); returns the port (useful with port 0)."""
        handshake = self.engine.config.handshake_seconds if tls is not None else None
        self.server = await asyncio.start_server(self._connection, host, port, ssl=tls, ssl_handshake_timeout=handshake)
        return int(self.server.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        metrics = self.engine.metrics
        interrupt = Interrupt()
        peer = writer.get_extra_info("peername")
        who = Principal(None, peer[0] if isinstance(peer, tuple) else None)
        unregister = self.engine.on_drain(interrupt)
        metrics.sessions.labels(PROTOCOL).inc()
        metrics.active.labels(PROTOCOL).inc()
        held: list[Pass] = []
        try:
            await self._serve(reader, interrupt, who, held)
        except (ConfigError, Refused) as err:
            reason = err.reason if isinstance(err, Refused) else "bad_request"
            metrics.refuse(reason)
            log.info("audiosocket call refused: %s", err, extra={"protocol": PROTOCOL, "reason": reason})
        except (ConnectionError, ssl.SSLError) as err:  # the peer reset the connection or broke TLS mid-call
            log.info("audiosocket connection lost: %s", type(err).__name__, extra={"protocol": PROTOCOL})
        finally:
            unregister()
            for place in held:
                place.release()
            metrics.active.labels(PROTOCOL).dec()
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    async def _serve(
        self, reader: asyncio.StreamReader, interrupt: Interrupt, who: Principal, held: list[Pass]
    ) -> None:
        call: Call | None = None
        leg: Leg | None = None
        carry = b""
        clock: SessionClock = self.engine.clock()
        try:
            while True:
                header = await interrupt.receive(clock.within(reader.readexactly(3)))
                if header is None:
                    break
                kind, length = header[0], int.from_bytes(header[1:3], "big")
                payload = await clock.within(reader.readexactly(length)) if length else b""
                if kind == KIND_UUID:
                    if call is not None or length != 16:
                        raise ConfigError("the UUID message must come once, first, with 16 bytes")
                    held.append(self.engine.admit(who))
                    call = self.hub.begin(str(uuid.UUID(bytes=payload)), PROTOCOL)
                    leg = self.engine.open(PROTOCOL, RATE, 0, "A")
                    leg.listener = call.listener
                    leg.meter = held[0].spend
                    log.info("call started", extra={"protocol": PROTOCOL, "call": call.id})
                elif kind == KIND_AUDIO:
                    if leg is None:
                        raise ConfigError("audio before the UUID message")
                    samples, carry = pcm16_samples(carry + payload)
                    if samples.size:
                        leg.push(samples)
                elif kind == KIND_DTMF:
                    if call is not None and leg is not None:
                        digit = payload[:1].decode("ascii", errors="replace")
                        call.publish({"type": "dtmf", "channel": 0, "leg": "A", "digit": digit,
                                      "time": round(leg.seconds, 3)})  # fmt: skip
                elif kind in (KIND_HANGUP, KIND_ERROR):
                    if kind == KIND_ERROR:
                        log.info("asterisk reported an error", extra={"protocol": PROTOCOL, "code": payload[:1].hex()})
                    break
                else:
                    raise ConfigError(f"unknown AudioSocket message kind 0x{kind:02x}")
        except asyncio.IncompleteReadError:
            pass  # the socket closed: the call is over
        finally:
            await _finish(call, leg)


async def _finish(call: Call | None, leg: Leg | None) -> None:
    """The last final of the call, published; then the call's end."""
    if leg is not None:
        if not leg.ended:
            await asyncio.gather(leg.end(), return_exceptions=True)
        leg.close()
    if call is not None:
        call.end()
        log.info("call ended", extra={"protocol": PROTOCOL, "call": call.id})
