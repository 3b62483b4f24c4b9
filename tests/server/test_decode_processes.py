"""Finals decoded in spawned processes (server.decode_in = "processes"): over a real Vosk client on loopback, the
same replies as the threads' pool (best text and word times, n-best alternatives, a phrase-list grammar) from
processes that are not the server's; a decoding process killed mid-service costs at most the finals it held, and
the next session gets its final from a new pool; a server killed outright leaves no decoding process behind."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from websockets.sync.client import connect

from gruasr.cli.main import build_parser
from gruasr.errors import ConfigError
from gruasr.server.config import ServerConfig
from gruasr.server.decoding import DecoderProcesses
from gruasr.streaming import StreamingRecognizer
from tests.server.conftest import Running, Utterance, running

PHRASES = ["yes", "no", "operator", "rubout", "enter", "one", "two", "three", "four", "five", "six", "seven", "[unk]"]


def _replies(server: Running, config: dict[str, Any], pcm: bytes) -> list[dict[str, Any]]:
    """A lock-step session: config, 0.5 s chunks (one reply each), eof (the final)."""
    replies = []
    with connect(server.ws, compression=None, open_timeout=30) as ws:
        ws.send(json.dumps({"config": config}))
        for i in range(0, len(pcm), 8000):
            ws.send(pcm[i : i + 8000])
            replies.append(json.loads(ws.recv(timeout=60)))
        ws.send('{"eof" : 1}')
        replies.append(json.loads(ws.recv(timeout=60)))
    return replies


def _sessions(server: Running, an4: list[Utterance]) -> list[list[dict[str, Any]]]:
    return [
        _replies(server, {"words": 1}, an4[0].pcm),
        _replies(server, {"max_alternatives": 3}, an4[1].pcm),
        _replies(server, {"phrase_list": PHRASES}, an4[2].pcm),
    ]


def test_processes_give_what_threads_give(recognizer: StreamingRecognizer, an4: list[Utterance]) -> None:
    with running(recognizer, decode_workers=2) as server:
        threads = _sessions(server, an4)
    with running(recognizer, decode_workers=2, decode_in="processes") as server:
        pool = server.app.state.engine._decoders
        assert isinstance(pool, DecoderProcesses)
        pids = pool.pids()
        assert len(pids) == 2 and os.getpid() not in pids
        processes = _sessions(server, an4)
    assert processes == threads
    words, alternatives, grammar = (replies[-1] for replies in processes)
    assert words["text"] and [w["word"] for w in words["result"]] == words["text"].split()
    assert 1 <= len(alternatives["alternatives"]) <= 3
    assert set(grammar["text"].split()) <= {w for p in PHRASES for w in p.split()}


def test_a_killed_decoding_process_is_replaced(recognizer: StreamingRecognizer, an4: list[Utterance]) -> None:
    with running(recognizer, decode_workers=1, decode_in="processes") as server:
        pool = server.app.state.engine._decoders
        before = _replies(server, {}, an4[0].pcm)[-1]
        (pid,) = pool.pids()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not pool._pool._broken and time.monotonic() < deadline:  # the executor notices the death
            time.sleep(0.05)
        after = _replies(server, {}, an4[0].pcm)[-1]
        assert after == before and after["text"]
        (new,) = pool.pids()
        assert new != pid


def test_decode_in_is_checked_and_on_the_command_line() -> None:
    with pytest.raises(ConfigError, match="decode_in must be 'threads' or 'processes'"):
        ServerConfig(decode_in="fork")
    args = build_parser().parse_args(["serve", "--decode-in", "processes", "--decode-workers", "3"])
    assert (args.decode_in, args.decode_workers) == ("processes", 3)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_decoding_processes_exit_when_the_server_is_killed(tmp_path: Path) -> None:
    """`gruasr serve --decode-in processes` killed with SIGKILL (it cannot stop its pool): its decoding processes
    notice and exit within seconds instead of waiting forever for work."""
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "gruasr", "serve", "--port", str(port), "--decode-in", "processes",
           "--decode-workers", "2"]  # fmt: skip
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2):
                    break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "gruasr serve did not start"
                time.sleep(0.2)
        workers = _children(server.pid)
        assert len(workers) >= 2  # the two decoders (and multiprocessing's resource tracker)
    finally:
        server.kill()
        server.wait(30)
    deadline = time.monotonic() + 15
    while any(_alive(w) for w in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not any(_alive(w) for w in workers)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
