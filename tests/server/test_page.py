"""The browser page as served (no browser): GET / and its assets with a strict CSP, nosniff and their content
types; nothing in them from another origin; with keys on, the page and its assets open to a plain GET and
nothing else (the Vosk WebSocket on the same path, other methods, other paths stay refused); the wheel's
package data holds them."""

from __future__ import annotations

import contextlib
import re
import tomllib
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from gruasr.server.keys import KeyStore
from gruasr.server.page import ASSETS, CSP, PAGE_PATHS
from gruasr.streaming import StreamingRecognizer
from tests.server.conftest import Running, Utterance, running
from tests.server.vosk_client import closed, final_text, lockstep

ROOT = Path(__file__).resolve().parents[2]
WEB = ROOT / "src" / "gruasr" / "server" / "web"


def _get(
    url: str, method: str = "GET", token: str | None = None, data: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=data, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    store = KeyStore(tmp_path_factory.mktemp("keys") / "keys.json")
    return store.path, store.add("page")


@pytest.fixture(scope="module")
def secured(recognizer: StreamingRecognizer, keys: tuple[Path, str]) -> Iterator[Running]:
    with running(recognizer, keys_file=str(keys[0])) as r:
        yield r


def test_the_page_and_its_assets_are_served_with_csp_nosniff_and_their_types(server: Running) -> None:
    status, headers, body = _get(server.url + "/")
    assert status == 200 and headers["content-type"] == "text/html; charset=utf-8"
    page = body.decode()
    assert '<meta name="gruasr-sample-rate" content="8000">' in page
    assert '<meta name="gruasr-auth" content="none">' in page
    assert '<meta name="gruasr-model" content="telephone-streaming">' in page
    assert "{{" not in page
    csp = dict(d.strip().split(" ", 1) for d in headers["content-security-policy"].split(";"))
    assert csp["default-src"] == "'self'" and csp["script-src"] == "'self'" and csp["style-src"] == "'self'"
    assert csp["connect-src"] == "'self' ws: wss:" and csp["frame-ancestors"] == "'none'"
    assert "unsafe" not in headers["content-security-policy"]
    for name, kind in ASSETS.items():
        status, headers, body = _get(f"{server.url}/web/{name}")
        assert status == 200 and headers["content-type"] == kind and body == (WEB / name).read_bytes(), name
        assert headers["content-security-policy"] == CSP and headers["x-content-type-options"] == "nosniff"
    assert _get(server.url + "/web/nothing.js")[0] == 404
    assert _get(server.url + "/web/..%2Fpage.py")[0] == 404


def test_no_inline_script_or_style_and_nothing_from_another_origin() -> None:
    """Every file of the page is listed and served; none names an http(s) URL or another origin (no CDN, works
    offline); the HTML has no inline script, style or event handler (the CSP would block them)."""
    assert {p.name for p in WEB.iterdir()} == {"index.html", *ASSETS}
    for path in WEB.iterdir():
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\b(?:https?|wss?|ftp)://|//[a-z0-9-]+(?:\.[a-z0-9-]+)+[/:]", text, re.I), path.name
        assert "url(" not in text and "@import" not in text, path.name
    html = (WEB / "index.html").read_text(encoding="utf-8")
    assert not re.search(r"<script(?![^>]*\bsrc=)", html) and "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)  # no onclick= and the like
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gruasr"]
    assert "server/web/*" in data


def test_with_keys_only_a_get_of_the_page_is_open(
    secured: Running, keys: tuple[Path, str], an4: list[Utterance]
) -> None:
    """The page and its assets need no key (they hold no data; the page asks for the key). Everything else still
    does: the Vosk WebSocket on the same path /, POST or PUT to /, an unknown asset, the REST routes."""
    good = keys[1]
    for path in sorted(PAGE_PATHS):
        status, headers, _ = _get(secured.url + path)
        assert status == 200 and headers["x-content-type-options"] == "nosniff", path
        assert _get(secured.url + path, method="HEAD")[0] == 200, path
    assert b'content="required"' in _get(secured.url + "/")[2]
    for method, path in (("POST", "/"), ("PUT", "/"), ("DELETE", "/web/app.js"), ("GET", "/web/nothing.js"),
                         ("GET", "/v1/models"), ("GET", "/metrics"), ("POST", "/v1/audio/transcriptions")):  # fmt: skip
        status, _, body = _get(secured.url + path, method=method, data=b"" if method in ("POST", "PUT") else None)
        assert status == 401 and b"unauthorized" in body, (method, path, status)
    with connect(secured.ws + "/", compression=None, open_timeout=30) as ws:  # the WebSocket on / stays closed
        with contextlib.suppress(ConnectionClosed):
            ws.send(an4[0].pcm[:1600])
        assert closed(ws) == 1008 and "unauthorized" in (ws.close_reason or "")
    assert final_text(lockstep(f"{secured.ws}/?token={good}", an4[0].pcm))  # and works with the key
    assert _get(secured.url + "/v1/models", token=good)[0] == 200


def test_the_vosk_websocket_and_the_page_share_the_path(server: Running, an4: list[Utterance]) -> None:
    """GET / is the page; a WebSocket on / is still the Vosk protocol."""
    assert _get(server.url + "/")[0] == 200
    assert final_text(lockstep(server.ws, an4[0].pcm))
