"""The browser page of `gruasr serve`: `GET /` and its assets under `/web/` (docs/serving.md, "Browser page").

The page (src/gruasr/server/web/) is plain HTML, CSS and JavaScript modules, served from the package as they are:
no build step, nothing from elsewhere. It speaks the server's own protocols (the Vosk WebSocket on `/` for the
microphone, `POST /v1/audio/transcriptions` for files), so it needs no route of its own beyond its files; what
it must know before it has a key (the model's sample rate and names, whether keys are required) is written into
the page as `<meta>` tags.

The page holds no data, so its files are open without a key (gruasr.server.security opens exactly `PAGE_PATHS`,
and only to GET and HEAD); the page asks the person for the key and sends it with each WebSocket and upload.
Every file is sent with a strict Content-Security-Policy (scripts, styles and connections to this origin only,
no inline script or style, no framing) and `X-Content-Type-Options: nosniff`.
"""

from __future__ import annotations

import html
from importlib.resources import files

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

#: the page's files, by name under /web/, and their content types
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "transcript.js": "text/javascript; charset=utf-8",
    "dsp.js": "text/javascript; charset=utf-8",
    "worklet.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
}
#: paths a plain GET may fetch without a key (gruasr.server.security)
PAGE_PATHS = frozenset({"/", *(f"/web/{name}" for name in ASSETS)})

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "media-src 'self' blob:",
        "connect-src 'self' ws: wss:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _read(name: str) -> bytes:
    return (files("gruasr.server") / "web" / name).read_bytes()


def render_index(sample_rate: int, model: str, rest_model: str, keys_required: bool) -> bytes:
    """index.html with the server's facts in its `<meta>` tags (escaped; the page reads them at start)."""
    values = {
        "SAMPLE_RATE": str(sample_rate),
        "MODEL": model,
        "REST_MODEL": rest_model,
        "AUTH": "required" if keys_required else "none",
    }
    text = _read("index.html").decode("utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", html.escape(value, quote=True))
    return text.encode("utf-8")


def page_routes(sample_rate: int, model: str, rest_model: str, keys_required: bool) -> list[Route]:
    """`GET /` (the page) and `GET /web/{name}` (its assets), with the streaming model's rate and name, the REST
    model's name, and whether keys are required; every file is read once, here."""
    index = render_index(sample_rate, model, rest_model, keys_required)
    assets = {name: _read(name) for name in ASSETS}

    async def page(request: Request) -> Response:
        return Response(index, media_type="text/html; charset=utf-8", headers=HEADERS)

    async def asset(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in assets:
            return Response(b"not found\n", 404, media_type="text/plain; charset=utf-8", headers=HEADERS)
        return Response(assets[name], media_type=ASSETS[name], headers=HEADERS)

    return [Route("/", page, methods=["GET"]), Route("/web/{name:str}", asset, methods=["GET"])]
