"""`gruasr compare`: the performance study of the recurrent units (training, measurements, report)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console


def parse_shard(text: str) -> tuple[int, int]:
    try:
        k, n = (int(v) for v in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard takes K/N, e.g. 0/2, got {text!r}") from None
    if not 0 <= k < n:
        raise argparse.ArgumentTypeError(f"--shard K/N needs 0 <= K < N, got {text!r}")
    return k, n


def open_study(args: argparse.Namespace, load: Callable[..., Any]) -> tuple[Console, Any, Path, Path]:
    """What `compare` and `scale` start with: torch's threads set, the console, the study's recipe (`load(path,
    quick=...)`), the corpora folder and the study folder (made)."""
    import torch
    from rich.console import Console

    from gruasr.errors import ConfigError
    from gruasr.evaluation.suite import find_data

    if args.threads:
        torch.set_num_threads(args.threads)
    study = load(args.config, quick=args.quick)
    data = find_data(args.data)
    if data is None:
        raise ConfigError("corpora not found: give --data DIR (holding an4/ and fsdd/) or set GRUASR_DATA")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    return Console(stderr=True), study, data, out


def run_study(
    args: argparse.Namespace, console: Console, runs: list[Any], out: Path,
    measure: Callable[[tuple[int, int]], None], report: Callable[[], list[Path]],
) -> int:  # fmt: skip
    """Train this shard's runs (all without --shard), measure them, and write the report unless sharded."""
    from gruasr.study.runs import train_runs

    shard = args.shard or (0, 1)
    train_runs(runs, out, console, shard)
    measure(shard)
    if args.shard is not None:
        console.print(f"shard {shard[0]}/{shard[1]} trained and measured; run without --shard for the report")
        return 0
    for path in report():
        print(path)
    return 0


def add_study_arguments(parser: argparse.ArgumentParser, config: str, out: str) -> None:
    """The options `compare` and `scale` share."""
    parser.add_argument("--config", default=config, help="study recipe (default: %(default)s)")
    parser.add_argument("--out", required=True, help=out)
    parser.add_argument("--quick", action="store_true", help="tiny models and data: the whole path in minutes")
    parser.add_argument("--data", help="corpora folder (default: $GRUASR_DATA or ../shared/data)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's choice)")
    parser.add_argument(
        "--shard", type=parse_shard, metavar="K/N",
        help="only train and measure runs K, K+N, ... (parallel processes share a study), without the report",
    )  # fmt: skip


def _cmd_compare(args: argparse.Namespace) -> int:
    from gruasr.study.config import load_study
    from gruasr.study.runs import is_done, plan_runs, prepare_corpora

    console, study, data, out = open_study(args, load_study)
    prepare_corpora(data, out, study.numbers_train, study.numbers_dev, study.measure.numbers)
    runs = plan_runs(study, out)
    done = sum(is_done(out, r) for r in runs)
    console.print(
        f"study: {len(runs)} runs ({done} done) of {', '.join(study.units)} x {', '.join(study.directions)}"
        f" x seeds {', '.join(map(str, study.seeds))}, {study.parameters:,} parameters each; in {out}"
    )
    from gruasr.study.measure import measure_runs
    from gruasr.study.report import write_report

    return run_study(
        args, console, runs, out,
        lambda shard: measure_runs(runs, study, out, console, shard),
        lambda: write_report(runs, study, out, quick=args.quick),
    )  # fmt: skip


def add_compare_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    compare = sub.add_parser("compare", help="train and compare every recurrent unit on equal terms, write a report")
    add_study_arguments(compare, "configs/compare.toml", "study folder: runs, measurements, report.md/json, plots")
    compare.set_defaults(func=_cmd_compare)
