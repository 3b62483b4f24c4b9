"""Abuse beside real calls: does hostile traffic disturb the good streams of `gruasr serve`?

    python benchmarks/server_abuse.py [--data DIR] [--clients 20] [--seconds 60] [--malformed 10000]
                                      [--unauthenticated 1000] [--slow 100] [--quick]
                                      [--out docs/results/server_abuse-cpu.json]

One `gruasr serve` subprocess with API keys, AudioSocket, and a [server] config of limits (handshake 5 s, idle
10 s), on loopback. Two runs of the same good clients (each streams real AN4 test speech through the mu-law line in
real time, 100 ms chunks, over the Vosk protocol with its key, as benchmarks/server_load.py does):
  1. clean: the good clients alone;
  2. abuse: the same good clients while another process (the attacker, started by this script) sends, spread over
     the run and bounded in time, `--malformed` malformed messages (each in its own authenticated session or
     request: bad JSON, NaN rates, config after audio, JSON nested 100,000 deep, a message over the size limit,
     media-stream garbage, random AudioSocket headers, truncated multipart, a FLAC that claims 2,386 hours),
     `--unauthenticated` attempts without or with a wrong or revoked key on every protocol, and `--slow` slow
     clients (half send their HTTP head one byte a second, half open an authenticated session and say nothing).
Measured: server crashes (alive at the end, /healthz), the good streams' errors, whether their transcripts equal the
clean run's, their chunk-to-reply p95 against the clean run's (target <= 1.5x), the attacker's outcomes (every
hostile session must end with a clear refusal: WebSocket 1003/1008/1009/1013, HTTP 4xx, a closed socket; none may
hang past the bound or get 1011/500), and the server's refusal counters. Never a timed test: tests/test_benchmarks.py
runs --quick for the path only.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gruasr.environment import environment  # noqa: E402
from gruasr.server.keys import KeyStore  # noqa: E402
from server_load import ClientResult, Server, _clients, _pct, client_audio, free_port, load_an4  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RATE = 8000
BOUND = 30.0  # seconds any one hostile session may take before it counts as a hang
LIMITS = """[server]
handshake_seconds = 5.0
idle_seconds = 10.0
max_message_bytes = 262144
max_upload_bytes = 2000000
max_upload_seconds = 600.0
upload_seconds = 10.0
"""


# -- the attacker (its own process) --------------------------------------------------------------------------------


def _claims_hours() -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(800, np.float32), RATE, format="FLAC")
    data = bytearray(buffer.getvalue())
    data[21] |= 0x0F  # STREAMINFO's total samples: 2^36 - 1
    data[22:26] = b"\xff\xff\xff\xff"
    return bytes(data)


def _multipart(body: bytes, boundary: str = "abuse") -> bytes:
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\n'.encode()
    return head + body + f"\r\n--{boundary}--\r\n".encode()


class Attacker:
    """Sends the hostile traffic against one server; every outcome counted by kind."""

    def __init__(self, port: int, audiosocket: int, key: str, revoked: str, seed: int = 0) -> None:
        self.port, self.audiosocket, self.key, self.revoked = port, audiosocket, key, revoked
        self.rng = np.random.default_rng(seed)
        self.outcomes: Counter[str] = Counter()
        self.flac = _claims_hours()

    def _count(self, what: str, outcome: str) -> None:
        self.outcomes[f"{what}: {outcome}"] += 1

    async def websocket(self, what: str, path: str, messages: list[str | bytes], token: str | None) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed, InvalidStatus

        url = f"ws://127.0.0.1:{self.port}{path}" + (f"?token={token}" if token else "")
        try:
            async with asyncio.timeout(BOUND):
                async with connect(url, compression=None, open_timeout=BOUND, max_size=None) as ws:
                    try:
                        for m in messages:
                            await ws.send(m)
                        async for _ in ws:
                            pass
                    except ConnectionClosed:
                        pass
                    code = ws.close_code
            self._count(what, f"close {code}")
        except TimeoutError:
            self._count(what, "HANG")
        except InvalidStatus as err:
            self._count(what, f"http {err.response.status_code}")
        except OSError as err:
            self._count(what, type(err).__name__)

    async def rest(self, what: str, body: bytes, token: str | None, content_type: str) -> None:
        headers = {"Content-Type": content_type, **({"Authorization": f"Bearer {token}"} if token else {})}
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/audio/transcriptions", data=body, headers=headers, method="POST"
        )

        def post() -> int:
            try:
                with urllib.request.urlopen(request, timeout=BOUND) as response:  # noqa: S310
                    return int(response.status)
            except urllib.error.HTTPError as err:
                return int(err.code)

        try:
            status = await asyncio.to_thread(post)
            self._count(what, f"http {status}")
        except OSError as err:
            self._count(what, "HANG" if isinstance(err, TimeoutError) else type(err).__name__)

    async def tcp(self, what: str, port: int, chunks: list[bytes], pace: float = 0.0) -> None:
        try:
            async with asyncio.timeout(BOUND):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    for chunk in chunks:
                        writer.write(chunk)
                        await writer.drain()
                        if pace:
                            await asyncio.sleep(pace)
                    if writer.can_write_eof():
                        writer.write_eof()
                    while await reader.read(4096):
                        pass
                finally:
                    writer.close()
            self._count(what, "closed")
        except TimeoutError:
            self._count(what, "HANG")
        except OSError:
            self._count(what, "closed")  # reset by the server: a refusal

    def malformed(self, n: int) -> Any:
        """The n-th malformed message, in its own session or request (a coroutine)."""
        key = self.key
        kind = n % 12
        noise = self.rng.bytes(int(self.rng.integers(1, 600)))
        if kind == 0:
            return self.websocket("vosk bad json", "/", ["{not json"], key)
        if kind == 1:
            return self.websocket("vosk NaN rate", "/", ['{"config": {"sample_rate": NaN}}'], key)
        if kind == 2:
            return self.websocket("vosk config after audio", "/", [bytes(320), '{"config": {}}'], key)
        if kind == 3:
            return self.websocket("vosk nested json", "/", ["[" * 100_000 + "]" * 100_000], key)
        if kind == 4:
            return self.websocket("vosk unknown message", "/", ['{"hello": 1}'], key)
        if kind == 5:
            big = bytes(300_000) if n % 120 == 5 else '{"config": {"sample_rate": -8000}}'  # rarely: too big
            return self.websocket("vosk oversize or negative rate", "/", [big], key)
        if kind == 6:
            media = json.dumps({"event": "media", "media": {"payload": base64.b64encode(noise).decode()}})
            return self.websocket("media before start", "/media", [media], key)
        if kind == 7:
            garbage = json.dumps({"event": "media", "media": {"payload": "%%%not base64"}})
            start = json.dumps({"event": "start", "start": {"callSid": f"CA{n}", "mediaFormat": {
                "encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}})  # fmt: skip
            return self.websocket("media base64 garbage", "/media", [start, garbage], key)
        if kind == 8:
            header = bytes([int(self.rng.integers(0, 256))]) + int(self.rng.integers(0, 65536)).to_bytes(2, "big")
            return self.tcp("audiosocket random header", self.audiosocket, [header + noise])
        if kind == 9:
            return self.rest("rest truncated multipart", _multipart(noise)[:60], key, "multipart/form-data; "
                             "boundary=abuse")  # fmt: skip
        if kind == 10:
            return self.rest("rest random bytes", _multipart(noise), key, "multipart/form-data; boundary=abuse")
        return self.rest("rest flac claims hours", _multipart(self.flac), key, "multipart/form-data; boundary=abuse")

    def unauthenticated(self, n: int) -> Any:
        token = [None, "gk_wrong-key-000000000000000000000000000000000", self.revoked][n % 3]
        kind = n % 4
        if kind == 0:
            return self.websocket("unauth vosk", "/", [bytes(1600)], token)
        if kind == 1:
            return self.websocket("unauth media", "/media", ['{"event": "connected"}'], token)
        if kind == 2:
            return self.rest("unauth rest", _multipart(bytes(100)), token, "multipart/form-data; boundary=abuse")
        return self.rest("unauth rest", b"{}", token, "application/json")

    def slow(self, n: int) -> Any:
        if n % 2 == 0:  # slowloris: the request head one byte a second, never finished
            head = [bytes([b]) for b in b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 40]
            return self.tcp("slow head", self.port, head, pace=1.0)
        return self.websocket("silent session", "/", [], self.key)  # says nothing: closed when idle

    async def run(self, malformed: int, unauthenticated: int, slow: int, seconds: float) -> dict[str, Any]:
        """All of it spread over `seconds` (the slow clients at once, the rest at an even rate, at most 32 at a
        time); returns the outcome counts."""
        began = time.monotonic()
        gate = asyncio.Semaphore(32)
        jobs = [self.malformed(n) for n in range(malformed)] + [self.unauthenticated(n) for n in range(unauthenticated)]
        order = self.rng.permutation(len(jobs))

        async def paced(k: int, job: Any) -> None:
            await asyncio.sleep(max(0.0, began + k * seconds / max(1, len(jobs)) - time.monotonic()))
            async with gate:
                await job

        slow_tasks = [asyncio.create_task(self.slow(n)) for n in range(slow)]
        await asyncio.gather(*(paced(k, jobs[i]) for k, i in enumerate(order)), *slow_tasks)
        return {"outcomes": dict(sorted(self.outcomes.items())), "seconds": time.monotonic() - began}


def attacker_main(args: argparse.Namespace) -> None:
    attacker = Attacker(args.port, args.audiosocket_port, args.key, args.revoked)
    report = asyncio.run(attacker.run(args.malformed, args.unauthenticated, args.slow, args.seconds))
    print(json.dumps(report))


# -- the runs -----------------------------------------------------------------------------------------------------


def refusals(port: int, key: str) -> dict[str, float]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={"Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        body = response.read().decode()
    out = {}
    for line in body.splitlines():
        if line.startswith("gruasr_refusals_total{"):
            reason = line.split('"')[1]
            out[reason] = float(line.rsplit(" ", 1)[1])
    return out


def one_run(pcms: list[np.ndarray], key: str, revoked: str, keys_file: Path, config: Path,
            attack: dict[str, int] | None, seconds: float) -> dict[str, Any]:  # fmt: skip
    """One server, the good clients, and (with `attack`) the attacker process beside them."""
    audiosocket = free_port()
    extra = ["--keys-file", str(keys_file), "--config", str(config), "--audiosocket-port", str(audiosocket)]
    server = Server(1, 0, extra)
    attacker = None
    try:
        if attack is not None:
            attacker = subprocess.Popen(
                [sys.executable, __file__, "--attacker", "--port", str(server.port), "--audiosocket-port",
                 str(audiosocket), "--key", key, "--revoked", revoked, "--seconds", str(seconds),
                 *(f"--{k}={v}" for k, v in attack.items())],
                stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
            )  # fmt: skip
        results = [ClientResult() for _ in pcms]
        asyncio.run(_clients(f"ws://127.0.0.1:{server.port}/?token={key}", pcms, results))
        attacked: dict[str, Any] = {}
        if attacker is not None:
            out, _ = attacker.communicate(timeout=seconds + 4 * BOUND)
            attacked = json.loads(out.strip().splitlines()[-1])
        alive = server.proc.poll() is None
        with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/healthz", timeout=10) as response:  # noqa: S310
            healthy = response.status == 200
        counts = refusals(server.port, key)
        rss = server.rss_mb()
    finally:
        if attacker is not None and attacker.poll() is None:
            attacker.kill()
        server.stop()
    chunk = [x for r in results for x in r.chunk_lat]
    return {
        "alive": alive and healthy, "reply_ms_p50": _pct(chunk, 50), "reply_ms_p95": _pct(chunk, 95),
        "errors": sum(len(r.errors) for r in results), "error_samples": [e for r in results for e in r.errors][:5],
        "texts": [" ".join(r.text) for r in results], "refusals": counts, "rss_mb": rss, "attack": attacked,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("GRUASR_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0, help="audio per good client; the attack's span")
    parser.add_argument("--malformed", type=int, default=10_000)
    parser.add_argument("--unauthenticated", type=int, default=1_000)
    parser.add_argument("--slow", type=int, default=100)
    parser.add_argument("--quick", action="store_true", help="3 clients, 6 s, a small attack: the path, not numbers")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "server_abuse-cpu.json")
    # the attacker process
    parser.add_argument("--attacker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--audiosocket-port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--key", help=argparse.SUPPRESS)
    parser.add_argument("--revoked", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.attacker:
        attacker_main(args)
        return
    if args.quick:
        args.clients, args.seconds, args.malformed, args.unauthenticated, args.slow = 3, 6.0, 120, 30, 4
    audio, texts = load_an4(args.data, 8 if args.quick else None)
    pcms = [client_audio(k, args.seconds, audio, texts)[0] for k in range(args.clients)]
    attack = {"malformed": args.malformed, "unauthenticated": args.unauthenticated, "slow": args.slow}
    with tempfile.TemporaryDirectory() as folder:
        keys_file, config = Path(folder) / "keys.json", Path(folder) / "serve.toml"
        store = KeyStore(keys_file)
        key, revoked = store.add("calls"), store.add("old")
        store.revoke("old")
        config.write_text(LIMITS)
        clean = one_run(pcms, key, revoked, keys_file, config, None, args.seconds)
        abused = one_run(pcms, key, revoked, keys_file, config, attack, args.seconds)
    outcomes: dict[str, int] = abused["attack"].get("outcomes", {})
    unclear = {k: v for k, v in outcomes.items() if k.endswith(("HANG", "close 1011", "http 500", "close None"))}
    same = sum(a == b for a, b in zip(clean["texts"], abused["texts"], strict=True))
    ratio = abused["reply_ms_p95"] / clean["reply_ms_p95"]
    report = {
        "clients": args.clients, "seconds": args.seconds, "attack": attack, "limits": LIMITS,
        "clean": clean, "abuse": abused, "same_text": same, "p95_ratio": ratio, "unclear_outcomes": unclear,
        "targets_met": bool(abused["alive"] and abused["errors"] == 0 and same == args.clients and ratio <= 1.5
                            and not unclear),
        "environment": environment(), "command": " ".join(sys.argv),
    }  # fmt: skip

    table = Table(title=f"{args.clients} good real-time calls, {args.seconds:g} s, clean and under abuse")
    for col in ("run", "server alive", "good-stream errors", "same text as clean", "reply p50 ms", "reply p95 ms",
                "p95 / clean", "RSS MB"):  # fmt: skip
        table.add_column(col, justify="right")
    for name, r in (("clean", clean), ("abuse", abused)):
        table.add_row(name, "yes" if r["alive"] else "NO", str(r["errors"]),
                      f"{same if name == 'abuse' else args.clients}/{args.clients}", f"{r['reply_ms_p50']:.0f}",
                      f"{r['reply_ms_p95']:.0f}", f"{r['reply_ms_p95'] / clean['reply_ms_p95']:.2f}x",
                      f"{r['rss_mb']:.0f}")  # fmt: skip
    console = Console(width=160)
    console.print(table)
    hostile = Table(title=f"the attack: {sum(outcomes.values())} hostile sessions in "
                          f"{abused['attack'].get('seconds', 0):.0f} s")  # fmt: skip
    hostile.add_column("what: outcome")
    hostile.add_column("count", justify="right")
    for k, v in outcomes.items():
        hostile.add_row(k, str(v))
    console.print(hostile)
    counts = {k: int(v) for k, v in abused["refusals"].items() if v}
    print(f"server refusals under abuse: {counts}")
    print(f"targets (0 crashes, 0 errors, same transcripts, p95 <= 1.5x clean, every hostile session refused "
          f"clearly): {'met' if report['targets_met'] else 'NOT met'}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
