"""A leg: one stream inside the server (a Vosk session, one track of a media stream, an AudioSocket call), with
its ordered inbox of audio and ends, and the ordered hand-over of its outputs.

An adapter `push`es audio and `end`s the stream (each returns a future that resolves with the outputs of the tick
that consumed it) and may set a `listener` that gets every output in order, a final once decoded. The inbox keeps
the order of audio and ends (audio after a Vosk reset belongs to the next stream). A tick takes at most
`max_tick_audio` seconds of a leg's audio, so a client that sends faster than real time catches up over several
ticks instead of stalling every other call's tick; what waits is bounded by `max_backlog_seconds` ("backlog").
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from gruasr.decoding.hypothesis import Hypothesis
from gruasr.errors import GruAsrError
from gruasr.events import Event
from gruasr.redact import Policy, StreamRedactor
from gruasr.server.decoding import DecodeRequest

if TYPE_CHECKING:
    from gruasr.server.engine import Engine
    from gruasr.streaming.recognizer import Stream  # or the ONNX runtime's OnnxStream: the same interface

log = logging.getLogger("gruasr.server")


class Refused(GruAsrError):
    """A session or request the server will not take; `reason` is the metric label (gruasr.server.metrics)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


#: WebSocket close codes (RFC 6455) of refusals: 1003 unacceptable data, 1008 policy violation, 1009 too big;
#: any other reason (capacity, draining, backlog, slow, per_key, per_address) is 1013 "try again later"
_CLOSE_CODES = {"bad_request": 1003, "bad_audio": 1003, "too_large": 1009, "unauthorized": 1008, "idle": 1008,
                "duration": 1008, "quota": 1008}  # fmt: skip


#: n-best alternatives under redaction: every run of two or more digits masked
_MASK_ALTERNATIVES = Policy(min_digits=2)


def close_code(reason: str) -> int:
    """The WebSocket close code that tells a client why it was refused."""
    return _CLOSE_CODES.get(reason, 1013)


@dataclass(frozen=True)
class Output:
    """One result for a leg: a partial or final Event (times in seconds from the start of the leg), and for a
    final decoded with alternatives, the n-best texts (their words on the same clock)."""

    event: Event
    alternatives: tuple[Hypothesis, ...] = ()


Listener = Callable[[list[Output]], None]


def shift(event: Event, seconds: float) -> Event:
    """The event moved `seconds` later (a leg's stream restarted after a reset keeps the leg's clock)."""
    if seconds == 0.0:
        return event
    words = tuple(w.shifted(seconds) for w in event.words)
    return replace(event, start=event.start + seconds, end=event.end + seconds, words=words)


@dataclass
class _Entry:
    """One item of a leg's inbox: audio, or the end of the stream (samples None)."""

    samples: np.ndarray | None
    ticket: asyncio.Future[list[Output]]
    arrived: float  # perf_counter
    reset: bool = False


@dataclass
class _Work:
    """What one tick does for one leg: audio to feed, whether the stream ends, and who waits for it."""

    leg: Leg
    stream: Stream
    offset: float
    chunks: list[np.ndarray]
    end: bool
    reset: bool
    tickets: list[asyncio.Future[list[Output]]]
    arrived: float  # perf_counter when the first of the chunks arrived


