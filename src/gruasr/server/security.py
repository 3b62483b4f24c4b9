"""The server's front door: TLS, API-key authentication, and the handshake deadline (docs/security.md).

- `tls_context(config)`: TLS 1.2 at least, the server's certificate and key, and with `tls_client_ca` mutual TLS
  (a client certificate signed by that CA is required). The same context serves HTTP/WebSocket and AudioSocket.
- `Authentication`: ASGI middleware in front of every route but the probes (/healthz, /readyz) and a plain GET of
  the browser page and its assets (gruasr.server.page: they hold no data; the WebSocket on / is not opened by
  this, nor any other method or path). The key comes as
  `Authorization: Bearer KEY` or `?token=KEY` (browsers and some PBX modules cannot set headers); it is checked
  before the route runs, so no audio of a refused client is ever read: HTTP gets 401 with OpenAI's error object,
  a WebSocket is accepted and closed at once with 1008 (policy violation) and the reason. Every request carries
  its `Principal` (key and client address) in `scope["gruasr.principal"]` for the per-client limits.
- `guarded_h11(...)`: uvicorn's h11 protocol with a deadline for the request head: a client that opens a socket
  and sends its headers slowly (or never) is cut off after `handshake_seconds` ("slowloris").
- `check_exposure(config)`: the server refuses to listen beyond loopback without keys, unless told
  `insecure_no_auth`; AudioSocket (no authentication in the protocol) beyond loopback needs mutual TLS.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qs

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol
from websockets.frames import Frame

from gruasr.errors import ConfigError
from gruasr.server.config import ServerConfig
from gruasr.server.guard import Principal
from gruasr.server.keys import ApiKey, KeyStore
from gruasr.server.metrics import Metrics
from gruasr.server.page import PAGE_PATHS

log = logging.getLogger("gruasr.server.security")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: paths open without a key: liveness and readiness probes of load balancers and orchestrators (no data)
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
#: methods that may fetch the page's files (PAGE_PATHS) without a key
PAGE_METHODS = frozenset({"GET", "HEAD"})
#: WebSocket close code of a refused key (RFC 6455 1008: policy violation)
POLICY_VIOLATION = 1008


# -- TLS --------------------------------------------------------------------------------------------------


def tls_context(config: ServerConfig) -> ssl.SSLContext | None:
    """The server's TLS context (None when no certificate is configured); ConfigError for unreadable files."""
    if config.tls_cert is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    try:
        context.load_cert_chain(config.tls_cert, config.tls_key)
    except (OSError, ssl.SSLError) as err:
        raise ConfigError(f"TLS certificate {config.tls_cert} / key {config.tls_key}: {err}") from None
    if config.tls_client_ca is not None:
        try:
            context.load_verify_locations(cafile=config.tls_client_ca)
        except (OSError, ssl.SSLError) as err:
            raise ConfigError(f"TLS client CA {config.tls_client_ca}: {err}") from None
        context.verify_mode = ssl.CERT_REQUIRED
    return context


# -- who may listen where ------------------------------------------------------------------------------------


