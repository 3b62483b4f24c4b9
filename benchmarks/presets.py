"""Training throughput of the model-size presets (configs/size-*.toml) on this machine.

    python benchmarks/presets.py [--data DIR] [--steps 10] [--quick] [--out docs/results/presets-cpu.json]

For each preset: its parameters, and audio seconds trained per wall second (benchmarks/train_speed.py's
measurement: the recipe's batching on the first 300 utterances of AN4 train and of FSDD train, manifests written
from --data into a temporary folder, no waveform augmentation, features cached, --steps optimizer steps timed
after 2 warm-up steps, the reference GRU), one torch thread; then what that means: wall minutes per hour of
training audio (one epoch of the default recipe is 2.9 h of audio), and hours of audio per day. Then the memory
of one training step at the recipe's batch (24 utterances x 10 s = its 240 s of padded audio, 30-token targets,
float32): parameters + gradients + AdamW's two moments + the activations autograd saves for the backward pass,
counted exactly (gruasr.study.measure.training_memory): what a GPU must hold at that batch in fp32, whatever the
device. `--memory-only` adds the memory to the rows already in --out without timing anything again. Never a timed
test: tests/test_benchmarks.py runs --quick for the path only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from rich.table import Table

from gruasr.environment import environment

sys.path.insert(0, str(Path(__file__).resolve().parent))
from ddp_speed import manifests  # noqa: E402
from train_speed import throughput  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PRESETS = ("xs", "s", "m", "l", "xl")


BATCH = 24  # x 10 s: the recipe's 240 s batch


def _memory(recipe: Path, batch: int) -> dict[str, float]:
    from gruasr.study.measure import training_memory
    from gruasr.training.config import load_config

    config = load_config(recipe)
    memory = training_memory(config.model, batch, 10.0, features=config.features)
    return {"step_mb": memory["step_mb"], "activations_mb": memory["activations_mb"], "memory_batch": [batch, 10.0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("GRUASR_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="the two smallest presets, 1 step: the path")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "presets-cpu.json")
    parser.add_argument("--memory-only", action="store_true", help="add the step memory to --out's rows")
    args = parser.parse_args()
    torch.set_num_threads(1)
    names = PRESETS[:2] if args.quick else PRESETS
    steps = 1 if args.quick else args.steps
    rows: list[dict[str, Any]] = []
    if args.memory_only:
        report = json.loads(args.out.read_text())
        for row in report["rows"]:
            row.update(_memory(ROOT / row["config"], 2 if args.quick else BATCH))
        args.out.write_text(json.dumps(report, indent=2) + "\n")
        for row in report["rows"]:
            print(f"{row['preset']}: step {row['step_mb']:.0f} MB (activations {row['activations_mb']:.0f} MB)")
        return
    with tempfile.TemporaryDirectory() as tmp:
        data = manifests(args.data, Path(tmp) / "data")
        for name in names:
            path = ROOT / "configs" / f"size-{name}.toml"
            row = throughput(path, "reference", steps, False, Path(tmp) / name, data)
            row.update(_memory(path, 2 if args.quick else BATCH))
            rows.append({"preset": name, "config": str(path.relative_to(ROOT)), **row,
                         "minutes_per_audio_hour": 60 / row["audio_s_per_s"],
                         "audio_hours_per_day": row["audio_s_per_s"] * 24})  # fmt: skip
            print(rows[-1]["preset"], rows[-1]["parameters"], f"{rows[-1]['audio_s_per_s']:.1f}", flush=True)
    table = Table(title="model-size presets: training throughput, one thread, CPU")
    for col in ("preset", "parameters", "audio s / wall s", "min per audio hour", "audio h per day"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["preset"], f"{r['parameters']:,}", f"{r['audio_s_per_s']:.1f}",
                      f"{r['minutes_per_audio_hour']:.1f}", f"{r['audio_hours_per_day']:.0f}")  # fmt: skip
    Console(width=120).print(table)
    report = {"rows": rows, "environment": environment(), "command": " ".join(sys.argv)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