class Leg:
    """One stream inside the server; see the module docstring. Made by `Engine.open`."""

    def __init__(
        self, engine: Engine, protocol: str, sample_rate: int, channel: int, leg: str | None, request: DecodeRequest
    ) -> None:
        self.engine = engine
        self.protocol = protocol
        self.sample_rate = sample_rate
        self.channel = channel
        self.leg = leg
        self.request = request
        self.listener: Listener | None = None
        #: the transcripts' redaction (server.redact), applied before any output leaves the leg
        self.redactor = StreamRedactor(engine.policy) if engine.policy.enabled else None
        #: charged with the seconds of every chunk pushed (a key's audio quota: gruasr.server.guard.Pass.spend)
        self.meter: Callable[[float], None] | None = None
        self.seconds = 0.0  # audio pushed so far, seconds (the leg's clock)
        self.closed = False
        self._stream = engine.recognizer.stream(sample_rate, leg, channel=channel)
        self._offset = 0.0  # where the current stream started on the leg's clock
        self._taken = 0.0  # seconds of audio the current stream has been given
        self._inbox: deque[_Entry] = deque()
        self._waiting = 0.0  # seconds of audio in the inbox
        self._ending = False
        self._delivered: asyncio.Task[None] | None = None

    @property
    def ended(self) -> bool:
        """True once the leg's stream was ended (without reset) or the leg closed: it takes no more audio."""
        return self._ending or self.closed

    def push(self, samples: np.ndarray) -> asyncio.Future[list[Output]]:
        """Queue mono float samples for the next tick; the future resolves with the outputs of that tick."""
        if self.ended:
            raise Refused("bad_request", "audio after the end of the stream")
        seconds = samples.shape[0] / self.sample_rate
        limit = self.engine.config.max_backlog_seconds
        if self._waiting + seconds > limit:
            raise Refused("backlog", f"more than {limit:g} s of audio waiting: sent faster than it can be heard")
        if self.meter is not None:
            self.meter(seconds)
        self._waiting += seconds
        self.seconds += seconds
        self.engine.metrics.audio.labels(self.protocol).inc(seconds)
        return self._queue(samples)

    def end(self, reset: bool = False) -> asyncio.Future[list[Output]]:
        """End the current utterance and stream; the future resolves with its outputs (the last final). With
        `reset` the leg goes on with a fresh stream on the same clock (Vosk's {"reset": 1})."""
        if self.ended:
            raise Refused("bad_request", "the stream has already ended")
        self._ending = not reset
        return self._queue(None, reset)

    def close(self) -> None:
        """Leave: audio not yet taken is dropped (its waiters cancelled), no more outputs are delivered, and the
        engine forgets the leg."""
        if not self.closed:
            self.closed = True
            while self._inbox:
                self._inbox.popleft().ticket.cancel()
            self._waiting = 0.0
            self.engine._forget(self)

    def _queue(self, samples: np.ndarray | None, reset: bool = False) -> asyncio.Future[list[Output]]:
        ticket: asyncio.Future[list[Output]] = asyncio.get_running_loop().create_future()
        self._inbox.append(_Entry(samples, ticket, time.perf_counter(), reset))
        self.engine._wake.set()
        return ticket

    def _has_work(self) -> bool:
        return bool(self._inbox)

    def _take(self, limit: float) -> _Work:
        """The next tick's share of the inbox: audio in order up to `limit` seconds (at least one chunk), up to and
        including an end."""
        work = _Work(self, self._stream, self._offset, [], False, False, [], self._inbox[0].arrived)
        seconds = 0.0
        while self._inbox:
            entry = self._inbox[0]
            if entry.samples is None:
                self._inbox.popleft()
                work.tickets.append(entry.ticket)
                work.end, work.reset = True, entry.reset
                break
            duration = entry.samples.shape[0] / self.sample_rate
            if work.chunks and seconds + duration > limit:
                break
            self._inbox.popleft()
            work.chunks.append(entry.samples)
            work.tickets.append(entry.ticket)
            seconds += duration
        self._waiting -= seconds
        self._taken += seconds
        if work.reset:  # the next stream starts where this one's audio ended, on the leg's clock
            self._stream = self.engine.recognizer.stream(self.sample_rate, self.leg, channel=self.channel)
            self._offset += self._taken
            self._taken = 0.0
        return work

    def _deliver(self, items: list[Output | concurrent.futures.Future[Output | None]], work: _Work) -> None:
        previous = self._delivered
        if (previous is None or previous.done()) and all(isinstance(item, Output) for item in items):
            self._delivered = None  # nothing to wait for (no final): hand over now, no task
            now = time.perf_counter()
            for _ in items:
                self.engine.metrics.partial_latency.observe(now - work.arrived)
            self._hand_over([item for item in items if isinstance(item, Output)], work)
            return
        self._delivered = asyncio.get_running_loop().create_task(self._in_order(previous, items, work))

    async def _in_order(
        self,
        previous: asyncio.Task[None] | None,
        items: list[Output | concurrent.futures.Future[Output | None]],
        work: _Work,
    ) -> None:
        if previous is not None:
            await asyncio.wait([previous])  # its failure was logged there; order is what matters here
        metrics = self.engine.metrics
        outputs: list[Output] = []
        try:
            for item in items:
                if isinstance(item, Output):
                    outputs.append(item)
                    metrics.partial_latency.observe(time.perf_counter() - work.arrived)
                    continue
                result = await asyncio.wrap_future(item)
                metrics.decode_queue.dec()
                metrics.final_latency.observe(time.perf_counter() - work.arrived)
                if result is not None:
                    outputs.append(result)
        except Exception as err:  # a decoding failure: the waiters learn it, the other legs go on
            log.exception("decoding failed", extra={"protocol": self.protocol})
            for ticket in work.tickets:
                if not ticket.done():
                    ticket.set_exception(err)
            return
        self._hand_over(outputs, work)

    def _redacted(self, outputs: list[Output], work: _Work) -> list[Output]:
        """The outputs as they may leave the process (gruasr.redact): partials masked, finals through the leg's
        StreamRedactor (digits a final ends with wait for the next final, and come out at the stream's end or
        reset), alternatives with every digit run masked (they cannot join a run held across finals)."""
        redactor = self.redactor
        if redactor is None:
            return outputs
        out = []
        for output in outputs:
            event = output.event
            if event.type == "partial":
                out.append(Output(redactor.partial_event(event)))
                continue
            kept = redactor.final(event)
            masked = tuple(_MASK_ALTERNATIVES.redact_hypothesis(h) for h in output.alternatives)
            out.append(Output(kept if kept is not None else replace(event, text="", words=()), masked))
        if work.end:
            flushed = redactor.flush_event()
            if flushed is not None:
                out.append(Output(flushed, (Hypothesis(flushed.text, flushed.words, confidence=1.0),)))
        return out

    def _hand_over(self, outputs: list[Output], work: _Work) -> None:
        """Outputs (redacted) to the listener, then to the waiters (the last ticket of the tick gets them all)."""
        outputs = self._redacted(outputs, work)
        if self.listener is not None and outputs and not self.closed:
            try:
                self.listener(outputs)
            except Exception:  # a publisher's failure must not hold back the waiters
                log.exception("listener failed", extra={"protocol": self.protocol})
        for k, ticket in enumerate(work.tickets):
            if not ticket.done():
                ticket.set_result(outputs if k == len(work.tickets) - 1 else [])
        if work.end and not work.reset:
            self.engine._release(self)
