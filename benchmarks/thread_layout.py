"""The thread trap, measured: one streaming tick (100 ms of audio for each of N streams, one batched `advance`)
with 1 or 2 torch intra-op threads, run in the main thread (as `gruasr stream`/`call` and the in-process
benchmarks run it) or in a worker thread (as `gruasr serve`'s ticker runs it), with and without a busy-loop
process beside it.

    python benchmarks/thread_layout.py [--streams 20 100] [--ticks 20] [--quick]
                                       [--out docs/results/thread_layout-cpu.json]

Each configuration runs in a fresh process (torch's thread pools are per process and per thread), bounded to
--ticks ticks or 20 s. A tick is real time while it stays under 100 ms. Never a timed test.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
RATE, CHUNK = 8000, 800
LIMIT_S = 20.0


def probe(streams: int, threads: int, place: str, ticks: int, data: Path) -> dict[str, Any]:
    """In this process: tick times of `streams` streams of AN4 speech with `threads` torch threads, in `place`."""
    import torch

    from gruasr.audio.io import AN4_RAW, load_audio
    from gruasr.streaming import StreamingRecognizer

    torch.set_num_threads(threads)
    recognizer = StreamingRecognizer.load()
    paths = sorted((data / "an4" / "wav" / "an4test_clstk").glob("*/*.raw"))[:20]
    gap = np.zeros(RATE, np.float32)
    audio = np.concatenate([x for p in paths for x in (load_audio(p, raw=AN4_RAW, sample_rate=RATE).channel(0), gap)])

    def run() -> list[float]:
        group = [recognizer.stream(RATE) for _ in range(streams)]
        times: list[float] = []
        began = time.perf_counter()
        for t in range(ticks + 3):
            start = time.perf_counter()
            for i, s in enumerate(group):
                offset = (t * CHUNK + i * 1234) % (len(audio) - CHUNK)  # streams at different points of speech
                s.feed(audio[offset : offset + CHUNK])
            recognizer.advance(group)
            for s in group:
                s.events()
            times.append(time.perf_counter() - start)
            if time.perf_counter() - began > LIMIT_S:
                break
        return times[3:] or times  # the first ticks warm up

    times = run() if place == "main" else concurrent.futures.ThreadPoolExecutor(1).submit(run).result()
    return {"tick_ms_p50": 1000 * float(np.median(times)), "tick_ms_p95": 1000 * float(np.percentile(times, 95)),
            "ticks": len(times)}  # fmt: skip


def measure(streams: int, threads: int, place: str, hog: bool, ticks: int, data: Path) -> dict[str, Any]:
    """One configuration in a fresh process (and a busy loop beside it when `hog`); always cleaned up."""
    hogger = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if hog else None
    try:
        env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
        cmd = [sys.executable, __file__, "--probe", f"{streams}:{threads}:{place}", "--ticks", str(ticks),
               "--data", str(data)]  # fmt: skip
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=True)
        row = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        if hogger is not None:
            hogger.kill()
            hogger.wait()
    return {"streams": streams, "torch_threads": threads, "thread": place, "cpu_hog": hog, **row}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("GRUASR_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--streams", type=int, nargs="+", default=[20, 100])
    parser.add_argument("--ticks", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="one small configuration: the path, not numbers")
    parser.add_argument("--probe", help=argparse.SUPPRESS)  # STREAMS:THREADS:PLACE, in a child process
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "thread_layout-cpu.json")
    args = parser.parse_args()
    if args.probe:
        n, t, place = args.probe.split(":")
        print(json.dumps(probe(int(n), int(t), place, args.ticks, args.data)))
        return
    configs = [(n, t, p, h) for h in (False, True) for n in args.streams for t in (1, 2) for p in ("main", "worker")]
    if args.quick:
        configs, args.ticks = [(2, 1, "worker", False)], 3
    rows = [measure(n, t, p, h, args.ticks, args.data) for n, t, p, h in configs]
    table = Table(title="one 100 ms streaming tick: torch threads x where it runs x a busy core beside it")
    for col in ("streams", "torch threads", "thread", "CPU hog", "tick p50 ms", "tick p95 ms", "ticks"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(str(r["streams"]), str(r["torch_threads"]), r["thread"], "yes" if r["cpu_hog"] else "no",
                      f"{r['tick_ms_p50']:.1f}", f"{r['tick_ms_p95']:.1f}", str(r["ticks"]))  # fmt: skip
    Console(width=160).print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "command": " ".join(sys.argv)}, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
