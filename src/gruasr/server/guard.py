"""Who may open a session, and how much they may use: concurrent sessions per API key and per client address,
and each key's audio quota per UTC day. The global stream limit (`max_sessions`) and the draining state stay in
the engine (`Engine.check_open`); this module adds the per-client ones.

Every streaming session (a Vosk WebSocket, a media stream, an AudioSocket call) and every REST transcription holds
a `Pass` while it runs: `Guard.admit` refuses with `Refused("per_key" | "per_address" | "quota")` and the pass's
`release` gives the place back. Audio is charged to the key as it arrives (`Pass.spend`, called by the leg for every
chunk and by REST with the file's duration before decoding); the quota's usage is kept in memory, per key and UTC
day, so a restart forgets the day's usage (docs/security.md says so).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import TypeVar

from gruasr.server.keys import ApiKey
from gruasr.server.legs import Refused

T = TypeVar("T")


@dataclass(frozen=True)
class Principal:
    """Who is on the other end: the authenticated key (None when the server runs without keys) and the client's
    address (the peer IP; None when unknown)."""

    key: ApiKey | None = None
    address: str | None = None

    @property
    def name(self) -> str:
        """For logs and metrics: the key's name, never the key."""
        return self.key.name if self.key is not None else "-"


def utc_day(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // 86400)


@dataclass
class Pass:
    """A place held by one session or request; see the module docstring."""

    guard: Guard
    principal: Principal
    released: bool = False

    def spend(self, seconds: float) -> None:
        """Charge `seconds` of audio to the key; Refused("quota") when that would pass its daily quota."""
        self.guard.spend(self.principal, seconds)

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.guard._release(self.principal)


@dataclass
class Guard:
    """The per-key and per-address counts of one server."""

    #: concurrent sessions per client address at most (0: no limit)
    max_per_address: int = 0
    by_key: Counter[str] = field(default_factory=Counter)
    by_address: Counter[str] = field(default_factory=Counter)
    #: audio seconds used per (key name, UTC day)
    usage: dict[tuple[str, int], float] = field(default_factory=dict)

    def admit(self, principal: Principal) -> Pass:
        """Take a place for `principal` or raise Refused with the reason."""
        key, address = principal.key, principal.address
        if key is not None and key.max_sessions and self.by_key[key.name] >= key.max_sessions:
            raise Refused("per_key", f"the key {key.name!r} has its limit of {key.max_sessions} sessions open")
        if address is not None and self.max_per_address and self.by_address[address] >= self.max_per_address:
            raise Refused("per_address", f"this address has the limit of {self.max_per_address} sessions open")
        if key is not None and key.audio_hours_per_day:
            self.spend(principal, 0.0)  # a key already over its quota is refused at once
        if key is not None:
            self.by_key[key.name] += 1
        if address is not None:
            self.by_address[address] += 1
        return Pass(self, principal)

    def spend(self, principal: Principal, seconds: float) -> None:
        key = principal.key
        if key is None or not key.audio_hours_per_day:
            return
        day = utc_day()
        used = self.usage.get((key.name, day), 0.0)
        limit = key.audio_hours_per_day * 3600
        if used + seconds > limit or (seconds == 0.0 and used >= limit):
            raise Refused("quota", f"the key {key.name!r} has used its {key.audio_hours_per_day:g} h of audio today")
        self.usage[(key.name, day)] = used + seconds
        for old in [k for k in self.usage if k[1] < day]:  # yesterday's counts are of no use
            del self.usage[old]

    def _release(self, principal: Principal) -> None:
        if principal.key is not None:
            self.by_key[principal.key.name] -= 1
            if self.by_key[principal.key.name] <= 0:
                del self.by_key[principal.key.name]
        if principal.address is not None:
            self.by_address[principal.address] -= 1
            if self.by_address[principal.address] <= 0:
                del self.by_address[principal.address]


class SessionClock:
    """The two clocks of a streaming session: it may last `max_seconds` in all, and may stay silent (send no
    message) for `idle_seconds` at most. `await clock.within(receive())` gives the message, or raises
    Refused("duration") or Refused("idle"), so a client cannot hold a socket and a place by saying nothing."""

    def __init__(self, max_seconds: float, idle_seconds: float) -> None:
        self.ends = time.monotonic() + max_seconds
        self.max_seconds = max_seconds
        self.idle_seconds = idle_seconds

    async def within(self, awaitable: Awaitable[T]) -> T:
        left = self.ends - time.monotonic()
        if left <= 0:
            raise Refused("duration", f"a session lasts {self.max_seconds:g} s at most")
        try:
            async with asyncio.timeout(min(self.idle_seconds, left)):
                return await awaitable
        except TimeoutError:
            if time.monotonic() >= self.ends - 0.001:
                raise Refused("duration", f"a session lasts {self.max_seconds:g} s at most") from None
            raise Refused("idle", f"nothing received for {self.idle_seconds:g} s") from None
