"""`gruasr train` and `gruasr lm build`."""

from __future__ import annotations

import argparse


def _cmd_train(args: argparse.Namespace) -> int:
    from gruasr.training.config import load_config
    from gruasr.training.loop import train

    config = load_config(args.config, args.set or [])
    summary = train(config, args.out, resume=args.resume)
    print(
        f"dev WER {100 * summary['selection']['dev_wer']:.2f}% ({summary['selection']['chosen']}); "
        f"model: {args.out}/model"
    )
    return 0


def _cmd_lm_build(args: argparse.Namespace) -> int:
    from gruasr.decoding.lm import build_arpa

    path = build_arpa(args.text, args.order, args.out, prune=args.prune)
    print(f"wrote {path}")
    return 0


def add_train_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `train` and `lm` on the top-level subparsers."""
    train = sub.add_parser("train", help="train a CTC recognizer from a TOML recipe")
    train.add_argument("--config", required=True, help="recipe, e.g. configs/telephone.toml")
    train.add_argument("--out", required=True, help="run folder (checkpoints, logs, the final model)")
    train.add_argument("--set", action="append", metavar="KEY=VALUE", help="override, e.g. train.epochs=10")
    train.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    train.set_defaults(func=_cmd_train)

    lm = sub.add_parser("lm", help="word n-gram language models")
    lm_sub = lm.add_subparsers(dest="lm_command", metavar="SUBCOMMAND", required=True)
    build = lm_sub.add_parser("build", help="estimate a modified Kneser-Ney n-gram LM from text, write ARPA")
    build.add_argument("--text", required=True, help="one sentence per line (training transcripts only)")
    build.add_argument("--order", type=int, default=3)
    build.add_argument("--out", required=True, help="output .arpa file")
    build.add_argument(
        "--prune", type=int, nargs="+", metavar="N",
        help="count cutoffs per order from unigrams, as KenLM's --prune (e.g. 0 1 1: drop bigrams and trigrams "
        "seen once); the first must be 0, the last repeats",
    )  # fmt: skip
    build.set_defaults(func=_cmd_lm_build)
