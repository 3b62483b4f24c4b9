"""Training-step and inference time of every recurrent unit and backend, against torch.nn.GRU in the same run.

    python benchmarks/recurrent_speed.py [--quick] [--device cuda] [--out bench-results/recurrent_speed.json]

A training step is forward + backward of sum(y^2) over a (B, T, 80) batch; inference is a forward pass under
torch.inference_mode. Times are medians over --repeat runs after a warm-up run. Ratios are the unit's time over
torch.nn.GRU's time at the same size, measured in this run, so they hold on a noisy shared machine better than
seconds do. Targets (issue 2): the reference GRU trains within 2x of torch.nn.GRU at hidden 256, batch 16,
200 steps on CPU; MinGRU trains faster than torch.nn.GRU at hidden 512, 400 steps.
"""

from __future__ import annotations

import argparse
import json
import platform
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from gruasr.environment import device_name
from gruasr.models import recurrent
from gruasr.timing import median_seconds

INPUT = 80
SIZES = [  # (hidden, batch, steps)
    (128, 32, 100),
    (256, 16, 200),
    (512, 16, 400),
]
QUICK_SIZES = [(64, 8, 50)]
VARIANTS = [  # (label, unit, backend); None unit = torch.nn.GRU itself, the baseline
    ("torch.nn.GRU", None, None),
    ("gru/reference", "gru", "reference"),
    ("gru/fused", "gru", "fused"),
    ("lstm/reference", "lstm", "reference"),
    ("lstm/fused", "lstm", "fused"),
    ("rnn/reference", "rnn", "reference"),
    ("rnn/fused", "rnn", "fused"),
    ("ligru/reference", "ligru", "reference"),
    ("mingru/scan", "mingru", "scan"),
    ("mingru/sequential", "mingru", "sequential"),
]


def build(unit: str | None, backend: str | None, hidden: int, device: torch.device) -> nn.Module:
    if unit is None:
        return nn.GRU(INPUT, hidden, batch_first=True).to(device)
    return recurrent(unit, input_size=INPUT, hidden_size=hidden, backend=backend).to(device)


def measure(
    label: str, unit: str | None, backend: str | None, size: tuple[int, int, int], device: torch.device, repeat: int
) -> dict[str, object]:
    hidden, batch, steps = size
    torch.manual_seed(0)
    model = build(unit, backend, hidden, device)
    x = torch.randn(batch, steps, INPUT, device=device, requires_grad=True)

    def train() -> None:
        model.zero_grad(set_to_none=True)
        y = model(x)[0]
        y.square().sum().backward()

    def infer() -> None:
        with torch.inference_mode():
            model(x)

    params = sum(p.numel() for p in model.parameters())
    return {
        "variant": label,
        "hidden": hidden,
        "batch": batch,
        "steps": steps,
        "parameters": params,
        "train_s": median_seconds(train, device, repeat),
        "infer_s": median_seconds(infer, device, repeat),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true", help="one tiny size, one repeat (a smoke run)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/recurrent_speed.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sizes = QUICK_SIZES if args.quick else SIZES
    repeat = 1 if args.quick else args.repeat
    console = Console(stderr=True)

    rows = []
    for size in sizes:
        for label, unit, backend in VARIANTS:
            console.print(f"[dim]measuring {label} at hidden {size[0]}, batch {size[1]}, {size[2]} steps[/dim]")
            rows.append(measure(label, unit, backend, size, device, repeat))
    baseline = {(r["hidden"], r["steps"]): r for r in rows if r["variant"] == "torch.nn.GRU"}
    for row in rows:
        base = baseline[(row["hidden"], row["steps"])]
        row["train_ratio"] = float(row["train_s"]) / float(base["train_s"])  # type: ignore[arg-type]
        row["infer_ratio"] = float(row["infer_s"]) / float(base["infer_s"])  # type: ignore[arg-type]

    table = Table(title=f"recurrent units on {device} ({torch.get_num_threads()} threads), input {INPUT}")
    for col in ("variant", "H", "B", "T", "params", "train ms", "x nn.GRU", "infer ms", "x nn.GRU"):
        table.add_column(col, justify="left" if col == "variant" else "right")
    for r in rows:
        table.add_row(
            str(r["variant"]), str(r["hidden"]), str(r["batch"]), str(r["steps"]), f"{r['parameters']:,}",
            f"{1e3 * float(r['train_s']):.1f}", f"{r['train_ratio']:.2f}",  # type: ignore[arg-type]
            f"{1e3 * float(r['infer_s']):.1f}", f"{r['infer_ratio']:.2f}",  # type: ignore[arg-type]
        )  # fmt: skip
    Console(width=140).print(table)

    targets = {}
    if not args.quick:
        gru = next(r for r in rows if r["variant"] == "gru/reference" and r["hidden"] == 256)
        mingru = next(r for r in rows if r["variant"] == "mingru/scan" and r["hidden"] == 512)
        targets = {
            "reference GRU trains within 2x of torch.nn.GRU (H256 B16 T200)": float(gru["train_ratio"]) <= 2.0,
            "MinGRU (scan) trains faster than torch.nn.GRU (H512 T400)": float(mingru["train_ratio"]) < 1.0,
        }
        for name, met in targets.items():
            Console().print(f"target: {name}: {'met' if met else 'NOT met'}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "device": str(device),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "repeat": repeat,
        "command": "python benchmarks/recurrent_speed.py" + (" --quick" if args.quick else ""),
    }
    args.out.write_text(json.dumps({"meta": meta, "rows": rows, "targets": targets}, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
