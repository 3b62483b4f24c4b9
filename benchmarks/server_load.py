"""Load on `gruasr serve`: N concurrent Vosk-protocol clients in this process, the server in another, on loopback,
each client streaming real AN4 test speech through the mu-law line in real time (100 ms chunks).

    python benchmarks/server_load.py [--data DIR] [--seconds 30] [--soak-minutes 10] [--quick]
                                     [--out docs/results/server_load-cpu.json]

Scenarios (clients, server torch threads, CPU hog beside the server): by default 25/50/100/150 clients with one
torch thread, then 20 clients with one and with two threads while a busy-loop process keeps one core busy, and
50 and 100 clients with one thread and the hog; a scenario ending in ":processes" runs the server with
`--decode-in processes` (finals decoded in spawned processes). The clients run in this process, on the same 2
cores: they are part of the load. Each client says AN4 test utterances one after another (rotated per client, 1 s
of silence after each) for --seconds, then eof. Measured per scenario:
- chunk-to-reply latency p50/p95 (send of a chunk to its reply; one reply per message, in order);
- final latency p50/p95: reply time of a final minus the moment its last word's audio was sent (includes the
  endpointer's 0.6 s trailing silence, by design);
- errors: exceptions, error replies, missing replies; server CPU (cores busy) and RSS (with its child processes:
  a ":processes" scenario decodes finals in them);
- WER of what the server returned, and of the same client audio streamed in process (100 ms chunks, batched),
  against the AN4 references; and how many clients got exactly the in-process text.
--soak-minutes M: M minutes at 50 clients (audio looped), RSS sampled every 10 s; growth after the first minute.
Never a timed test: tests/test_benchmarks.py runs --quick for the path only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import deque
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.table import Table
from websockets.asyncio.client import connect

from gruasr.audio.io import AN4_RAW, load_audio
from gruasr.audio.telephony import TelephoneChannel
from gruasr.data.corpora.an4 import parse_transcription
from gruasr.environment import environment
from gruasr.evaluation.metrics import ErrorCounts
from gruasr.streaming import StreamingRecognizer

ROOT = Path(__file__).resolve().parents[1]
RATE = 8000
CHUNK = 800  # 100 ms
GAP = RATE  # 1 s of silence after each utterance


@dataclass
class ClientResult:
    chunk_lat: list[float] = field(default_factory=list)
    final_lat: list[float] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def load_an4(data: Path, limit: int | None) -> tuple[list[np.ndarray], list[str]]:
    """AN4 test utterances at 8 kHz through the mu-law line (G.711 codes -> 16-bit), and their references."""
    texts, _ = parse_transcription(data / "an4" / "etc" / "an4_test.transcription")
    paths = sorted((data / "an4" / "wav" / "an4test_clstk").glob("*/*.raw"))[:limit]
    line = TelephoneChannel(codec="ulaw", output_rate=RATE)
    audio = []
    for i, p in enumerate(paths):
        x = line.apply(load_audio(p, raw=AN4_RAW, sample_rate=RATE).channel(0), RATE, np.random.default_rng([0, i]))
        audio.append(np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16))
    return audio, [texts[p.stem] for p in paths]


def client_audio(k: int, seconds: float, audio: list[np.ndarray], refs: list[str]) -> tuple[np.ndarray, str]:
    """Client k's audio: utterances from index 7k on (rotating), each + 1 s silence, until `seconds`."""
    parts, said, n, i = [], [], 0, 7 * k
    while n < seconds * RATE:
        u = audio[i % len(audio)]
        parts += [u, np.zeros(GAP, np.int16)]
        said.append(refs[i % len(refs)])
        n += len(u) + GAP
        i += 1
    return np.concatenate(parts), " ".join(said)


async def run_client(url: str, pcm: np.ndarray, delay: float, result: ClientResult, loop_until: float = 0.0) -> None:
    """Stream `pcm` in real time (100 ms chunks, starting after `delay`), replies read as they come; with
    `loop_until` (a monotonic time) the audio is repeated until then (soak)."""
    await asyncio.sleep(delay)
    sent: deque[float] = deque()
    try:
        async with connect(url, compression=None, open_timeout=60, max_queue=None) as ws:
            await ws.send(json.dumps({"config": {"sample_rate": RATE, "words": 1}}))
            t0 = time.monotonic()

            async def reader() -> None:
                async for message in ws:
                    now = time.monotonic()
                    reply = json.loads(message)
                    result.chunk_lat.append(now - sent.popleft())
                    if "error" in reply:
                        result.errors.append(reply["error"])
                    elif reply.get("text"):
                        result.text.append(reply["text"])
                        result.final_lat.append(now - (t0 + reply["result"][-1]["end"]))

            task = asyncio.create_task(reader())
            k, position = 0, 0
            while True:
                if position >= len(pcm):
                    if time.monotonic() >= loop_until:
                        break
                    position = 0  # soak: the same audio again, on the same clock
                wait = t0 + k * CHUNK / RATE - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                sent.append(time.monotonic())
                await ws.send(pcm[position : position + CHUNK].tobytes())
                position += CHUNK
                k += 1
            sent.append(time.monotonic())
            await ws.send('{"eof" : 1}')
            await asyncio.wait_for(task, 60)
            if sent:
                result.errors.append(f"{len(sent)} replies missing")
    except Exception as err:  # counted, not raised: one failed client is an error in the table
        result.errors.append(f"{type(err).__name__}: {err}")


