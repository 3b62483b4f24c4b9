"""Where the transcripts of phone calls (media streams, AudioSocket) go: per call, server-sent events on
`GET /v1/calls/{id}/events`, a JSON Lines file under `--output DIR`, and an optional webhook POST per final.

Each object is the event of `gruasr call --json` with the call's id instead of the file name:
`{"call", "type": "final", "channel", "leg", "text", "start", "end", "words"}`; SSE also carries the partials,
`{"call", "type": "dtmf", "channel", "leg", "digit", "time"}` marks a key press (file and SSE), and a last
`{"call", "type": "end"}` closes an SSE stream. A call's events stay replayable to late subscribers while it is
open and for the last `keep_calls` ended calls. Queues are bounded: a subscriber that does not read is dropped
("slow"), and so are webhook posts that cannot keep up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import urllib.request
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

from gruasr.server.config import ServerConfig
from gruasr.server.engine import Output
from gruasr.server.metrics import Metrics

log = logging.getLogger("gruasr.server.calls")
HISTORY = 2000  # events kept per call for late subscribers
SUBSCRIBER_QUEUE = 1000
WEBHOOK_QUEUE = 1000
WEBHOOK_TIMEOUT = 5.0
_SAFE = re.compile(r"[^A-Za-z0-9_.-]")


def file_name(call_id: str) -> str:
    """A call id as a file name: letters, digits, '_', '.', '-' kept, anything else '_' (never a path)."""
    name = _SAFE.sub("_", call_id)[:128].lstrip(".")
    return (name or "call") + ".jsonl"


class Call:
    """One call's event log: history, subscribers, file."""

    def __init__(self, hub: CallHub, call_id: str, protocol: str) -> None:
        self.hub = hub
        self.id = call_id
        self.protocol = protocol
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self.ended = False
        self._file: IO[str] | None = None
        if hub.config.output is not None:
            folder = Path(hub.config.output)
            folder.mkdir(parents=True, exist_ok=True)
            self._file = (folder / file_name(call_id)).open("a", encoding="utf-8")

    def publish(self, obj: dict[str, Any]) -> None:
        """Send one event (without the "call" key) to subscribers; finals and DTMF also to the file and webhook."""
        item = {"call": self.id, **obj}
        self.history.append(item)
        for queue in list(self.subscribers):
            try:
                queue.put_nowait(item)
            except asyncio.QueueFull:
                self.hub.metrics.refuse("slow")
                self.subscribers.discard(queue)
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)
        if item.get("type") in ("final", "dtmf"):
            if self._file is not None:
                self._file.write(json.dumps(item) + "\n")
                self._file.flush()
            if item["type"] == "final":
                self.hub.post(item)

    def listener(self, outputs: list[Output]) -> None:
        """A leg's outputs as call events (the engine's Listener): partials, and finals that have words."""
        for output in outputs:
            event = output.event
            if event.type == "partial" or event.text:
                self.publish(event.to_dict())

    def end(self) -> None:
        if self.ended:
            return
        self.ended = True
        end = {"call": self.id, "type": "end"}
        self.history.append(end)
        for queue in list(self.subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(end)
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        self.subscribers.clear()
        if self._file is not None:
            self._file.close()
        self.hub._ended(self)


class CallHub:
    """All calls of one server, open and recently ended."""

    def __init__(self, config: ServerConfig, metrics: Metrics) -> None:
        self.config = config
        self.metrics = metrics
        self.calls: dict[str, Call] = {}
        self._ended_calls: OrderedDict[str, None] = OrderedDict()
        self._webhook: asyncio.Queue[dict[str, Any]] | None = None
        self._poster: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if self.config.webhook is not None:
            self._webhook = asyncio.Queue(WEBHOOK_QUEUE)
            self._poster = asyncio.get_running_loop().create_task(self._post_loop(self.config.webhook, self._webhook))

    async def stop(self) -> None:
        if self._poster is not None and self._webhook is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._webhook.join(), WEBHOOK_TIMEOUT)
            self._poster.cancel()
            await asyncio.gather(self._poster, return_exceptions=True)

    def begin(self, call_id: str, protocol: str) -> Call:
        """A new call (an id already open gets a suffix, so two calls never share a log)."""
        unique, n = call_id, 1
        while unique in self.calls and not self.calls[unique].ended:
            n += 1
            unique = f"{call_id}-{n}"
        call = Call(self, unique, protocol)
        self.calls[unique] = call
        self._ended_calls.pop(unique, None)
        return call

    def _ended(self, call: Call) -> None:
        self._ended_calls[call.id] = None
        while len(self._ended_calls) > self.config.keep_calls:
            old, _ = self._ended_calls.popitem(last=False)
            self.calls.pop(old, None)

    async def subscribe(self, call_id: str) -> AsyncIterator[dict[str, Any]]:
        """The call's events so far, then live ones until it ends. KeyError for an unknown call."""
        call = self.calls[call_id]
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(SUBSCRIBER_QUEUE)
        backlog = list(call.history)
        if not call.ended:
            call.subscribers.add(queue)
        try:
            for old in backlog:
                yield old
            if call.ended:
                return
            while (live := await queue.get()) is not None:
                yield live
        finally:
            call.subscribers.discard(queue)

    def post(self, item: dict[str, Any]) -> None:
        if self._webhook is None:
            return
        try:
            self._webhook.put_nowait(item)
        except asyncio.QueueFull:
            self.metrics.refuse("slow")
            log.warning("webhook queue full: a final was not posted", extra={"call": item.get("call")})

    async def _post_loop(self, url: str, queue: asyncio.Queue[dict[str, Any]]) -> None:
        while True:
            item = await queue.get()
            try:
                await asyncio.to_thread(_post_json, url, item)
            except Exception as err:  # the receiver's failure is logged, the calls go on
                log.warning("webhook post failed: %s", type(err).__name__, extra={"call": item.get("call")})
            finally:
                queue.task_done()


def _post_json(url: str, item: dict[str, Any]) -> None:
    request = urllib.request.Request(
        url, data=json.dumps(item).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:  # noqa: S310 -- http(s) checked
        response.read()
