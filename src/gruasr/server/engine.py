"""The server's one scheduler: every open leg's audio advanced together on a fixed tick, finals decoded in a pool.

Thread layout (docs/serving.md, "Threads"): the asyncio event loop (all sockets and protocol parsing) in the main
thread; one ticker thread that runs `StreamingRecognizer.advance` for all streams with waiting audio, with
`torch_threads` intra-op threads (1 by default: a parallel region waits on its slowest thread, and on a shared
machine a descheduled peer makes every tick wait); `decode_workers` threads that decode finals (beam search + LM).
A tick starts at most every `tick_ms`, and right away when audio arrives after an idle spell. REST uploads are
transcribed in one more thread, so a long file never holds up live calls' finals.

Adapters (vosk.py, media_streams.py, audiosocket.py) open a `Leg` per stream, `push` audio (a future per push
resolves with the outputs of the tick that consumed it) and `end` it; outputs reach a leg's listener in order,
a final once its decoding is done. Audio waiting per leg is bounded (`max_backlog_seconds`): a client that sends
faster than real time for long is refused ("backlog"), it never slows the others.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import TypeVar

import numpy as np
import torch

from gruasr.decoding.hypothesis import Hypothesis
from gruasr.errors import GruAsrError
from gruasr.server.config import ServerConfig
from gruasr.server.decoding import DecodeRequest, FinalDecoder
from gruasr.server.metrics import Metrics
from gruasr.streaming.recognizer import Event, PendingFinal, Stream, StreamingRecognizer

log = logging.getLogger("gruasr.server")


class Refused(GruAsrError):
    """A session or request the server will not take; `reason` is the metric label (gruasr.server.metrics)."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Output:
    """One result for a leg: a partial or final Event (times in seconds from the start of the leg), and for a
    final decoded with alternatives, the n-best texts (their words on the same clock)."""

    event: Event
    alternatives: tuple[Hypothesis, ...] = ()


Listener = Callable[[list[Output]], None]
T = TypeVar("T")


class Interrupt:
    """Lets a drain interrupt a session's receive loop, without a task per message: `await interrupt.receive(aw)`
    gives the awaitable's result, or None once the interrupt is called (before or while waiting). Register the
    instance itself as the session's drain callback (`Engine.on_drain`)."""

    def __init__(self) -> None:
        self.called = False
        self._waiter: asyncio.Task[object] | None = None

    def __call__(self) -> None:
        self.called = True
        if self._waiter is not None:
            self._waiter.cancel()

    async def receive(self, awaitable: Awaitable[T]) -> T | None:
        if self.called:
            return None
        task = asyncio.current_task()
        self._waiter = task
        try:
            return await awaitable
        except asyncio.CancelledError:
            if self.called and task is not None and task.uncancel() == 0:
                return None  # our own cancel: the drain
            raise
        finally:
            self._waiter = None


