"""Training throughput with torchrun: 1 process x 1 thread against N gloo processes x 1 thread, the same recipe,
the same global batches (gruasr.training.distributed), on this machine's cores.

    python benchmarks/ddp_speed.py [--data DIR] [--ranks 2] [--limit 300] [--epochs 3] [--quick]
                                   [--out docs/results/ddp_speed-cpu.json]

Each run is a real `gruasr train` (`python -m torch.distributed.run --standalone --nproc-per-node N -m gruasr
train` for N > 1) of the default recipe's model and augmentation (configs/telephone.toml) on the first --limit
utterances of AN4 train and FSDD train (manifests written from --data into a temporary folder), dev AN4 dev;
throughput is the epochs' audio (seconds of training audio per epoch, all ranks together) over the time of their
optimizer steps (summary.json `train_seconds`: no feature computation, dev evaluation or checkpoints), from the
second epoch on (the first warms up). Never a timed test:
tests/test_benchmarks.py runs --quick for the path only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from gruasr.environment import environment

ROOT = Path(__file__).resolve().parents[1]


def run(ranks: int, overrides: list[str], out: Path) -> dict[str, Any]:
    sets = [x for o in overrides for x in ("--set", o)]
    train = ["gruasr", "train", "--config", str(ROOT / "configs" / "telephone.toml"), "--out", str(out), *sets]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={ranks}"]
    command = [sys.executable, "-m", *train] if ranks == 1 else [*launcher, "-m", *train]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    history = json.loads((out / "summary.json").read_text())["history"]
    timed = history[1:] or history
    audio = sum(h["audio_seconds"] for h in timed)
    seconds = sum(h["train_seconds"] for h in timed)
    return {"ranks": ranks, "threads_per_rank": 1, "epochs_timed": len(timed), "audio_seconds": audio,
            "train_seconds": seconds, "audio_s_per_s": audio / seconds,
            "losses": [h["loss"] for h in history]}  # fmt: skip


def manifests(data: Path, folder: Path) -> list[str]:
    """AN4 and FSDD manifests of the corpora under `data` (no generated phone numbers), as recipe overrides."""
    from gruasr.data.corpora.an4 import import_an4
    from gruasr.data.corpora.fsdd import import_fsdd

    import_an4(data / "an4", folder / "an4")
    import_fsdd(data / "fsdd", folder / "fsdd", numbers={"train": 0, "dev": 0, "test": 0})
    train = [str(folder / "an4" / "train.jsonl"), str(folder / "fsdd" / "train.jsonl")]
    return [f"data.train={json.dumps(train)}", f'data.dev=["{folder / "an4" / "dev.jsonl"}"]', "data.repeat=[1, 1]"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("GRUASR_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--ranks", type=int, default=2)
    parser.add_argument("--limit", type=int, default=300, help="utterances per manifest")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="a tiny model on 24 utterances: the path, not numbers")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "ddp_speed-cpu.json")
    args = parser.parse_args()
    overrides = [f"data.limit={args.limit}", f"train.epochs={args.epochs}", "train.num_workers=1",
                 "train.average_last=1", "augment.variants=1"]  # fmt: skip
    if args.quick:
        overrides = ["data.limit=24", "train.epochs=2", "train.num_workers=0", "train.average_last=1",
                     "augment.variants=1", "model.hidden_size=16", "model.num_layers=1", "model.conv_channels=16",
                     "train.max_seconds=8.0"]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        overrides = [*manifests(args.data, Path(tmp) / "data"), *overrides]
        rows = [run(1, overrides, Path(tmp) / "one"), run(args.ranks, overrides, Path(tmp) / "many")]
    speedup = rows[1]["audio_s_per_s"] / rows[0]["audio_s_per_s"]
    table = Table(title="gruasr train under torchrun (gloo, CPU): training audio per second of steps")
    for col in ("processes", "threads each", "audio s / s", "speed-up"):
        table.add_column(col, justify="right")
    for r in rows:
        ratio = r["audio_s_per_s"] / rows[0]["audio_s_per_s"]
        table.add_row(str(r["ranks"]), "1", f"{r['audio_s_per_s']:.1f}", f"{ratio:.2f}x")
    Console(width=120).print(table)
    report = {"rows": rows, "speedup": speedup, "overrides": overrides, "environment": environment(),
              "command": " ".join(sys.argv)}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
