"""Which layers the int8 export keeps in float: full-set WER of the default model's ONNX export with every
matrix product int8 and with one or two layers left float or int8 weight-only, side by side with the float export,
and the cost of the streaming model's step quantized the same way.

    python benchmarks/int8_layers.py [--data DIR] [--model DIR] [--streaming-model DIR] [--split test|dev]
                                     [--variants WORD ...] [--torch] [--out docs/results/int8_layers-cpu.json]

The sets are benchmarks/deploy_speed.py's (AN4 test through the mu-law line, 200 FSDD test phone numbers), decoded
by gruasr.runtime.OnnxRecognizer with the model's own beam + LM settings on one thread; `--split dev` scores AN4's
dev speakers through the same line and 200 FSDD dev phone numbers instead, to choose the layers on dev. Every
variant is the GRU rewrite of gruasr.export.quantize followed by ONNX Runtime's dynamic quantization (int8 weights
per output channel, uint8 activations), with the layers the row names kept float, or int8 weight-only (int8 in the
file, a float product). This is how `gruasr model export --int8` came to store its convolutions weight-only
(README "Deployment"). The step column: one batched streaming step (80 ms of features) of the streaming model for 1
and for 300 streams on one thread, best of 3 (a ratio between rows of one run; the machine may be busy). --torch
adds PyTorch's own path on the same sets: the torch model in float and with gruasr.export.torch_int8 (or name them
in --variants: "torch" selects both).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import onnx
from rich.console import Console
from rich.table import Table

from gruasr.environment import environment
from gruasr.evaluation.metrics import score
from gruasr.export.onnx import export_onnx
from gruasr.export.quantize import convolutions, quantize_graph, unroll_gru_nodes
from gruasr.integrity import write_manifest
from gruasr.runtime import OnnxRecognizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from deploy_speed import _prepare, _read  # noqa: E402  (the same sets as the deployment benchmark)

ROOT = Path(__file__).resolve().parents[1]


def set_wers(asr: Any, sets: dict[str, list[dict[str, str]]]) -> dict[str, float]:
    """WER per set of a recognizer (ONNX or torch) on the prepared 8 kHz audio."""
    return {key: score((it["text"], asr.transcribe(_read(it["wav8"]), 8000).text) for it in items).wer
            for key, items in sets.items()}  # fmt: skip


def wer(folder: Path, sets: dict[str, list[dict[str, str]]]) -> dict[str, float]:
    return set_wers(OnnxRecognizer.load(str(folder), threads=1), sets)


def torch_wer(model: str, sets: dict[str, list[dict[str, str]]], int8: bool) -> dict[str, float]:
    """The same sets through the torch recognizer (one thread), float or with PyTorch's own int8 path
    (gruasr.export.torch_int8: dynamic int8 GRU and output layer, the convolutions float)."""
    import torch

    from gruasr.export.onnx import resolve_model
    from gruasr.export.torch_int8 import quantize_recognizer
    from gruasr.recognizer import OfflineRecognizer

    torch.set_num_threads(1)
    asr = OfflineRecognizer.load(resolve_model(model))
    return set_wers(quantize_recognizer(asr) if int8 else asr, sets)


STEP_STREAMS = (1, 300)  # streams in one batched streaming step


def variants(graph: Path) -> dict[str, dict[str, Any]]:
    """Each row's quantize_graph options, with the node names of this graph (its convolutions, and the output
    layer, its last MatMul: Conv/MatMul in model.onnx, all MatMul in streaming.onnx)."""
    unrolled = unroll_gru_nodes(onnx.load(str(graph)))
    conv1, conv2 = convolutions(unrolled)
    output = [n.name for n in unrolled.graph.node if n.op_type == "MatMul"][-1]
    return {
        "all int8": {"keep_float": [], "weight_only": []},
        "convolutions int8 weight-only (the export)": {"keep_float": [], "weight_only": [conv1, conv2]},
        "first convolution float": {"keep_float": [conv1], "weight_only": []},
        "second convolution float": {"keep_float": [conv2], "weight_only": []},
        "both convolutions float": {"keep_float": [conv1, conv2], "weight_only": []},
        "first convolution and output layer float": {"keep_float": [conv1, output], "weight_only": []},
        "output layer float": {"keep_float": [output], "weight_only": []},
        "recurrent products float": {"keep_float": [], "weight_only": [], "subgraphs": False},
    }


def step_ms(graph: Path, frames: int = 8) -> dict[str, float]:
    """One streaming step (80 ms of features, the convolutions' context, the GRU state) on one ONNX Runtime
    thread, batched over 1 and 300 streams: the best of 3 timings of the mean over repeated runs, in ms."""
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(graph), opts, providers=["CPUExecutionProvider"])
    shapes = {i.name: i.shape for i in session.get_inputs()}
    rng = np.random.default_rng(0)
    out = {}
    for streams in STEP_STREAMS:
        feeds = {"fbank": rng.standard_normal((streams, frames, 80)).astype(np.float32),
                 "lengths": np.full(streams, frames, dtype=np.int64)}  # fmt: skip
        for key in ("context1", "context2", "state"):
            shape = [d if isinstance(d, int) else streams for d in shapes[key]]
            feeds[key] = (rng.standard_normal(shape) * 0.5).astype(np.float32)
        repeats = max(3, 600 // streams)
        best = float("inf")
        for _ in range(3):
            session.run(None, feeds)
            start = time.perf_counter()
            for _ in range(repeats):
                session.run(None, feeds)
            best = min(best, (time.perf_counter() - start) / repeats * 1000)
        out[f"step_ms_{streams}"] = best
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("GRUASR_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--model", default="telephone", help="a model folder or a bundled model's name")
    parser.add_argument(
        "--streaming-model",
        default="telephone-streaming",
        help="the model whose streaming step is timed per variant (default: the bundled one)",
    )
    parser.add_argument("--quick", action="store_true", help="12 utterances a set: the path, not numbers")
    parser.add_argument(
        "--split", choices=["test", "dev"], default="test",
        help="score on the test sets (default) or on dev (AN4 dev speakers, FSDD dev numbers): choose on dev",
    )  # fmt: skip
    parser.add_argument("--variants", nargs="*", help="only the variants whose names contain one of these words")
    parser.add_argument("--torch", action="store_true", help="also torch float and torch int8 (torch.ao) rows")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "int8_layers-cpu.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        sets = _prepare(args.data, work / "prep", args.quick, args.split)
        source = export_onnx(args.model, work / "float")
        step = export_onnx(args.streaming_model, work / "streaming-float") / "streaming.onnx"
        rows = [{"variant": "float (no int8)", "mb": (source / "model.onnx").stat().st_size / 1e6,
                 **wer(source, sets), **step_ms(step)}]  # fmt: skip
        step_variants = variants(step)
        for name, options in variants(source / "model.onnx").items():
            if args.variants and not any(v in name for v in args.variants):
                continue
            folder = work / "variant"
            shutil.rmtree(folder, ignore_errors=True)
            shutil.copytree(source, folder)
            (folder / "checksums.sha256").unlink()
            quantize_graph(source / "model.onnx", folder / "model.onnx", **options)
            write_manifest(folder)
            quantize_graph(step, work / "step.onnx", **step_variants[name])
            rows.append({"variant": name, "mb": (folder / "model.onnx").stat().st_size / 1e6, **wer(folder, sets),
                         **step_ms(work / "step.onnx")})  # fmt: skip
            print(rows[-1], flush=True)
        for name, int8 in (("torch float", False), ("torch int8 (torch.ao: GRU and output layer)", True)):
            if args.torch or (args.variants and any(v in name for v in args.variants)):
                rows.append({"variant": name, **torch_wer(args.model, sets, int8)})
                print(rows[-1], flush=True)
    table = Table(title=f"int8 export of {args.model}: which layers stay float (WER, beam + LM, one thread)")
    for col in ("variant", "model.onnx MB", f"AN4 {args.split} mu-law", f"FSDD {args.split} numbers",
                *(f"step ms, {n} stream{'s' * (n > 1)}" for n in STEP_STREAMS)):  # fmt: skip
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(r["variant"], f"{r['mb']:.2f}" if "mb" in r else "-", f"{r['an4']:.2%}",
                      f"{r['fsdd_numbers']:.2%}", *(f"{r[f'step_ms_{n}']:.2f}" if f"step_ms_{n}" in r else "-"
                                                    for n in STEP_STREAMS))  # fmt: skip
    Console(width=140).print(table)
    report = {"model": args.model, "split": args.split, "rows": rows, "environment": environment(),
              "command": " ".join(sys.argv)}  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