def shift(event: Event, seconds: float) -> Event:
    """The event moved `seconds` later (a leg's stream restarted after a reset keeps the leg's clock)."""
    if seconds == 0.0:
        return event
    words = tuple(replace(w, start=w.start + seconds, end=w.end + seconds) for w in event.words)
    return replace(event, start=event.start + seconds, end=event.end + seconds, words=words)


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
    """One stream inside the server (a Vosk session, one track of a media stream, an AudioSocket call)."""

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
        self.seconds = 0.0  # audio pushed so far, seconds (the leg's clock)
        self.closed = False
        self._stream = engine.recognizer.stream(sample_rate, leg, channel=channel)
        self._offset = 0.0  # where the current stream started on the leg's clock
        self._chunks: list[np.ndarray] = []
        self._waiting = 0.0  # seconds of audio in _chunks
        self._end = False
        self._reset = False
        self._tickets: list[asyncio.Future[list[Output]]] = []
        self._arrived = 0.0
        self._delivered: asyncio.Task[None] | None = None

    @property
    def ended(self) -> bool:
        """True once the leg's stream was ended (without reset) or the leg closed: it takes no more audio."""
        return self._end or self.closed

    def push(self, samples: np.ndarray) -> asyncio.Future[list[Output]]:
        """Queue mono float samples for the next tick; the future resolves with the outputs of that tick."""
        if self.closed or self._end:
            raise Refused("bad_request", "audio after the end of the stream")
        seconds = samples.shape[0] / self.sample_rate
        if self._waiting + seconds > self.engine.config.max_backlog_seconds:
            raise Refused("backlog", f"more than {self.engine.config.max_backlog_seconds:g} s of audio waiting")
        if not self._chunks:
            self._arrived = time.perf_counter()
        self._chunks.append(samples)
        self._waiting += seconds
        self.seconds += seconds
        self.engine.metrics.audio.labels(self.protocol).inc(seconds)
        return self._ticket()

    def end(self, reset: bool = False) -> asyncio.Future[list[Output]]:
        """End the current utterance and stream; the future resolves with its outputs (the last final). With
        `reset` the leg goes on with a fresh stream on the same clock (Vosk's {"reset": 1})."""
        if self._end:
            raise Refused("bad_request", "the stream has already ended")
        if not self._chunks:
            self._arrived = time.perf_counter()
        self._end, self._reset = True, reset
        return self._ticket()

    def close(self) -> None:
        """Leave: no more outputs are delivered; the engine forgets the leg after its last tick."""
        if not self.closed:
            self.closed = True
            self.engine._forget(self)

    async def delivered(self) -> None:
        """Wait until every output computed so far has reached the listener."""
        if self._delivered is not None:
            await asyncio.shield(self._delivered)

    def _ticket(self) -> asyncio.Future[list[Output]]:
        ticket: asyncio.Future[list[Output]] = asyncio.get_running_loop().create_future()
        self._tickets.append(ticket)
        self.engine._wake.set()
        return ticket

    def _has_work(self) -> bool:
        return bool(self._chunks) or (self._end and bool(self._tickets))

    def _take(self) -> _Work:
        work = _Work(
            self, self._stream, self._offset, self._chunks, self._end, self._reset, self._tickets, self._arrived
        )
        self._chunks, self._tickets, self._waiting = [], [], 0.0
        if self._end and self._reset:  # the next stream starts where this one's audio ended, on the leg's clock
            self._stream = self.engine.recognizer.stream(self.sample_rate, self.leg, channel=self.channel)
            self._offset = self.seconds
            self._end = self._reset = False
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

    def _hand_over(self, outputs: list[Output], work: _Work) -> None:
        """Outputs to the listener, then to the waiters (the last ticket of the tick gets them all)."""
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