def is_loopback(host: str) -> bool:
    """True when `host` only ever reaches this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a[4][0]).is_loopback for a in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


def check_exposure(config: ServerConfig) -> list[str]:
    """Refuse (ConfigError) a configuration that would expose audio to the network unprotected; returns warnings
    for what is allowed but worth saying (plain HTTP beyond loopback: fine behind a TLS-terminating proxy)."""
    warnings = []
    open_http = not is_loopback(config.host)
    if open_http and config.keys_file is None and not config.insecure_no_auth:
        raise ConfigError(
            f"refusing to listen on {config.host} without API keys: give --keys-file (create keys with "
            "`gruasr keys add NAME --keys-file FILE`), listen on 127.0.0.1, or pass --insecure-no-auth"
        )
    if open_http and config.tls_cert is None:
        warnings.append(f"listening on {config.host} without TLS: keys and audio travel in clear text unless a "
                        "TLS-terminating proxy is in front")  # fmt: skip
    if config.audiosocket_port is not None and not is_loopback(config.audiosocket_host):
        mutual = config.tls_cert is not None and config.tls_client_ca is not None
        if not mutual and not config.insecure_no_auth:
            raise ConfigError(
                f"refusing AudioSocket on {config.audiosocket_host}: the protocol has no authentication or "
                "encryption; bind it to 127.0.0.1 (and carry it over a TLS tunnel such as stunnel, see "
                "docs/security.md), give --tls-cert/--tls-key/--tls-client-ca for mutual TLS, or pass "
                "--insecure-no-auth"
            )
    return warnings


# -- authentication -------------------------------------------------------------------------------------------


def presented_token(scope: Scope) -> str | None:
    """The key a request presents: `Authorization: Bearer KEY`, else the `token` query parameter."""
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
    query = scope.get("query_string") or b""
    if b"token=" in query:
        values = parse_qs(query.decode("latin-1"), max_num_fields=64).get("token")
        if values:
            return values[0]
    return None


class Authentication:
    """ASGI middleware: see the module docstring. `keys` None: no authentication (loopback or an explicit
    `insecure_no_auth`); the principal (address only) is still attached for the per-address limits."""

    def __init__(self, app: ASGIApp, keys: KeyStore | None, metrics: Metrics) -> None:
        self.app = app
        self.keys = keys
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else None
        key: ApiKey | None = None
        if self.keys is not None and not is_open(scope):
            token = presented_token(scope)
            try:
                key = self.keys.authenticate(token)
            except ConfigError as err:  # the keys file is broken: refuse everyone rather than let anyone in
                log.error("keys file unreadable: %s", err)
                key = None
            if key is None:
                why = "no API key" if not token else "unknown or revoked API key"
                self.metrics.refuse("unauthorized")
                log.info("unauthorized", extra={"path": scope.get("path"), "client": address, "why": why})
                await _refuse(scope, receive, send, why)
                return
        scope["gruasr.principal"] = Principal(key, address)
        await self.app(scope, receive, send)


def is_open(scope: Scope) -> bool:
    """True for what needs no key: the probes, and an HTTP GET (or HEAD) of the page or one of its assets."""
    path = scope.get("path")
    if path in OPEN_PATHS:
        return True
    return scope["type"] == "http" and scope.get("method") in PAGE_METHODS and path in PAGE_PATHS


async def _refuse(scope: Scope, receive: Receive, send: Send, why: str) -> None:
    message = f"unauthorized: {why} (send Authorization: Bearer KEY or ?token=KEY)"
    if scope["type"] == "websocket":
        connect = await receive()
        if connect.get("type") != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": POLICY_VIOLATION, "reason": message[:120]})
        return
    body = json.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 401,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"www-authenticate", b'Bearer realm="gruasr"'),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def principal(scope: Scope) -> Principal:
    """The principal the middleware attached (an app without the middleware: the client address only)."""
    found = scope.get("gruasr.principal")
    if isinstance(found, Principal):
        return found
    client = scope.get("client")
    return Principal(None, client[0] if client else None)


# -- logs without secrets -------------------------------------------------------------------------------------

_SECRETS = re.compile(r"(?i)(token=|bearer\s+)[^&\s\"']+|gk_[A-Za-z0-9_-]{8,}")


def scrub(text: str) -> str:
    """`text` with API keys, `token=` values and bearer credentials replaced by [redacted]."""
    return _SECRETS.sub(lambda m: (m.group(1) or "") + "[redacted]", text)


class SecretFilter(logging.Filter):
    """Scrubs keys from every record of the logger it is attached to (uvicorn logs a WebSocket's path with its
    query string, where `?token=` travels), and drops websockets' debug records of frames (their payload is audio
    or transcripts)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, Frame) for a in record.args):
            return False  # websockets' debug log of every frame: audio and transcripts
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def protect_logs() -> None:
    """Attach SecretFilter to the loggers that see request paths and our own (idempotent)."""
    for name in ("uvicorn.error", "uvicorn.access", "gruasr"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, SecretFilter) for f in logger.filters):
            logger.addFilter(SecretFilter())


# -- the handshake deadline ----------------------------------------------------------------------------------


def guarded_h11(seconds: float, on_timeout: Callable[[], None]) -> type[H11Protocol]:
    """uvicorn's h11 protocol whose request head must be complete within `seconds` of the connection (and of
    the end of the previous response, on a kept-alive connection); else the socket is closed and `on_timeout`
    called (a metric). A WebSocket upgrade hands the socket to the WebSocket protocol with the head complete."""

    class GuardedH11Protocol(H11Protocol):
        _deadline: Any = None

        def __init__(self, config: Any, *args: Any, **kwargs: Any) -> None:
            super().__init__(config, *args, **kwargs)
            self.access_log = self.access_log and config.access_log  # no access lines: URLs carry ?token=

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.transport is not None and not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                on_timeout()
                log.info("handshake timeout", extra={"client": self.client[0] if self.client else None})
                self.transport.close()

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm()

        def handle_events(self) -> None:
            super().handle_events()
            if self.conn.their_state is not h11.IDLE or self.transport.is_closing():
                self._disarm()  # the head is in (or the connection is over)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedH11Protocol
