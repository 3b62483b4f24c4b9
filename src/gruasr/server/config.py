"""What `gruasr serve` is told: listeners, the thread layout, limits, and where call transcripts go.

A TOML file (`--config serve.toml`) holds a `[server]` table with the field names below; unknown keys are
errors; command-line flags override the file. Nothing here is global: `create_app(config, recognizer)` and
`serve(config)` take the object.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from gruasr.errors import ConfigError


def default_decode_workers() -> int:
    """One decoding thread per core beyond the one that runs the event loop and the ticker, and at least two, so
    that one slow beam search never holds up the other calls' finals."""
    return max(2, (os.cpu_count() or 1) - 1)


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    #: the HTTP/WebSocket port (Vosk's default 2700): Vosk WebSocket on /, media streams on /media, REST
    port: int = 2700
    #: Asterisk AudioSocket TCP port; None: no AudioSocket listener
    audiosocket_port: int | None = None
    #: a model folder (a unidirectional streaming model); None: the bundled streaming model
    model: str | None = None
    #: the model of REST transcriptions (whole recorded files): a model folder; None: the bundled offline
    #: (bidirectional) telephone model, more accurate on recordings; "streaming": the streaming model
    rest_model: str | None = None
    #: a model that decodes each final from its utterance's audio (two passes; the partials stay the streaming
    #: model's): a model folder, "default" for the bundled offline model (torch engine), or an export (onnx
    #: engine); None: the streaming model's own finals. It runs in the decoding threads (in the ticker with
    #: decode_in "processes"): docs/serving.md, "Two passes under load"
    second_pass: str | None = None
    #: "torch", or "onnx": ONNX Runtime on folders of `gruasr model export --onnx` (model: a unidirectional
    #: model's export, required; rest_model: an export, None: the streaming export's whole-utterance graph)
    engine: str = "torch"
    #: torch intra-op threads of the ticker (the one thread that runs the network for all streams). One is the
    #: safe choice on a shared machine: a parallel region waits on its slowest thread, and a descheduled peer
    #: makes every tick wait (100x slower with a CPU hog beside it on 2 cores).
    torch_threads: int = 1
    #: threads (or processes) decoding finals (beam search + LM), beside the event loop and the ticker
    decode_workers: int = 0  # 0: default_decode_workers()
    #: "threads", or "processes": spawned processes, each with its own copy of the LM, so that the beam
    #: searches' Python does not share the ticker's GIL (past ~200 streams the ticks wait on the finals in threads;
    #: docs/serving.md, "Capacity")
    decode_in: str = "threads"
    #: the ticker runs at most once per tick_ms and right away when audio is waiting after an idle spell
    tick_ms: float = 50.0
    #: every trim_seconds the allocator's free memory goes back to the system (glibc malloc_trim; 0: never)
    trim_seconds: float = 30.0
    #: open streaming sessions (all protocols); past it new ones are refused ("capacity")
    max_sessions: int = 256
    #: audio a session may have waiting for the ticker, seconds; past it the session is refused ("backlog")
    max_backlog_seconds: float = 10.0
    #: audio of one session a tick takes at most, seconds: a client sending faster than real time catches up over
    #: several ticks instead of making everyone's tick long
    max_tick_audio: float = 1.0
    #: replies and call events waiting for a slow client, per connection; past it the client is dropped ("slow")
    max_outbox: int = 256
    #: largest REST upload, bytes
    max_upload_bytes: int = 100 * 1024 * 1024
    #: SIGTERM: open sessions get their finals within this many seconds, then the process exits
    drain_seconds: float = 10.0
    #: write each media-stream and AudioSocket call's final events as JSON Lines under this folder
    output: str | None = None
    #: POST each final event of a media-stream or AudioSocket call to this URL (JSON)
    webhook: str | None = None
    #: endpointing: seconds of silence that end an utterance
    trailing_silence: float = 0.6
    #: calls whose events stay available over server-sent events after they ended
    keep_calls: int = 100

    # -- security (docs/security.md) --
    #: PEM certificate chain and private key: every HTTP/WebSocket listener (and AudioSocket) speaks TLS >= 1.2
    tls_cert: str | None = None
    tls_key: str | None = None
    #: PEM CA bundle: clients must present a certificate it signed (mutual TLS)
    tls_client_ca: str | None = None
    #: API keys file (`gruasr keys add`); None: no authentication, allowed on loopback only (or insecure_no_auth)
    keys_file: str | None = None
    #: listen beyond loopback without keys (and AudioSocket without mutual TLS): only for a trusted network
    insecure_no_auth: bool = False
    #: the AudioSocket listener's address (the protocol has no security of its own: loopback by default)
    audiosocket_host: str = "127.0.0.1"
    #: largest WebSocket message, bytes (a Vosk client sends 0.1-0.5 s chunks: 1.6-8 kB at 8 kHz)
    max_message_bytes: int = 1024 * 1024
    #: a streaming session lasts this long at most, seconds (then its final, and a close with "duration")
    max_session_seconds: float = 4 * 3600.0
    #: a streaming session that sends nothing for this long is closed ("idle")
    idle_seconds: float = 60.0
    #: a connection's request head (HTTP headers, WebSocket handshake) must be in within this many seconds
    handshake_seconds: float = 10.0
    #: a REST upload's body must be in within this many seconds
    upload_seconds: float = 300.0
    #: streaming sessions and REST requests open at once per client address (0: no limit of its own; a PBX
    #: brings all its calls from one address)
    max_sessions_per_address: int = 0
    #: audio of one REST upload at most, seconds (checked from the header before decoding)
    max_upload_seconds: float = 4 * 3600.0
    #: open connections at most (uvicorn's limit_concurrency: past it HTTP gets 503); 0: max_sessions + 64
    max_connections: int = 0
    #: write transcript text in the logs (off: logs hold ids, sizes, times and reasons only)
    log_transcripts: bool = False
    #: redaction rules applied to every transcript before it leaves the process: "card", "digits>=N"
    redact: tuple[str, ...] = ()
    #: Ed25519 public keys (PEM files): the models must be signed by one of them
    trusted_keys: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for name in ("torch_threads", "max_sessions", "max_outbox", "max_upload_bytes", "keep_calls"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"server.{name} must be a positive integer, got {value!r}")
        for name in ("port", "audiosocket_port"):
            value = getattr(self, name)
            if value is None and name == "audiosocket_port":
                continue
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 65535:
                raise ConfigError(f"server.{name} must be a port number 0..65535 (0: any free one), got {value!r}")
        if self.engine not in ("torch", "onnx"):
            raise ConfigError(f"server.engine must be 'torch' or 'onnx', got {self.engine!r}")
        if self.engine == "onnx" and self.model is None:
            raise ConfigError("server.engine 'onnx' needs server.model: a folder of `gruasr model export --onnx`")
        if self.engine == "onnx" and self.second_pass == "default":
            raise ConfigError("server.engine 'onnx' needs server.second_pass to be a folder of an ONNX export")
        if self.decode_in not in ("threads", "processes"):
            raise ConfigError(f"server.decode_in must be 'threads' or 'processes', got {self.decode_in!r}")
        if not 0 <= self.decode_workers <= 64:
            raise ConfigError(f"server.decode_workers must be 0 (one per spare core) to 64, got {self.decode_workers}")
        for name in ("tick_ms", "max_backlog_seconds", "max_tick_audio", "drain_seconds", "trailing_silence"):
            value = getattr(self, name)
            if not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"server.{name} must be a number > 0, got {value!r}")
        trim = self.trim_seconds
        if isinstance(trim, bool) or not isinstance(trim, int | float) or not 0 <= trim < float("inf"):
            raise ConfigError(f"server.trim_seconds must be a number >= 0 (0: never), got {self.trim_seconds!r}")
        if self.webhook is not None and not self.webhook.startswith(("http://", "https://")):
            raise ConfigError(f"server.webhook must be an http(s) URL, got {self.webhook!r}")
        for name in ("max_message_bytes",):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1024:
                raise ConfigError(f"server.{name} must be an integer >= 1024, got {value!r}")
        for name in ("max_sessions_per_address", "max_connections"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"server.{name} must be an integer >= 0 (0: no limit of its own), got {value!r}")
        for name in ("max_session_seconds", "idle_seconds", "handshake_seconds", "upload_seconds",
                     "max_upload_seconds"):  # fmt: skip
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigError(f"server.{name} must be a number > 0, got {value!r}")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("server.tls_cert and server.tls_key come together")
        if self.tls_client_ca is not None and self.tls_cert is None:
            raise ConfigError("server.tls_client_ca (mutual TLS) needs tls_cert and tls_key")
        for name in ("redact", "trusted_keys"):
            value = getattr(self, name)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"server.{name} must be a list of strings, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        from gruasr.redact import parse_rules

        parse_rules(self.redact)  # a bad rule is an error at start, not at the first card number

    @property
    def connections(self) -> int:
        """Open connections at most: max_connections, or max_sessions + 64."""
        return self.max_connections or self.max_sessions + 64

    @property
    def decoders(self) -> int:
        """Decoding threads (or processes): decode_workers, or one per spare core."""
        return self.decode_workers or default_decode_workers()

    def with_overrides(self, **overrides: Any) -> ServerConfig:
        """A copy with the given fields replaced (None values are ignored: a flag that was not given)."""
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def load_config(path: str | os.PathLike[str] | None) -> ServerConfig:
    """ServerConfig from a TOML file's [server] table (None: the defaults)."""
    if path is None:
        return ServerConfig()
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"server config not found: {file}")
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{file}: not valid TOML ({err})") from None
    extra = set(data) - {"server"}
    if extra:
        raise ConfigError(f"{file}: unknown tables {sorted(extra)} (expected [server])")
    table = data.get("server", {})
    known = {f.name for f in fields(ServerConfig)}
    unknown = set(table) - known
    if unknown:
        raise ConfigError(f"{file}: unknown server keys {sorted(unknown)}; known: {sorted(known)}")
    try:
        return ServerConfig(**table)
    except TypeError as err:
        raise ConfigError(f"{file}: {err}") from None
