"""The front door (docs/security.md): TLS and mutual TLS with a test CA (trustme), checked by Python's ssl, curl
and openssl s_client; API keys on every endpoint (the openai package, websockets, curl); every limit with its
reason and its count in /metrics; the keys CLI; logs without secrets."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import openai
import pytest
import trustme
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from gruasr.cli.main import main
from gruasr.errors import ConfigError
from gruasr.server.audiosocket import KIND_AUDIO, KIND_UUID, message
from gruasr.server.config import ServerConfig
from gruasr.server.keys import KeyStore, hash_key
from gruasr.server.security import check_exposure
from gruasr.streaming import StreamingRecognizer
from tests.server.conftest import Running, Utterance, running, wav
from tests.server.vosk_client import closed, final_text, lockstep

RATE = 8000


# -- helpers ----------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A test CA, the server's certificate for 127.0.0.1/localhost, a client certificate of the same CA, and a
    second CA that signed nothing of ours."""
    folder = tmp_path_factory.mktemp("pki")
    ca, other = trustme.CA(), trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    client = ca.issue_cert("pbx.example")
    paths = {name: folder / f"{name}.pem" for name in ("ca", "other_ca", "server", "client")}
    ca.cert_pem.write_to_path(str(paths["ca"]))
    other.cert_pem.write_to_path(str(paths["other_ca"]))
    server.private_key_and_cert_chain_pem.write_to_path(str(paths["server"]))
    client.private_key_and_cert_chain_pem.write_to_path(str(paths["client"]))
    return paths


def _client_context(ca: Path, cert: Path | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca))
    if cert is not None:
        context.load_cert_chain(str(cert))
    return context


def _request(url: str, token: str | None = None, context: ssl.SSLContext | None = None,
             data: bytes | None = None, headers: dict[str, str] | None = None) -> tuple[int, str]:  # fmt: skip
    request = urllib.request.Request(url, data=data, headers=dict(headers or {}))
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def _refusals(server: Running, token: str | None = None) -> dict[str, float]:
    status, body = _request(f"{server.url}/metrics", token)
    assert status == 200, body
    found = re.findall(r'^gruasr_refusals_total\{reason="(\w+)"\} ([0-9.e+]+)$', body, re.M)
    return {reason: float(value) for reason, value in found}


