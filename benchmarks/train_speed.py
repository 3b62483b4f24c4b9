"""Training speed of the default recipe's model: audio seconds trained per wall second, and time to target WER.

    python benchmarks/train_speed.py [--config configs/telephone.toml] [--steps 20] [--run runs/telephone]
                                     [--units gru:reference,gru:fused,mingru:scan] [--set KEY=VALUE ...]
                                     [--out bench-results/train_speed.json]

Throughput: the recipe's model and batching on the first utterances of its training manifests (no waveform
augmentation; features cached as the trainer caches them), timed over --steps optimizer steps after 2 warm-up
steps, for the reference GRU and the fused (torch.nn.GRU / cuDNN) backend, in one run. On a GPU, also with
bf16 autocast. Time to target: read from a finished run's summary.json (--run): minutes of training until the
dev WER first reached each threshold.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from gruasr.environment import environment
from gruasr.timing import sync
from gruasr.training.config import load_config
from gruasr.training.loop import Trainer


def throughput(
    config_path: Path, backend: str, steps: int, amp: bool, out: Path, extra: Sequence[str] = ()
) -> dict[str, Any]:
    """Audio seconds trained per wall second (`extra`: more recipe overrides, e.g. other manifests)."""
    overrides = [
        "data.limit=300", "augment.variants=1", "augment.speeds=[1.0]", "augment.telephone_prob=0.0",
        "augment.noise_prob=0.0", f"model.backend=\"{backend}\"", f"train.amp={str(amp).lower()}", *extra,
    ]  # fmt: skip
    trainer = Trainer(load_config(config_path, overrides), out, Console(stderr=True))
    trainer.prepare()
    trainer.build_model()
    trainer.sampler.set_epoch(0)
    batches = list(trainer.sampler)  # each a list of (epoch, position) keys; a step pads and masks its batch
    needed = steps + 2
    batches = (batches * (needed // len(batches) + 1))[:needed]
    for keys in batches[:2]:
        trainer.step(keys, 1e-4)
    sync(trainer.device)
    start = time.perf_counter()
    for keys in batches[2:]:
        trainer.step(keys, 1e-4)
    sync(trainer.device)
    elapsed = time.perf_counter() - start
    frames = sum(int(trainer.batches(keys)["lengths"].sum()) for keys in batches[2:])
    return {
        "backend": backend,
        "amp": amp and trainer.device.type == "cuda",
        "device": str(trainer.device),
        "steps": steps,
        "audio_seconds": frames / 100,
        "wall_seconds": elapsed,
        "audio_s_per_s": frames / 100 / elapsed,
        "parameters": trainer.model.num_parameters(),
    }


def time_to_target(run: Path, targets: tuple[float, ...] = (0.5, 0.3, 0.2, 0.1, 0.05)) -> dict[str, Any]:
    summary = json.loads((run / "summary.json").read_text())
    history = summary["history"]
    elapsed, reached = 0.0, {}
    for record in history:
        elapsed += record["seconds"]
        for target in targets:
            if record["dev_wer"] <= target and f"{target:.0%}" not in reached:
                reached[f"{target:.0%}"] = {"epoch": record["epoch"] + 1, "minutes": elapsed / 60}
    return {
        "run": str(run),
        "epochs": len(history),
        "total_minutes": elapsed / 60,
        "best_dev_wer": min(r["dev_wer"] for r in history),
        "reached": reached,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=Path("configs/telephone.toml"))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--run", type=Path, help="a finished run folder, for time to target WER")
    parser.add_argument("--out", type=Path, default=Path("bench-results/train_speed.json"))
    parser.add_argument(
        "--units", default="gru:reference,gru:fused", help="UNIT:BACKEND pairs to time (e.g. add mingru:scan)"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="more recipe overrides")
    args = parser.parse_args()
    scratch = args.out.parent / "train_speed_scratch"
    pairs = [tuple(item.split(":", 1)) for item in args.units.split(",")]
    amps = (False, True) if torch.cuda.is_available() else (False,)  # bf16 autocast on a GPU only
    rows = []
    for amp in amps:
        for unit, backend in pairs:
            row = throughput(args.config, backend, args.steps, amp, scratch, [f'model.unit="{unit}"', *args.set])
            rows.append({"unit": unit, **row})
    table = Table(title=f"training throughput, {args.config} model")
    for col in ("unit", "backend", "device", "amp", "steps", "audio s / wall s"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["unit"], r["backend"], r["device"], str(r["amp"]), str(r["steps"]), f"{r['audio_s_per_s']:.1f}")
    console = Console(width=120)
    console.print(table)
    result: dict[str, Any] = {"environment": environment(), "throughput": rows}
    if args.run:
        result["time_to_target"] = time_to_target(args.run)
        reached = result["time_to_target"]["reached"]
        console.print(
            f"{args.run}: {result['time_to_target']['total_minutes']:.1f} min in all; dev WER reached: "
            + ", ".join(f"{k} after {v['minutes']:.1f} min (epoch {v['epoch']})" for k, v in reached.items())
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
