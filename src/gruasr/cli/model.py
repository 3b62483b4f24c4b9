"""`gruasr model bundle` (a training run -> a model folder to ship) and `gruasr model verify` (check a folder)."""

from __future__ import annotations

import argparse
import json


def _cmd_bundle(args: argparse.Namespace) -> int:
    from gruasr.tuning import bundle_run

    out = bundle_run(args.run, args.out, args.config, args.order)
    meta = json.loads((out / "model.json").read_text(encoding="utf-8"))
    size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    print(f"bundled {args.run} -> {out} ({size:.1f} MB); decoding chosen on dev: {json.dumps(meta['decoding'])}")
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    from gruasr.bundle import verify

    facts = verify(args.folder)
    if args.json:
        print(json.dumps(facts))
    else:
        checksum = facts["weights_sha256"] or "none recorded"
        print(f"{facts['path']}: ok ({facts['parameters']:,} parameters, {facts['sample_rate']} Hz, "
              f"{facts['tokens']} tokens, checksum {checksum}, LM {facts['lm'] or 'none'})")  # fmt: skip
    return 0


def add_model_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `model` (bundle, verify) on the top-level subparsers."""
    model = sub.add_parser("model", help="model folders: bundle a training run, verify a folder")
    model_sub = model.add_subparsers(dest="model_command", metavar="SUBCOMMAND", required=True)
    bundle = model_sub.add_parser(
        "bundle",
        help="RUN/model -> a model folder: float16 weights + checksum, LM and lexicon of the training "
        "transcripts, decoding tuned on the run's dev sets, RECIPE.md",
    )
    bundle.add_argument("run", metavar="RUN", help="a finished training run folder (gruasr train --out RUN)")
    bundle.add_argument("--out", required=True, help="the model folder to write (replaced atomically)")
    bundle.add_argument("--config", help="the recipe the run was trained with (default configs/<out name>.toml)")
    bundle.add_argument("--order", type=int, default=3, help="order of the word n-gram LM (default 3)")
    bundle.set_defaults(func=_cmd_bundle)
    verify = model_sub.add_parser("verify", help="check a model folder: sizes, shapes, weights checksum, LM")
    verify.add_argument("folder", metavar="DIR")
    verify.add_argument("--json", action="store_true", help="the summary as one JSON object")
    verify.set_defaults(func=_cmd_verify)
