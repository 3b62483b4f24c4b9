"""`gruasr serve` as a process: SIGTERM drains it (the open session gets its final result and a 1001 close, the
process exits 0, its JSON logs hold no transcript); while draining, /readyz says so and new sessions are refused
with the reason; its config file and command line; and the thread layout of `gruasr stream`/`call`."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from websockets.sync.client import connect

from gruasr.errors import ConfigError
from gruasr.server.config import ServerConfig, load_config
from gruasr.streaming import StreamingRecognizer
from tests.server.conftest import Running, Utterance, running
from tests.server.vosk_client import closed

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return int(r.status)
    except urllib.error.HTTPError as err:
        return err.code


def test_sigterm_gives_open_sessions_their_finals_and_exits_0(an4: list[Utterance]) -> None:
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "gruasr", "serve", "--port", str(port), "--decode-workers", "1"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _status(f"http://127.0.0.1:{port}/readyz") == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gruasr serve did not start: {proc.communicate()[1][-2000:]}")
            time.sleep(0.1)
        with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
            pcm = an4[0].pcm
            for i in range(0, len(pcm), 8000):  # the utterance, no eof: the call is still going on
                ws.send(pcm[i : i + 8000])
                assert "partial" in json.loads(ws.recv(timeout=30))
            proc.send_signal(signal.SIGTERM)
            final = json.loads(ws.recv(timeout=30))
            assert set(final) == {"text"} and final["text"]
            assert closed(ws) == 1001
        assert proc.wait(timeout=30) == 0
        logs = [json.loads(line) for line in proc.stderr.read().splitlines() if line.startswith("{")]  # type: ignore[union-attr]
        assert {"draining", "drained"} <= {entry["message"] for entry in logs}
        assert not any(final["text"] in json.dumps(entry) for entry in logs)  # no transcripts in the logs
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_draining_refuses_new_sessions(recognizer: StreamingRecognizer) -> None:
    with running(recognizer) as server:
        assert _status(f"{server.url}/readyz") == 200
        _drain(server)
        assert _status(f"{server.url}/readyz") == 503
        with connect(server.ws, compression=None) as ws:
            assert closed(ws) == 1013
            assert ws.close_reason == "the server is shutting down"


def _drain(server: Running) -> None:
    loop = server.server._loop
    assert loop is not None
    loop.call_soon_threadsafe(server.app.state.engine.drain)
    deadline = time.monotonic() + 10
    while not server.app.state.engine.draining and time.monotonic() < deadline:
        time.sleep(0.01)


def test_server_config_file_and_errors(tmp_path: Path) -> None:
    path = tmp_path / "serve.toml"
    path.write_text('[server]\nport = 2800\ntorch_threads = 1\ndecode_workers = 2\noutput = "calls"\n')
    config = load_config(path)
    assert (config.port, config.decoders, config.output) == (2800, 2, "calls")
    assert config.with_overrides(port=2900, host=None).port == 2900
    path.write_text("[server]\nprot = 2800\n")
    with pytest.raises(ConfigError, match="unknown server keys"):
        load_config(path)
    with pytest.raises(ConfigError, match="torch_threads"):
        ServerConfig(torch_threads=0)
    with pytest.raises(ConfigError, match="webhook"):
        ServerConfig(webhook="ftp://x")
    with pytest.raises(ConfigError, match="trim_seconds"):
        ServerConfig(trim_seconds=-1)


def test_the_allocator_is_trimmed_on_glibc() -> None:
    """The server's periodic trim is glibc's malloc_trim (this machine's Python runs on glibc)."""
    import platform

    from gruasr.server.engine import malloc_trimmer

    trim = malloc_trimmer()
    assert (trim is not None) == (platform.libc_ver()[0] == "glibc")
    if trim is not None:
        assert trim(0) in (0, 1)  # 1: memory was released


def test_stream_and_call_run_one_torch_thread_unless_told(an4: list[Utterance], tmp_path: Path) -> None:
    """The thread trap applies to `gruasr stream`/`call` too: they set one intra-op thread (or --threads N)."""
    import torch

    from gruasr.cli.main import main
    from tests.server.conftest import wav

    path = wav(tmp_path / "a.wav", an4[0].samples)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert main(["call", str(path), "--json"]) == 0
        assert torch.get_num_threads() == 1
        assert main(["stream", str(path), "--threads", "2"]) == 0
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_serve_command_line(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """`gruasr serve --help` lists the flags; a bad config file is one clear error line and exit 1."""
    from gruasr.cli.main import main

    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--port", "--audiosocket-port", "--model", "--config", "--torch-threads", "--decode-workers",
                 "--output", "--webhook", "--drain-seconds"):  # fmt: skip
        assert flag in out
    bad = tmp_path / "serve.toml"
    bad.write_text("[server]\nport = -1\n")
    assert main(["serve", "--config", str(bad)]) == 1
    assert capsys.readouterr().err.strip() == (
        "gruasr serve: error: server.port must be a port number 0..65535 (0: any free one), got -1"
    )
