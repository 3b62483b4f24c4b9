"""The server's one scheduler: every open leg's audio advanced together on a fixed tick, finals decoded in a pool.

Thread layout (docs/serving.md, "Threads"): the asyncio event loop (all sockets and protocol parsing) in the main
thread; one ticker thread that runs `StreamingRecognizer.advance` for all streams with waiting audio, with
`torch_threads` intra-op threads (1 by default: a parallel region waits on its slowest thread, and on a shared
machine a descheduled peer makes every tick wait); `decode_workers` threads (or, with decode_in = "processes",
spawned processes) that decode finals (beam search + LM).
A tick starts at most every `tick_ms`, and right away when audio arrives after an idle spell. REST uploads are
transcribed in one more thread, so a long file never holds up live calls' finals.

Adapters (vosk.py, media_streams.py, audiosocket.py) open a `Leg` per stream (gruasr.server.legs), push audio
into it and end it; a tick takes every leg's waiting audio (at most `max_tick_audio` seconds each).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import ctypes
import ctypes.util
import functools
import logging
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from gruasr.decoding.hypothesis import Hypothesis
from gruasr.events import Event, PendingFinal
from gruasr.redact import parse_rules
from gruasr.server.config import ServerConfig
from gruasr.server.decoding import DecodeRequest, DecoderProcesses, DecoderThreads, DecodingParts, decoder_pool
from gruasr.server.guard import Guard, Pass, Principal, SessionClock
from gruasr.server.legs import Leg, Output, Refused, _Work, shift
from gruasr.server.metrics import Metrics

if TYPE_CHECKING:  # the torch engine or the ONNX runtime's (gruasr.runtime): the same interface
    from gruasr.recognizer import OfflineRecognizer
    from gruasr.streaming.recognizer import StreamingRecognizer

__all__ = ["Engine", "Interrupt", "Leg", "Output", "Refused"]
T = TypeVar("T")

log = logging.getLogger("gruasr.server")


def malloc_trimmer() -> Callable[[int], int] | None:
    """glibc's malloc_trim(pad), or None where the C library has none (musl, macOS, Windows)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        trim: Callable[[int], int] = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


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


