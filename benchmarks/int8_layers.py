"""Which layers the int8 export keeps in float: full-set WER of the default model's ONNX export with every
matrix product int8 and with one or two layers left float, side by side with the float export.

    python benchmarks/int8_layers.py [--data DIR] [--model DIR] [--split test|dev]
                                     [--out docs/results/int8_layers-cpu.json]

The sets are benchmarks/deploy_speed.py's (AN4 test through the mu-law line, 200 FSDD test phone numbers), decoded
by gruasr.runtime.OnnxRecognizer with the model's own beam + LM settings on one thread; `--split dev` scores AN4's
dev speakers through the same line and 200 FSDD dev phone numbers instead, to choose the layers on dev. Every
variant is the GRU rewrite of gruasr.export.quantize followed by ONNX Runtime's dynamic quantization (int8 weights
per output channel, uint8 activations), with the layers the row names kept float. This is how `gruasr model export
--int8` came to keep its first convolution float (README "Deployment").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import onnx
from rich.console import Console
from rich.table import Table

from gruasr.environment import environment
from gruasr.evaluation.metrics import score
from gruasr.export.onnx import export_onnx
from gruasr.export.quantize import quantize_graph, unroll_gru_nodes
from gruasr.integrity import write_manifest
from gruasr.runtime import OnnxRecognizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deploy_speed import _prepare, _read  # noqa: E402  (the same sets as the deployment benchmark)

ROOT = Path(__file__).resolve().parents[1]


def wer(folder: Path, sets: dict[str, list[dict[str, str]]]) -> dict[str, float]:
    asr = OnnxRecognizer.load(str(folder), threads=1)
    return {key: score((it["text"], asr.transcribe(_read(it["wav8"]), 8000).text) for it in items).wer
            for key, items in sets.items()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("GRUASR_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--model", default="telephone", help="a model folder or a bundled model's name")
    parser.add_argument("--quick", action="store_true", help="12 utterances a set: the path, not numbers")
    parser.add_argument(
        "--split", choices=["test", "dev"], default="test",
        help="score on the test sets (default) or on dev (AN4 dev speakers, FSDD dev numbers): choose on dev",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "int8_layers-cpu.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sets = _prepare(args.data, work / "prep", args.quick, args.split)
        source = export_onnx(args.model, work / "float")
        unrolled = unroll_gru_nodes(onnx.load(str(source / "model.onnx")))  # for the node names only
        ops = [(n.name, n.op_type) for n in unrolled.graph.node if n.op_type in ("MatMul", "Conv")]
        conv1, conv2, output = ops[0][0], ops[1][0], ops[-1][0]
        variants: dict[str, dict[str, Any]] = {
            "all int8": {"keep_float": []},
            "first convolution float": {"keep_float": [conv1]},
            "second convolution float": {"keep_float": [conv2]},
            "both convolutions float": {"keep_float": [conv1, conv2]},
            "first convolution and output layer float": {"keep_float": [conv1, output]},
            "output layer float": {"keep_float": [output]},
            "recurrent products float": {"keep_float": [], "subgraphs": False},
        }
        rows = [{"variant": "float (no int8)", "mb": (source / "model.onnx").stat().st_size / 1e6,
                 **wer(source, sets)}]  # fmt: skip
        for name, options in variants.items():
            folder = work / "variant"
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(source, folder)
            (folder / "checksums.sha256").unlink()
            quantize_graph(source / "model.onnx", folder / "model.onnx", **options)
            write_manifest(folder)
            rows.append({"variant": name, "mb": (folder / "model.onnx").stat().st_size / 1e6, **wer(folder, sets)})
            print(rows[-1], flush=True)
    table = Table(title=f"int8 export of {args.model}: which layers stay float (WER, beam + LM, one thread)")
    for col in ("variant", "model.onnx MB", f"AN4 {args.split} mu-law", f"FSDD {args.split} numbers"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["variant"], f"{r['mb']:.2f}", f"{r['an4']:.2%}", f"{r['fsdd_numbers']:.2%}")
    Console(width=140).print(table)
    report = {"model": args.model, "split": args.split, "rows": rows, "environment": environment(),
              "command": " ".join(sys.argv)}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