def in_process(audios: list[np.ndarray]) -> list[str]:
    """The same client audio streamed in this process (100 ms chunks, all streams batched): the finals' text."""
    torch.set_num_threads(1)
    recognizer = StreamingRecognizer.load()
    streams = [recognizer.stream(RATE) for _ in audios]
    texts: list[list[str]] = [[] for _ in audios]
    longest = max(len(a) for a in audios)
    for start in range(0, longest + CHUNK, CHUNK):
        live = [(i, s) for i, s in enumerate(streams) if not s.finished]
        for i, s in live:
            chunk = audios[i][start : start + CHUNK].astype(np.float32) / 32768
            s.feed(chunk, last=start + CHUNK >= len(audios[i]))
        recognizer.advance([s for _, s in live])
        for i, s in live:
            texts[i] += [e.text for e in s.events() if e.type == "final"]
    return [" ".join(t) for t in texts]


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run the clients on uvloop (as the server runs: uvicorn picks it when installed), else asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`gruasr serve` in a subprocess with a given thread layout; CPU and RSS from /proc."""

    def __init__(self, torch_threads: int, decode_workers: int, extra: Sequence[str] = ()) -> None:
        self.port = free_port()
        env = {**os.environ, "OMP_NUM_THREADS": str(torch_threads)}
        cmd = [sys.executable, "-m", "gruasr", "serve", "--port", str(self.port), "--max-sessions", "2000",
               "--torch-threads", str(torch_threads), "--decode-workers", str(decode_workers), *extra]  # fmt: skip
        self.proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=2):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("gruasr serve did not start") from None
                time.sleep(0.2)

    def family(self) -> list[int]:
        """The server and its child processes (`--decode-in processes`: the decoding processes)."""
        pids = [self.proc.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            if int(fields[1]) == self.proc.pid:
                pids.append(int(stat.parent.name))
        return pids

    def cpu_seconds(self) -> float:
        """CPU time of the server and its children."""
        total = 0
        for pid in self.family():
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        """Resident memory of the server and its children."""
        total = 0
        for pid in self.family():
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        return total / 1024

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _pct(values: list[float], q: float) -> float:
    return 1000 * float(np.percentile(values, q)) if values else float("nan")


async def _clients(url: str, pcms: list[np.ndarray], results: list[ClientResult], until: float = 0.0) -> None:
    rng = np.random.default_rng(0)
    starts = rng.uniform(0, 1, len(results))  # clients join over the first second, as calls do
    await asyncio.gather(
        *(run_client(url, p, float(d), r, until) for p, d, r in zip(pcms, starts, results, strict=True))
    )


def scenario(clients: int, threads: int, hog: bool, decoders: int, pcms: list[np.ndarray], refs: list[str],
             expected: list[str], extra: Sequence[str] = (), decode_in: str = "threads") -> dict[str, Any]:  # fmt: skip
    """One load run (`extra`: more `gruasr serve` arguments; `decode_in`: where the server decodes finals); the
    server and the hog are always stopped."""
    hogger = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if hog else None
    server = Server(threads, decoders, [*extra, "--decode-in", decode_in])
    try:
        rss0, cpu0, t0 = server.rss_mb(), server.cpu_seconds(), time.monotonic()
        results = [ClientResult() for _ in range(clients)]
        run_loop(_clients(f"ws://127.0.0.1:{server.port}/", pcms[:clients], results))
        wall, cpu, rss1 = time.monotonic() - t0, server.cpu_seconds() - cpu0, server.rss_mb()
    finally:
        server.stop()
        if hogger is not None:
            hogger.kill()
            hogger.wait()
    served, local = ErrorCounts(), ErrorCounts()
    for r, ref, exp in zip(results, refs, expected, strict=False):
        served.add(ref, " ".join(r.text))
        local.add(ref, exp)
    chunk = [x for r in results for x in r.chunk_lat]
    final = [x for r in results for x in r.final_lat]
    return {
        "clients": clients, "torch_threads": threads, "decode_workers": decoders, "cpu_hog": hog,
        "decode_in": decode_in,
        "reply_ms_p50": _pct(chunk, 50), "reply_ms_p95": _pct(chunk, 95), "reply_ms_max": _pct(chunk, 100),
        "final_ms_p50": _pct(final, 50), "final_ms_p95": _pct(final, 95),
        "errors": sum(len(r.errors) for r in results), "error_samples": [e for r in results for e in r.errors][:5],
        "server_cores": cpu / wall, "rss_mb_start": rss0, "rss_mb_end": rss1,
        "wer_served": served.wer, "wer_in_process": local.wer, "words": served.words,
        "same_text": sum(" ".join(r.text) == e for r, e in zip(results, expected, strict=False)),
    }  # fmt: skip


def soak(minutes: float, clients: int, pcms: list[np.ndarray], decoders: int) -> dict[str, Any]:
    server = Server(1, decoders)
    samples: list[tuple[float, float]] = []
    try:
        results = [ClientResult() for _ in range(clients)]
        until = time.monotonic() + 60 * minutes
        t0 = time.monotonic()

        async def main() -> None:
            task = asyncio.create_task(_clients(f"ws://127.0.0.1:{server.port}/", pcms[:clients], results, until))
            while not task.done():
                samples.append((time.monotonic() - t0, server.rss_mb()))
                await asyncio.wait([task], timeout=10)

        run_loop(main())
    finally:
        server.stop()
    after = [rss for t, rss in samples if t >= 60] or [rss for _, rss in samples]
    chunk = [x for r in results for x in r.chunk_lat]
    return {
        "minutes": minutes, "clients": clients, "rss_mb_first": after[0], "rss_mb_last": after[-1],
        "rss_growth": after[-1] / after[0] - 1, "rss_mb": samples, "reply_ms_p95": _pct(chunk, 95),
        "errors": sum(len(r.errors) for r in results),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("GRUASR_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--seconds", type=float, default=30.0, help="audio per client per scenario")
    default = ["25:1", "50:1", "100:1", "150:1", "20:1:hog", "20:2:hog", "50:1:hog", "100:1:hog"]
    parser.add_argument(
        "--scenarios", nargs="+", default=default,
        help="CLIENTS:TORCH_THREADS[:hog][:processes] (processes: the server decodes finals in processes)",
    )  # fmt: skip
    parser.add_argument("--decode-workers", type=int, default=0, help="0: the server's default")
    parser.add_argument("--soak-minutes", type=float, default=0.0, help="a soak at 50 clients (0: none)")
    parser.add_argument(
        "--quick", action="store_true",
        help="2 clients for 3 s, no hog, finals in threads and in processes: the path, not numbers",
    )  # fmt: skip
    parser.add_argument(
        "--serve-args", default="", help="more `gruasr serve` arguments, e.g. '--engine onnx --model EXPORT_DIR'"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "server_load-cpu.json")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.scenarios, args.soak_minutes = 3.0, ["2:1", "2:1:processes"], 0.0
    plans = [(int(s.split(":")[0]), int(s.split(":")[1]), set(s.split(":")[2:])) for s in args.scenarios]
    audio, texts = load_an4(args.data, 8 if args.quick else None)
    most = max(n for n, _, _ in plans)
    pairs = [client_audio(k, args.seconds, audio, texts) for k in range(most)]
    pcms, refs = [p for p, _ in pairs], [r for _, r in pairs]
    expected = in_process(pcms)
    extra = args.serve_args.split()
    rows = [
        scenario(n, t, "hog" in flags, args.decode_workers, pcms, refs, expected, extra,
                 "processes" if "processes" in flags else "threads")
        for n, t, flags in plans
    ]  # fmt: skip
    report: dict[str, Any] = {"seconds_per_client": args.seconds, "chunk_ms": 100, "rows": rows, "serve_args": extra,
                              "environment": environment(), "command": " ".join(sys.argv)}  # fmt: skip
    if args.soak_minutes:
        report["soak"] = soak(args.soak_minutes, 50, pcms, args.decode_workers)

    table = Table(title=f"gruasr serve under load: {args.seconds:g} s of real-time AN4 speech per client")
    columns = ("clients", "torch threads", "CPU hog", "finals in", "reply p50 ms", "reply p95 ms", "final p50 ms",
               "final p95 ms", "errors", "server cores", "RSS MB", "WER served", "WER in-process",
               "same text")  # fmt: skip
    for col in columns:
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["clients"]), str(r["torch_threads"]), "yes" if r["cpu_hog"] else "no", r["decode_in"],
                      f"{r['reply_ms_p50']:.0f}", f"{r['reply_ms_p95']:.0f}", f"{r['final_ms_p50']:.0f}",
                      f"{r['final_ms_p95']:.0f}", str(r["errors"]), f"{r['server_cores']:.2f}",
                      f"{r['rss_mb_end']:.0f}", f"{r['wer_served']:.2%}", f"{r['wer_in_process']:.2%}",
                      f"{r['same_text']}/{r['clients']}")  # fmt: skip
    Console(width=200).print(table)
    if "soak" in report:
        s = report["soak"]
        print(f"soak: {s['minutes']:g} min x {s['clients']} clients: RSS {s['rss_mb_first']:.0f} -> "
              f"{s['rss_mb_last']:.0f} MB ({s['rss_growth']:+.1%}), reply p95 {s['reply_ms_p95']:.0f} ms, "
              f"errors {s['errors']}")  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