class Engine:
    """Owns the shared recognizer, the ticker thread, the decoding pool and the open legs."""

    def __init__(self, recognizer: StreamingRecognizer, config: ServerConfig, metrics: Metrics) -> None:
        self.recognizer = recognizer
        self.config = config
        self.metrics = metrics
        self.decoder = FinalDecoder(recognizer.offline)
        self.draining = False
        self.legs: set[Leg] = set()
        self._wake = asyncio.Event()
        self._drain_callbacks: set[Callable[[], None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._ticker: concurrent.futures.ThreadPoolExecutor | None = None
        self._decoders: concurrent.futures.ThreadPoolExecutor | None = None
        self._offline: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def offline_pool(self) -> concurrent.futures.ThreadPoolExecutor:
        """The one thread that transcribes REST uploads (a long file never holds up the finals of live calls)."""
        if self._offline is None:
            raise Refused("draining", "the server is not running")
        return self._offline

    # -- lifecycle ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        threads = self.config.torch_threads
        torch.set_num_threads(threads)  # process-wide: the ticker's network steps, and REST transcriptions
        self._ticker = concurrent.futures.ThreadPoolExecutor(1, "gruasr-ticker")
        self._decoders = concurrent.futures.ThreadPoolExecutor(self.config.decoders, "gruasr-decode")
        self._offline = concurrent.futures.ThreadPoolExecutor(1, "gruasr-offline")
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="gruasr-ticker")
        log.info("engine started", extra={"torch_threads": threads, "decode_workers": self.config.decoders})

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        for pool in (self._ticker, self._decoders, self._offline):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def drain(self) -> None:
        """Refuse new sessions; ask every open one to end (each gets its final results)."""
        self.draining = True
        for callback in list(self._drain_callbacks):
            callback()

    def on_drain(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Register a session's drain callback; returns the function that unregisters it."""
        self._drain_callbacks.add(callback)
        if self.draining:
            callback()
        return lambda: self._drain_callbacks.discard(callback)

    async def wait_idle(self, timeout: float) -> bool:
        """Wait (at most `timeout` seconds) until no leg is open; True when none is."""
        deadline = time.monotonic() + timeout
        while self.legs and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return not self.legs

    # -- legs --------------------------------------------------------------------------------------------

    def check_open(self, count: int = 1) -> None:
        """Raise Refused when `count` more legs may not open now (draining, or at max_sessions)."""
        if self.draining:
            raise Refused("draining", "the server is shutting down")
        if len(self.legs) + count > self.config.max_sessions:
            raise Refused("capacity", f"the server is at its limit of {self.config.max_sessions} streams")

    def open(
        self,
        protocol: str,
        sample_rate: int,
        channel: int = 0,
        leg: str | None = None,
        request: DecodeRequest | None = None,
    ) -> Leg:
        """A new leg (raises Refused when the server is draining or full)."""
        self.check_open()
        opened = Leg(self, protocol, sample_rate, channel, leg, request or DecodeRequest())
        self.legs.add(opened)
        return opened

    def _forget(self, leg: Leg) -> None:
        if not leg._has_work():
            self.legs.discard(leg)

    def _release(self, leg: Leg) -> None:
        leg.closed = True
        self.legs.discard(leg)

    # -- the ticker ----------------------------------------------------------------------------------------

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        interval = self.config.tick_ms / 1000
        last = 0.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            wait = last + interval - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            last = time.perf_counter()
            batch = [leg._take() for leg in list(self.legs) if leg._has_work()]
            for leg in [w.leg for w in batch if w.leg.closed]:
                self.legs.discard(leg)
            if not batch:
                continue
            try:
                results, spent, audio = await loop.run_in_executor(self._ticker, self._advance, batch)
            except Exception as err:
                log.exception("tick failed", extra={"streams": len(batch)})
                for work in batch:
                    for ticket in work.tickets:
                        if not ticket.done():
                            ticket.set_exception(err)
                continue
            self.metrics.tick.observe(spent)
            self.metrics.batch.set(len(batch))
            if audio > 0:
                self.metrics.rtf.observe(spent / audio)
            for work, items in zip(batch, results, strict=True):
                work.leg._deliver(items, work)
            if any(leg._has_work() for leg in self.legs):
                self._wake.set()

    def _advance(self, batch: list[_Work]) -> tuple[list[list[Output | concurrent.futures.Future]], float, float]:
        """In the ticker thread: feed every leg's audio, run one batched step, hand finals to the pool."""
        began = time.perf_counter()
        audio = 0.0
        for work in batch:
            for chunk in work.chunks:
                work.stream.feed(chunk)
                audio += chunk.shape[0] / work.leg.sample_rate
            if work.end:
                work.stream.feed(np.zeros(0, np.float32), last=True)
        self.recognizer.advance([w.stream for w in batch])
        results: list[list[Output | concurrent.futures.Future]] = []
        for work in batch:
            items: list[Output | concurrent.futures.Future] = []
            for item in work.stream.take():
                if isinstance(item, PendingFinal):
                    if self._decoders is None:
                        raise RuntimeError("the engine is not started")
                    self.metrics.decode_queue.inc()
                    items.append(self._decoders.submit(self._decode, item, work.leg.request, work.offset))
                else:
                    items.append(Output(shift(item, work.offset)))
            results.append(items)
        return results, time.perf_counter() - began, audio

    def _decode(self, pending: PendingFinal, request: DecodeRequest, offset: float) -> Output | None:
        """In a decoding thread: the final of one utterance, with its alternatives when asked."""
        hyps = self.decoder.decode(pending.log_probs, request)
        event = pending.event(hyps[0])
        alternatives: tuple[Hypothesis, ...] = ()
        if request.alternatives:
            alternatives = tuple(
                replace(
                    h, words=tuple(replace(w, start=w.start + offset, end=w.end + offset) for w in pending.words(h))
                )
                for h in hyps
            )
        if event is None:
            return Output(Event("final", "", offset + pending.offset, offset + pending.end), alternatives)
        return Output(shift(event, offset), alternatives)
