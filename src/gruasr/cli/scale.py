"""`gruasr scale`: the scaling study (WER against model size and data size, fitted power laws, report)."""

from __future__ import annotations

import argparse

from gruasr.cli.compare import add_study_arguments, open_study, run_study


def _cmd_scale(args: argparse.Namespace) -> int:
    from gruasr.study.runs import is_done, prepare_corpora
    from gruasr.study.scale import load_scale, measure_scale, plan_scale, write_scale_report

    console, study, data, out = open_study(args, load_scale)
    prepare_corpora(data, out, study.numbers_train, study.numbers_dev, study.numbers_test)
    runs = plan_scale(study, out)
    done = sum(is_done(out, r) for r in runs)
    console.print(
        f"scaling study: {len(runs)} runs ({done} done): sizes {', '.join(study.sizes)} x data "
        f"{', '.join(f'{100 * f:g}%' for f in study.fractions)} x seeds {', '.join(map(str, study.seeds))}; in {out}"
    )

    def measure(shard: tuple[int, int]) -> None:
        measure_scale([r for i, r in enumerate(runs) if i % shard[1] == shard[0]], study, out, console)

    return run_study(args, console, runs, out, measure, lambda: write_scale_report(runs, study, out, args.quick))


def add_scale_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    scale = sub.add_parser(
        "scale", help="train a grid of model sizes x data fractions, fit WER = a x^-b along both, write a report"
    )
    add_study_arguments(scale, "configs/scale.toml", "study folder: data, runs, report.md/json, scaling.png")
    scale.set_defaults(func=_cmd_scale)