def _audio_seconds(server: Running, token: str | None = None, context: ssl.SSLContext | None = None) -> float:
    base = server.url if context is None else f"https://127.0.0.1:{server.port}"
    _, body = _request(f"{base}/metrics", token, context)
    return sum(float(v) for v in re.findall(r"^gruasr_audio_seconds_total\{[^}]*\} ([0-9.e+]+)$", body, re.M))


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A keys file with an active key, a revoked key and a key limited to one session and 3 s of audio a day."""
    path = tmp_path_factory.mktemp("keys") / "keys.json"
    store = KeyStore(path)
    tokens = {
        "good": store.add("good"),
        "revoked": store.add("gone"),
        "limited": store.add("limited", max_sessions=1, audio_hours_per_day=3 / 3600),
    }
    store.revoke("gone")
    return path, tokens


@pytest.fixture(scope="module")
def secured(recognizer: StreamingRecognizer, keys: tuple[Path, dict[str, str]]) -> Iterator[Running]:
    with running(recognizer, keys_file=str(keys[0]), audiosocket_port=0) as server:
        yield server


# -- TLS ------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_server(recognizer: StreamingRecognizer, pki: dict[str, Path]) -> Iterator[Running]:
    with running(recognizer, tls_cert=str(pki["server"]), tls_key=str(pki["server"])) as server:
        yield server


def test_tls_handshake_with_the_test_ca_and_a_vosk_session_over_wss(
    tls_server: Running, pki: dict[str, Path], an4: list[Utterance]
) -> None:
    context = _client_context(pki["ca"])
    status, body = _request(f"https://127.0.0.1:{tls_server.port}/healthz", context=context)
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    with connect(f"wss://127.0.0.1:{tls_server.port}", ssl=context, compression=None) as ws:
        assert ws.socket.version() in ("TLSv1.2", "TLSv1.3")  # type: ignore[attr-defined]
    replies = lockstep(f"wss://127.0.0.1:{tls_server.port}", an4[0].pcm, ssl=context)
    assert final_text(replies)  # the words came back over TLS


def test_tls_refuses_a_wrong_ca_plain_tcp_and_tls_1_1(tls_server: Running, pki: dict[str, Path]) -> None:
    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        _request(f"https://127.0.0.1:{tls_server.port}/healthz", context=_client_context(pki["other_ca"]))
    with pytest.raises((urllib.error.URLError, ConnectionError, http_errors())):
        _request(f"http://127.0.0.1:{tls_server.port}/healthz")  # plain HTTP to a TLS port: no answer
    # real clients others wrote: curl trusts the CA and gets the probe; openssl cannot talk TLS 1.1 to it
    curl = subprocess.run(
        ["curl", "-sS", "--cacert", str(pki["ca"]), f"https://127.0.0.1:{tls_server.port}/healthz"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert curl.returncode == 0 and json.loads(curl.stdout) == {"status": "ok"}, curl.stderr
    curl_wrong = subprocess.run(
        ["curl", "-sS", "--cacert", str(pki["other_ca"]), f"https://127.0.0.1:{tls_server.port}/healthz"],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert curl_wrong.returncode == 60, curl_wrong.stderr  # 60: peer certificate cannot be authenticated
    for version, ok in (("-tls1_2", True), ("-tls1_1", False)):
        s_client = subprocess.run(
            ["openssl", "s_client", "-connect", f"127.0.0.1:{tls_server.port}", version, "-CAfile", str(pki["ca"]),
             "-verify_return_error", "-brief"],
            input="", capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert (s_client.returncode == 0) == ok, (version, s_client.stderr)


def http_errors() -> type[Exception]:
    import http.client

    return http.client.HTTPException


def test_mutual_tls_requires_a_client_certificate_of_the_ca(
    recognizer: StreamingRecognizer, pki: dict[str, Path]
) -> None:
    settings = {"tls_cert": str(pki["server"]), "tls_key": str(pki["server"]), "tls_client_ca": str(pki["ca"])}
    with running(recognizer, **settings) as server:
        url = f"https://127.0.0.1:{server.port}/healthz"
        assert _request(url, context=_client_context(pki["ca"], pki["client"]))[0] == 200
        with pytest.raises((urllib.error.URLError, ConnectionError, ssl.SSLError)):
            _request(url, context=_client_context(pki["ca"]))  # no client certificate
        curl = subprocess.run(
            ["curl", "-sS", "--cacert", str(pki["ca"]), "--cert", str(pki["client"]), url],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert curl.returncode == 0, curl.stderr


def test_audiosocket_over_tls_with_a_client_certificate(
    recognizer: StreamingRecognizer, pki: dict[str, Path], an4: list[Utterance]
) -> None:
    settings = {"tls_cert": str(pki["server"]), "tls_key": str(pki["server"]), "tls_client_ca": str(pki["ca"]),
                "audiosocket_port": 0, "audiosocket_host": "127.0.0.1"}  # fmt: skip
    with running(recognizer, **settings) as server:
        port = server.app.state.audiosocket_port
        context = _client_context(pki["ca"], pki["client"])
        with (
            socket.create_connection(("127.0.0.1", port), timeout=30) as raw,
            context.wrap_socket(raw, server_hostname="127.0.0.1") as tls,
        ):
            tls.sendall(message(KIND_UUID, bytes(range(16))))
            tls.sendall(message(KIND_AUDIO, an4[0].pcm[:3200]))
            tls.sendall(message(0x00))
            assert tls.recv(1) == b""  # the server hangs up after the call (read: TLS 1.3 tickets wait)
        deadline = time.monotonic() + 30
        while _audio_seconds(server, context=context) < 0.19 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _audio_seconds(server, context=context) == pytest.approx(0.2)
        with socket.create_connection(("127.0.0.1", port), timeout=30) as raw:  # no client certificate
            try:
                with _client_context(pki["ca"]).wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                    tls.sendall(message(KIND_UUID, bytes(16)))
                    tls.sendall(message(KIND_AUDIO, an4[0].pcm[:3200]))
                    assert tls.recv(1) == b""  # TLS 1.3 learns of the refusal at its first read
            except (ssl.SSLError, ConnectionError):
                pass
        time.sleep(0.5)
        assert _audio_seconds(server, context=context) == pytest.approx(0.2)  # nothing of it was heard


# -- who may listen where ------------------------------------------------------------------------------------------


def test_no_listening_beyond_loopback_without_keys_unless_told() -> None:
    with pytest.raises(ConfigError, match="--insecure-no-auth"):
        check_exposure(ServerConfig(host="0.0.0.0"))
    assert check_exposure(ServerConfig(host="0.0.0.0", keys_file="k.json"))  # allowed, with a warning about TLS
    assert check_exposure(ServerConfig(host="0.0.0.0", insecure_no_auth=True))
    assert check_exposure(ServerConfig(host="127.0.0.1")) == []
    with pytest.raises(ConfigError, match="AudioSocket"):
        check_exposure(ServerConfig(keys_file="k.json", audiosocket_port=0, audiosocket_host="0.0.0.0"))
    # and the command line says so before loading anything
    run = subprocess.run(
        [str(Path(__import__("sys").executable).with_name("gruasr")), "serve", "--host", "0.0.0.0", "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert run.returncode != 0 and "without API keys" in run.stderr


# -- authentication -------------------------------------------------------------------------------------------------


def test_every_endpoint_refuses_a_missing_wrong_or_revoked_key_before_reading_audio(
    secured: Running, keys: tuple[Path, dict[str, str]], an4: list[Utterance], tmp_path: Path
) -> None:
    tokens = keys[1]
    good = tokens["good"]
    before = _refusals(secured, good)["unauthorized"]
    bad_tokens = [None, "gk_not-a-key", tokens["revoked"], good + "x"]
    path = wav(tmp_path / "a.wav", an4[0].samples)
    for token in bad_tokens:
        # HTTP: REST (the openai package; curl without a key), models, metrics, call events: 401, OpenAI's error
        if token is None:
            curl = subprocess.run(
                ["curl", "-sS", "-w", "%{http_code}", "-F", f"file=@{path}", f"{secured.url}/v1/audio/transcriptions"],
                capture_output=True, text=True, timeout=30,
            )  # fmt: skip
            assert curl.stdout.endswith("401") and "unauthorized" in curl.stdout
        else:
            client = openai.OpenAI(base_url=f"{secured.url}/v1", api_key=token, max_retries=0)
            with pytest.raises(openai.AuthenticationError) as refused, path.open("rb") as f:
                client.audio.transcriptions.create(model="gruasr", file=f)
            assert refused.value.status_code == 401 and "unauthorized" in str(refused.value)
        for route in ("/v1/models", "/metrics", "/v1/calls/x/events"):
            status, body = _request(secured.url + route, token)
            assert status == 401 and json.loads(body)["error"]["code"] == "invalid_api_key", route
        # WebSockets: Vosk and media streams are closed at once with 1008 and the reason
        for route in ("/", "/media"):
            query = f"?token={token}" if token else ""
            with connect(f"{secured.ws}{route}{query}", compression=None, open_timeout=30) as ws:
                with contextlib.suppress(ConnectionClosed):  # the server may have closed already
                    ws.send(an4[0].pcm[:8000])
                assert closed(ws) == 1008
                assert "unauthorized" in (ws.close_reason or "")
    assert _refusals(secured, good)["unauthorized"] - before == 4 * 6
    assert _audio_seconds(secured, good) == 0.0  # not one sample of a refused client was read
    # the probes stay open; a good key works as a header and as ?token=
    assert _request(secured.url + "/healthz")[0] == 200
    assert _request(secured.url + "/v1/models", good)[0] == 200
    client = openai.OpenAI(base_url=f"{secured.url}/v1", api_key=good, max_retries=0)
    with path.open("rb") as f:
        assert client.audio.transcriptions.create(model="gruasr", file=f).text
    assert final_text(lockstep(f"{secured.ws}/?token={good}", an4[0].pcm))
    curl = subprocess.run(["curl", "-sS", "-H", f"Authorization: Bearer {good}", secured.url + "/v1/models"],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    assert json.loads(curl.stdout)["data"][0]["id"] == "gruasr"


def test_a_revoked_key_is_refused_without_a_restart(
    recognizer: StreamingRecognizer, tmp_path: Path, an4: list[Utterance]
) -> None:
    path = tmp_path / "keys.json"
    assert main(["keys", "add", "pbx", "--keys-file", str(path)]) == 0
    with running(recognizer, keys_file=str(path)) as server:
        new = KeyStore(path).add("ops")
        assert _request(server.url + "/v1/models", new)[0] == 200  # added while running: accepted
        assert main(["keys", "revoke", "ops", "--keys-file", str(path)]) == 0
        assert _request(server.url + "/v1/models", new)[0] == 401  # revoked while running: refused


def test_keys_cli_prints_the_key_once_as_the_last_word_and_stores_its_hash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "keys.json"
    assert main(["keys", "add", "alice", "--keys-file", str(path), "--max-sessions", "3",
                 "--audio-hours-per-day", "2.5"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    key = out.strip().splitlines()[-1].split()[-1]
    assert key.startswith("gk_") and len(key) == 46
    stored = path.read_text()
    assert key not in stored and hash_key(key) in stored
    assert path.stat().st_mode & 0o777 == 0o600
    assert KeyStore(path).authenticate(key).name == "alice"  # type: ignore[union-attr]
    assert main(["keys", "list", "--keys-file", str(path)]) == 0
    listing = capsys.readouterr().out
    assert "alice" in listing and "active" in listing and key not in listing and "2.5" in listing
    assert main(["keys", "add", "alice", "--keys-file", str(path)]) != 0
    assert "exists" in capsys.readouterr().err
    assert main(["keys", "revoke", "alice", "--keys-file", str(path)]) == 0
    assert KeyStore(path).authenticate(key) is None
    assert main(["keys", "revoke", "alice", "--keys-file", str(path)]) != 0
    assert "no active key" in capsys.readouterr().err
    assert main(["keys", "add", "../etc", "--keys-file", str(path)]) != 0
    assert "key name" in capsys.readouterr().err


def test_logs_hold_no_keys_and_no_transcripts(
    secured: Running, keys: tuple[Path, dict[str, str]], an4: list[Utterance], caplog: pytest.LogCaptureFixture
) -> None:
    secret = "gk_" + "s3cret" * 7
    with caplog.at_level(logging.DEBUG):
        _request(f"{secured.url}/v1/models?token={secret}")
        _request(f"{secured.url}/v1/models", secret)
        replies = lockstep(f"{secured.ws}/?token={keys[1]['good']}", an4[1].pcm)
    server_side = [r for r in caplog.records if r.name.startswith(("gruasr", "uvicorn"))]  # not the clients' own
    text = "\n".join(f"{r.getMessage()} {r.__dict__}" for r in server_side)
    assert "unauthorized" in text  # the refusals were logged ...
    assert secret not in text and keys[1]["good"] not in text  # ... without the keys
    said = final_text(replies)
    assert len(said.split()) >= 2 and said not in text


# -- limits -----------------------------------------------------------------------------------------------------


def _vosk_until_closed(url: str, messages: list[Any], **kwargs: Any) -> tuple[list[dict[str, Any]], int | None, str]:
    replies: list[dict[str, Any]] = []
    with connect(url, compression=None, open_timeout=30, **kwargs) as ws:
        try:
            for m in messages:
                ws.send(m)
            while True:
                replies.append(json.loads(ws.recv(timeout=30)))
        except Exception:  # closed
            pass
        return replies, ws.close_code, ws.close_reason or ""


def test_per_key_sessions_and_daily_audio_quota(
    secured: Running, keys: tuple[Path, dict[str, str]], an4: list[Utterance]
) -> None:
    limited, good = keys[1]["limited"], keys[1]["good"]
    before = _refusals(secured, good)
    with connect(f"{secured.ws}/?token={limited}", compression=None) as first:
        first.send(an4[0].pcm[:3200])  # 0.2 s
        first.recv(timeout=30)
        _, code, reason = _vosk_until_closed(f"{secured.ws}/?token={limited}", [])
        assert code == 1013 and "limit of 1 sessions" in reason, reason
        # the quota: 3 s a day; this session has used 0.2 s, 3.2 s more passes it
        first.send(an4[0].pcm[: 4 * RATE])  # 2 s
        first.recv(timeout=30)
        first.send(np.zeros(int(1.2 * RATE), "<i2").tobytes())
        code = closed(first)
    assert code == 1008
    # 2.2 s used: a new session is let in, and closed as soon as its audio passes the 3 s
    _, code, reason = _vosk_until_closed(f"{secured.ws}/?token={limited}", [np.zeros(RATE, "<i2").tobytes()])
    assert (code, reason) == (1008, "quota")
    after = _refusals(secured, good)
    assert after["per_key"] - before["per_key"] == 1 and after["quota"] - before["quota"] == 2


def test_idle_and_duration_limits_end_a_session_with_its_final(
    recognizer: StreamingRecognizer, an4: list[Utterance]
) -> None:
    with running(recognizer, idle_seconds=1.0, max_session_seconds=3.0) as server:
        pcm = an4[0].pcm
        replies, code, reason = _vosk_until_closed(server.ws, [pcm[: len(pcm) // 2]])  # then silence
        assert code == 1008 and "nothing received" in reason
        assert "text" in replies[-1]  # the final of what was said came before the close
        began = time.monotonic()
        with connect(server.ws, compression=None) as ws:  # keeps talking, past the session's 3 s
            try:
                while time.monotonic() - began < 10:
                    ws.send(np.zeros(1600, "<i2").tobytes())
                    ws.recv(timeout=5)
                    time.sleep(0.1)
            except Exception:
                pass
            assert ws.close_code == 1008 and "at most" in (ws.close_reason or "")
        assert 2.5 < time.monotonic() - began < 6
        counts = _refusals(server)
        assert counts["idle"] == 1 and counts["duration"] == 1


def test_per_address_message_size_and_connection_limits(recognizer: StreamingRecognizer) -> None:
    with running(recognizer, max_sessions_per_address=1, max_message_bytes=4096) as server:
        with connect(server.ws, compression=None) as first:
            first.send(np.zeros(800, "<i2").tobytes())
            first.recv(timeout=30)
            _, code, reason = _vosk_until_closed(server.ws, [])
            assert code == 1013 and "this address" in reason
        _, code, _ = _vosk_until_closed(server.ws, [bytes(8192)])  # one message over 4096 bytes
        assert code == 1009
        time.sleep(0.3)
        counts = _refusals(server)
        assert counts["per_address"] == 1 and counts["too_large"] == 1


def test_a_client_that_trickles_its_headers_is_cut_off(recognizer: StreamingRecognizer) -> None:
    with running(recognizer, handshake_seconds=0.5) as server:
        began = time.monotonic()
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            for _ in range(20):  # one header byte at a time, never the blank line
                try:
                    s.sendall(b"X")
                except OSError:
                    break
                time.sleep(0.1)
            s.settimeout(5)
            with contextlib.suppress(ConnectionError):
                assert s.recv(100) == b""  # closed without an answer
        assert time.monotonic() - began < 3
        assert _refusals(server)["handshake_timeout"] == 1
        assert _request(server.url + "/healthz")[0] == 200  # a prompt client is served


def test_rest_limits_duration_rate_size_and_slow_upload(
    recognizer: StreamingRecognizer, an4: list[Utterance], tmp_path: Path
) -> None:
    with running(recognizer, max_upload_seconds=2.0, max_upload_bytes=200_000, upload_seconds=1.0) as server:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0)
        long = wav(tmp_path / "long.wav", np.concatenate([an4[0].samples, an4[1].samples]))
        with pytest.raises(openai.APIStatusError) as refused, long.open("rb") as f:
            client.audio.transcriptions.create(model="gruasr", file=f)
        assert refused.value.status_code == 413 and "over the 2 s limit" in str(refused.value)
        import soundfile as sf

        low = tmp_path / "low.wav"
        sf.write(low, np.zeros(4000, np.float32), 4000, subtype="PCM_16")
        with pytest.raises(openai.BadRequestError, match="outside 8000-48000 Hz"), low.open("rb") as f:
            client.audio.transcriptions.create(model="gruasr", file=f)
        big = tmp_path / "big.wav"
        big.write_bytes(bytes(300_000))
        with pytest.raises(openai.APIStatusError) as refused, big.open("rb") as f:
            client.audio.transcriptions.create(model="gruasr", file=f)
        assert refused.value.status_code == 413
        # a body that trickles: 408 after upload_seconds
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
            s.sendall(b"POST /v1/audio/transcriptions HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n"
                      b"Content-Type: multipart/form-data; boundary=xyz\r\n\r\n--xyz\r\n")  # fmt: skip
            s.settimeout(10)
            answer = s.recv(1000)
        assert answer.startswith(b"HTTP/1.1 408")
        counts = _refusals(server)
        assert counts["too_large"] == 2 and counts["bad_audio"] == 1 and counts["slow"] == 1


def test_keys_are_compared_in_constant_time_code_path(tmp_path: Path) -> None:
    """Every stored hash is compared whatever matches first: a lookup reads all records (no early exit)."""
    store = KeyStore(tmp_path / "k.json")
    tokens = [store.add(f"k{n}") for n in range(5)]
    seen: list[str] = []
    import hmac

    original = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        seen.append(a)
        return original(a, b)

    hmac.compare_digest = spy  # type: ignore[assignment]
    try:
        assert store.authenticate(tokens[0]).name == "k0"  # type: ignore[union-attr]
    finally:
        hmac.compare_digest = original
    assert len(seen) == 5


def test_serve_loads_only_models_signed_by_a_trusted_key(tmp_path: Path) -> None:
    """`--trusted-key`: the bundled (unsigned) model is refused before the server starts; a copy signed by the key
    serves."""
    import shutil

    from gruasr.bundle import bundled
    from gruasr.errors import CheckpointError
    from gruasr.integrity import generate_keys, sign_folder
    from gruasr.server.runner import build

    private, public, _ = generate_keys(tmp_path / "release")
    settings = {"port": 0, "trusted_keys": (str(public),), "rest_model": "streaming"}
    with pytest.raises(CheckpointError, match="sign"):
        build(ServerConfig(**settings))  # type: ignore[arg-type]
    signed = tmp_path / "model"
    shutil.copytree(bundled("telephone-streaming"), signed)
    sign_folder(signed, private)
    app, _ = build(ServerConfig(model=str(signed), **settings))  # type: ignore[arg-type]
    assert app.state.engine.recognizer is not None
