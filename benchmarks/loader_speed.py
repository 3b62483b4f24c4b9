"""Throughput of the training data pipeline: load + augment + fbank + pad + SpecAugment, by worker count.

    python benchmarks/loader_speed.py [--data DIR] [--utterances N] [--quick] [--out bench-results/loader_speed.json]

Reads FSDD takes (8 kHz) from DIR/fsdd (default $GRUASR_DATA or ../shared/data), with the full training
augmentation (speed perturbation, telephone channel with G.711 and packet loss, noise), and reports audio
seconds prepared per wall second for 0 workers (all in the main process) and 1, 2 worker processes, in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from gruasr.data.augment import AugmentConfig
from gruasr.data.batching import BucketBatchSampler, Collate, SpeechDataset, make_loader
from gruasr.data.manifest import Utterance
from gruasr.features import Fbank, FbankConfig, SpecAugment

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("GRUASR_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--utterances", type=int, default=600)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("bench-results/loader_speed.json"))
    args = parser.parse_args()
    files = sorted((args.data / "fsdd" / "recordings").glob("*.wav"))
    if not files:
        raise SystemExit(f"no FSDD recordings under {args.data / 'fsdd'}")
    count = 48 if args.quick else args.utterances
    utts = [Utterance(f.stem, str(f), "x") for f in files[:count]]
    augment = AugmentConfig(speeds=(0.9, 1.0, 1.1), telephone_prob=0.8, noise_prob=0.5, packet_loss=(0.0, 0.05))
    dataset = SpeechDataset(utts, Fbank(FbankConfig()), 8000, augment, seed=0)
    rows = []
    for workers in (0, 1, 2):
        sampler = BucketBatchSampler([0.5] * len(utts), max_seconds=16.0, seed=0)
        loader = make_loader(dataset, sampler, Collate(SpecAugment(), seed=0), num_workers=workers)
        threads = torch.get_num_threads()
        if workers == 0:
            torch.set_num_threads(1)  # as a worker would: the comparison is processes, not intra-op threads
        start = time.perf_counter()
        seconds = sum(batch["seconds"] for batch in loader)
        elapsed = time.perf_counter() - start
        torch.set_num_threads(threads)
        rows.append({"workers": workers, "audio_s": seconds, "wall_s": elapsed, "audio_s_per_s": seconds / elapsed})
    for row in rows:
        row["speedup"] = row["audio_s_per_s"] / rows[0]["audio_s_per_s"]
    table = Table(title=f"training data pipeline, {len(utts)} FSDD takes, full augmentation, {os.cpu_count()} cores")
    for col in ("workers", "audio s", "wall s", "audio s / s", "x 0 workers"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r["workers"]),
            f"{r['audio_s']:.0f}",
            f"{r['wall_s']:.2f}",
            f"{r['audio_s_per_s']:.0f}",
            f"{r['speedup']:.2f}",
        )
    Console(width=120).print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"cores": os.cpu_count(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