class Engine:
    """Owns the shared recognizer, the ticker thread, the decoding pool and the open legs."""

    def __init__(
        self,
        recognizer: StreamingRecognizer,
        config: ServerConfig,
        metrics: Metrics,
        offline: OfflineRecognizer | None = None,
    ) -> None:
        self.recognizer = recognizer
        #: the model of REST transcriptions (default: the streaming model's offline recognizer)
        self.offline = offline or recognizer.offline
        self.config = config
        self.metrics = metrics
        #: what decoding a final needs (tokens, options, LM, lexicon), handed to the decoding pool
        self.decoding = DecodingParts.of(recognizer.finals)  # the second pass decodes the finals, when there is one
        #: a second pass runs in the decoding threads beside the ticker (torch and ONNX Runtime release the GIL
        #: in their kernels); decoding processes have no model, so with them it runs in the ticker
        recognizer.defer_second_pass = recognizer.second_pass is not None and config.decode_in == "threads"
        #: per-key and per-address sessions, and keys' audio quotas
        self.guard = Guard(config.max_sessions_per_address)
        #: redaction of every transcript before it leaves (config.redact; gruasr.redact)
        self.policy = parse_rules(config.redact)
        self.draining = False
        self.legs: set[Leg] = set()
        self._wake = asyncio.Event()
        self._drain_callbacks: set[Callable[[], None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._trimmer: asyncio.Task[None] | None = None
        self._ticker: concurrent.futures.ThreadPoolExecutor | None = None
        self._decoders: DecoderThreads | DecoderProcesses | None = None
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
        if self.config.engine == "torch":  # the ONNX engine's sessions were made with `threads` intra-op threads
            import torch

            torch.set_num_threads(threads)  # process-wide: the ticker's network steps, and REST transcriptions
        self._ticker = concurrent.futures.ThreadPoolExecutor(1, "gruasr-ticker")
        self._decoders = decoder_pool(self.decoding, self.config.decoders, self.config.decode_in)
        await asyncio.get_running_loop().run_in_executor(None, self._decoders.start)  # processes: spawned, loaded
        self._offline = concurrent.futures.ThreadPoolExecutor(1, "gruasr-offline")
        self._wake = asyncio.Event()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="gruasr-ticker")
        self._trimmer = asyncio.get_running_loop().create_task(self._trim(), name="gruasr-trim")
        log.info("engine started", extra={"torch_threads": threads, "decode_workers": self.config.decoders,
                                          "decode_in": self.config.decode_in})  # fmt: skip

    async def stop(self) -> None:
        for task in (self._task, self._trimmer):
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        for pool in (self._ticker, self._offline):
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        if self._decoders is not None:
            self._decoders.shutdown()

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

    def admit(self, principal: Principal, count: int = 1) -> Pass:
        """A place for a new session of `principal` opening `count` legs (Refused: draining, full, over a
        per-key or per-address limit, or over the key's quota). Release the pass when the session ends."""
        self.check_open(count)
        return self.guard.admit(principal)

    def clock(self) -> SessionClock:
        """A new session's duration and idle limits."""
        return SessionClock(self.config.max_session_seconds, self.config.idle_seconds)

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
        self.legs.discard(leg)

    def _release(self, leg: Leg) -> None:
        leg.closed = True
        self.legs.discard(leg)

    # -- the ticker ----------------------------------------------------------------------------------------

    async def _trim(self) -> None:
        """Every `trim_seconds`, hand the memory the C allocator holds free back to the system (glibc's
        malloc_trim, in the ticker's thread between ticks): the threads' arenas otherwise keep what a busy
        minute needed, and a long-running server's RSS creeps up (docs/serving.md, the soak)."""
        trim = malloc_trimmer()
        if trim is None or self.config.trim_seconds <= 0:
            return
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.config.trim_seconds)
            await loop.run_in_executor(self._ticker, trim, 0)

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
            limit = self.config.max_tick_audio
            batch = [leg._take(limit) for leg in list(self.legs) if leg._has_work()]
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
                    final: concurrent.futures.Future[Output | None] = concurrent.futures.Future()
                    decoded = self._decoders.submit_final(item, self.recognizer.second_pass, work.leg.request)
                    decoded.add_done_callback(functools.partial(self._finish, final, item, work.leg.request,
                                                                work.offset))  # fmt: skip
                    items.append(final)
                else:
                    items.append(Output(shift(item, work.offset)))
            results.append(items)
        return results, time.perf_counter() - began, audio

    def _finish(
        self,
        final: concurrent.futures.Future[Output | None],
        pending: PendingFinal,
        request: DecodeRequest,
        offset: float,
        decoded: concurrent.futures.Future[list[Hypothesis]],
    ) -> None:
        """When a final's hypotheses are in (in the decoding thread, or the process pool's result thread): its
        event, with its alternatives when asked, into `final`."""
        if decoded.cancelled():  # the pool shut down with it queued
            final.cancel()
            return
        try:
            final.set_result(self._final(pending, request, offset, decoded.result()))
        except Exception as err:  # a failed decoding (or a dead decoding process): the leg's waiters learn it
            final.set_exception(err)

    def _final(self, pending: PendingFinal, request: DecodeRequest, offset: float, hyps: list[Hypothesis]) -> Output:
        event = pending.event(hyps[0])
        alternatives: tuple[Hypothesis, ...] = ()
        if request.alternatives:
            alternatives = tuple(h.shifted(pending.offset).shifted(offset) for h in hyps)
        if event is None:
            return Output(Event("final", "", offset + pending.offset, offset + pending.end), alternatives)
        if self.config.log_transcripts:  # off by default: logs hold ids, sizes, times and reasons only
            log.info("final", extra={"text": event.text, "start": round(offset + event.start, 3)})
        return Output(shift(event, offset), alternatives)
