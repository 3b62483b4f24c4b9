"""The ASGI app: `create_app(config, recognizer)` builds it, with nothing global (tests start it on a free
loopback port; `gruasr serve` runs it under uvicorn, gruasr.server.runner).

Routes (docs/serving.md has the protocol tables):
  WebSocket /             Vosk server protocol (gruasr.server.vosk)
  GET /, GET /web/{name}  the browser page and its assets (gruasr.server.page; open without a key)
  WebSocket /media        Twilio-format media streams (gruasr.server.media_streams)
  POST /v1/audio/transcriptions   OpenAI-compatible transcription (gruasr.server.rest); GET /v1/models
  GET /v1/calls/{id}/events       a call's transcript as server-sent events (gruasr.server.calls)
  GET /healthz, /readyz, /metrics
and, when `config.audiosocket_port` is set, the AudioSocket TCP listener, started with the app.

Every route but the probes sits behind the authentication middleware (gruasr.server.security; API keys when
`keys` is given, and the client's address for the per-address limits in any case); TLS belongs to the listeners
(the runner's uvicorn settings, and the AudioSocket listener here). Seams: `middleware` (more Starlette middleware,
inside the authentication) and `routes` (more routes ahead of the built-in ones). The page's GET / does not clash
with the WebSocket route on /: Starlette matches HTTP and WebSocket routes apart.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from gruasr.server.audiosocket import AudioSocketServer
from gruasr.server.calls import CallHub
from gruasr.server.config import ServerConfig
from gruasr.server.engine import Engine
from gruasr.server.keys import KeyStore
from gruasr.server.media_streams import media_endpoint
from gruasr.server.metrics import Metrics
from gruasr.server.page import page_routes
from gruasr.server.rest import error, transcriptions
from gruasr.server.security import Authentication, tls_context
from gruasr.server.vosk import vosk_endpoint

if TYPE_CHECKING:  # the torch engine or the ONNX runtime's (gruasr.runtime): the same interface
    from gruasr.recognizer import OfflineRecognizer
    from gruasr.streaming.recognizer import StreamingRecognizer

MODEL_NAME = "gruasr"


def _name(folder: Path | None) -> str:
    """A model's name on the page: its folder's name."""
    return folder.name if folder is not None else "model"


def create_app(
    config: ServerConfig,
    recognizer: StreamingRecognizer,
    offline: OfflineRecognizer | None = None,
    *,
    keys: KeyStore | None = None,
    middleware: Sequence[Middleware] = (),
    routes: Sequence[BaseRoute] = (),
) -> Starlette:
    """The server's app around one shared streaming recognizer (and `offline`, the model of REST transcriptions;
    None: the streaming model's). With `keys`, every route but the probes needs an API key (gruasr.server.security).
    `app.state` holds `engine`, `calls`, `metrics` and, once started, `audiosocket_port` (the bound port, or
    None)."""
    metrics = Metrics()
    engine = Engine(recognizer, config, metrics, offline)
    hub = CallHub(config, metrics)
    audiosocket = AudioSocketServer(engine, hub)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await engine.start()
        await hub.start()
        app.state.audiosocket_port = None
        if config.audiosocket_port is not None:
            app.state.audiosocket_port = await audiosocket.start(
                config.audiosocket_host, config.audiosocket_port, tls_context(config)
            )
        try:
            yield
        finally:
            await audiosocket.stop()
            await hub.stop()
            await engine.stop()

    async def vosk(websocket: WebSocket) -> None:
        await vosk_endpoint(websocket, engine)

    async def media(websocket: WebSocket) -> None:
        await media_endpoint(websocket, engine, hub)

    async def transcribe(request: Request) -> Response:
        return await transcriptions(request, engine)

    async def models(request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": MODEL_NAME, "object": "model", "owned_by": "gruasr"}]})

    async def call_events(request: Request) -> Response:
        call_id = request.path_params["call_id"]
        if call_id not in hub.calls:
            return error(404, f"no call {call_id!r} is open or recently ended", code="not_found")

        async def stream() -> AsyncIterator[str]:
            async for item in hub.subscribe(call_id):
                yield f"event: {item['type']}\ndata: {json.dumps(item)}\n\n"

        return StreamingResponse(stream(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"})

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        if engine.draining:
            return JSONResponse({"status": "draining"}, 503)
        return JSONResponse({"status": "ready", "streams": len(engine.legs)})

    async def prometheus(request: Request) -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    page = page_routes(
        recognizer.sample_rate,
        _name(recognizer.offline.bundle.path),
        _name(engine.offline.bundle.path),
        keys is not None,
    )
    app = Starlette(
        routes=[
            *routes,
            *page,
            WebSocketRoute("/", vosk),
            WebSocketRoute("/media", media),
            Route("/v1/audio/transcriptions", transcribe, methods=["POST"]),
            Route("/v1/models", models),
            Route("/v1/calls/{call_id:str}/events", call_events),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", prometheus),
        ],
        middleware=[Middleware(Authentication, keys=keys, metrics=metrics), *middleware],
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.calls = hub
    app.state.metrics = metrics
    app.state.config = config
    app.state.audiosocket_port = None
    return app
