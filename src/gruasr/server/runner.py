"""Running the app: uvicorn with the server's thread layout, JSON log lines on stderr, and a SIGTERM drain.

SIGTERM (or Ctrl+C) drains: /readyz turns 503 and new sessions are refused ("draining"); every open session is
asked to end, so it gets the finals of what was said (Vosk clients a final result then close 1001, calls their
last events); after they are done, or `drain_seconds`, uvicorn stops and the process exits 0. A second signal
stops at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette

from gruasr.errors import ConfigError
from gruasr.server.app import create_app
from gruasr.server.config import ServerConfig
from gruasr.server.engine import Engine
from gruasr.server.keys import KeyStore
from gruasr.server.security import check_exposure, guarded_h11, protect_logs, tls_context
from gruasr.vad import EndpointConfig

if TYPE_CHECKING:
    from gruasr.streaming.recognizer import StreamingRecognizer

log = logging.getLogger("gruasr.server")
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and the record's `extra` fields (never audio or
    transcripts: the server logs sizes, ids and reasons only)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update({k: v for k, v in record.__dict__.items() if k not in _STANDARD})
        if record.exc_info:
            out["error"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def setup_logging(level: str = "info") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in ("gruasr", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level.upper())
        logger.propagate = False


class DrainingServer(uvicorn.Server):
    """uvicorn's server whose first SIGTERM/SIGINT drains the engine before stopping (see the module docstring)."""

    def __init__(self, config: uvicorn.Config, engine: Engine, drain_seconds: float) -> None:
        super().__init__(config)
        self.engine = engine
        self.drain_seconds = drain_seconds
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False

    async def serve(self, sockets: Any = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().serve(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining or self._loop is None:
            super().handle_exit(sig, frame)
            self.force_exit = self._draining
            return
        self._draining = True
        self._loop.call_soon_threadsafe(lambda: self._loop and self._loop.create_task(self.drain()))

    async def drain(self) -> None:
        """Refuse new sessions, let the open ones end with their finals (bounded), then stop."""
        log.info("draining", extra={"streams": len(self.engine.legs), "seconds": self.drain_seconds})
        self.engine.drain()
        idle = await self.engine.wait_idle(self.drain_seconds)
        await asyncio.sleep(0.2)  # the last close frames and call events leave
        log.info("drained" if idle else "drain timed out", extra={"streams": len(self.engine.legs)})
        self.should_exit = True


def uvicorn_config(app: Starlette, config: ServerConfig) -> uvicorn.Config:
    """uvicorn's settings: no per-message deflate (no Sec-WebSocket-Extensions a PBX module did not offer), the
    sans-I/O websockets implementation, our logging, one event loop; and the limits of the front door: TLS
    (gruasr.server.security.tls_context), the largest WebSocket message, open connections at most, and the
    h11 protocol with a deadline for the request head (a client that trickles its headers is cut off)."""
    metrics = app.state.metrics
    tls = tls_context(config)
    return uvicorn.Config(
        app,
        host=config.host,
        port=config.port,
        http=guarded_h11(config.handshake_seconds, lambda: metrics.refuse("handshake_timeout")),
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        ws_max_size=config.max_message_bytes,
        limit_concurrency=config.connections,
        ssl_context_factory=None if tls is None else (lambda _config, _default: tls),
        lifespan="on",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=max(1, int(config.drain_seconds)),
    )


def build(config: ServerConfig, recognizer: StreamingRecognizer | None = None) -> tuple[Starlette, DrainingServer]:
    """The app and its uvicorn server (recognizer None: load config.model or the bundled streaming model; the
    REST model as config.rest_model says). ConfigError for an exposure check_exposure refuses, unreadable TLS
    files or keys file."""
    protect_logs()
    for warning in check_exposure(config):
        log.warning(warning)
    keys = KeyStore(config.keys_file) if config.keys_file is not None else None
    if keys is not None and not keys.active:
        log.warning("the keys file has no active key: every request will be refused", extra={"keys": len(keys.keys)})
    trusted = list(config.trusted_keys) or None  # models must be signed by one of these keys
    offline: Any
    if config.engine == "onnx":  # ONNX Runtime sessions, config.torch_threads intra-op threads each
        from gruasr.runtime import OnnxRecognizer, OnnxStreamingRecognizer

        if recognizer is None:
            endpoint = EndpointConfig(trailing_silence=config.trailing_silence)
            second = None
            if config.second_pass is not None:
                second = OnnxRecognizer.load(config.second_pass, trusted_keys=trusted, threads=config.torch_threads)
            onnx: Any = OnnxStreamingRecognizer.load(
                config.model or "", endpoint=endpoint, trusted_keys=trusted, threads=config.torch_threads,
                second_pass=second,
            )  # fmt: skip
            recognizer = onnx  # StreamingRecognizer's interface
        offline = (
            None if config.rest_model in (None, "streaming")
            else OnnxRecognizer.load(config.rest_model, trusted_keys=trusted, threads=config.torch_threads)
        )  # fmt: skip
    else:
        from gruasr.recognizer import OfflineRecognizer
        from gruasr.streaming.recognizer import StreamingRecognizer

        if recognizer is None:
            endpoint = EndpointConfig(trailing_silence=config.trailing_silence)
            second_pass = None
            if config.second_pass is not None:
                folder = None if config.second_pass == "default" else config.second_pass
                second_pass = OfflineRecognizer.load(folder, trusted_keys=trusted)
            recognizer = StreamingRecognizer.load(
                config.model, endpoint=endpoint, trusted_keys=trusted, second_pass=second_pass
            )
        offline = (
            None
            if config.rest_model == "streaming"
            else OfflineRecognizer.load(config.rest_model, trusted_keys=trusted)
        )
    if recognizer is None:  # both branches load one
        raise ConfigError("no streaming recognizer")
    app = create_app(config, recognizer, offline, keys=keys)
    return app, DrainingServer(uvicorn_config(app, config), app.state.engine, config.drain_seconds)


def run(config: ServerConfig) -> int:
    """`gruasr serve`: load, listen, serve until SIGTERM, drain, exit 0."""
    setup_logging()
    _, server = build(config)
    log.info(
        "serving",
        extra={"host": config.host, "port": config.port, "audiosocket_port": config.audiosocket_port,
               "torch_threads": config.torch_threads, "decode_workers": config.decoders,
               "decode_in": config.decode_in, "tls": config.tls_cert is not None,
               "mutual_tls": config.tls_client_ca is not None, "auth": config.keys_file is not None},
    )  # fmt: skip
    server.run()
    return 0
