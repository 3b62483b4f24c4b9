"""The study's report: report.json (every number), report.md (tables and the conclusions the numbers support),
and PNG plots, from the runs' measure.json files. Missing runs are listed, never silently averaged over."""

from __future__ import annotations

import json
import math
import platform
import sys
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from gruasr.environment import environment
from gruasr.study.config import StudyConfig
from gruasr.study.plots import draw_plots
from gruasr.study.runs import Run, run_dir

#: a difference between two units is called real when it exceeds this many pooled standard errors
SIGNIFICANCE = 2.0
#: a model above this WER has not learned: its robustness numbers say nothing (it cannot get much worse)
FAILED = 0.9


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    if not values:
        return math.nan, math.nan
    arr = np.asarray(values, dtype=np.float64)
    return float(arr.mean()), float(arr.std(ddof=1)) if arr.size > 1 else 0.0


def _stats(values: Sequence[float]) -> dict[str, Any]:
    mean, std = _mean_std(values)
    return {"mean": mean, "std": std, "n": len(values), "values": list(values)}


def _curve(rows: list[dict[str, Any]], key: str) -> dict[str, dict[str, Any]]:
    """Mean WER per level of a sweep (`snr`, `packet_loss`, `length`) over the rows that have it."""
    levels: dict[str, list[float]] = {}
    for row in rows:
        for level, score in row.get(key, {}).items():
            levels.setdefault(level, []).append(score["wer"])
    return {level: _stats(v) for level, v in sorted(levels.items(), key=lambda kv: float(kv[0]))}


def aggregate(measures: list[dict[str, Any]], study: StudyConfig) -> dict[str, Any]:
    """Per (unit, direction): means and spreads over seeds of every measured number."""
    groups: dict[str, Any] = {}
    for unit in study.units:
        for direction in study.directions:
            rows = [m for m in measures if m["unit"] == unit and m["direction"] == direction]
            if not rows:
                continue
            training = [r["training"] for r in rows]
            target = study.measure.target_dev_wer
            firsts = [next((i + 1 for i, w in enumerate(t["dev_wer"]) if w <= target), None) for t in training]
            reached = [float(e) for e in firsts if e is not None]
            group: dict[str, Any] = {
                "unit": unit,
                "direction": direction,
                "seeds": [r["seed"] for r in rows],
                "hidden_size": rows[0]["hidden_size"],
                "parameters": rows[0]["parameters"],
                "backend": rows[0]["backend"],
                "wer_an4": _stats([r["test"]["an4"]["wer"] for r in rows]),
                "wer_numbers": _stats([r["test"]["numbers"]["wer"] for r in rows]),
                "best_dev_wer": _stats([t["best_dev_wer"] for t in training]),
                "epoch_seconds": _stats([t["epoch_seconds"] for t in training]),
                "train_seconds": _stats([t["train_seconds"] for t in training]),
                "epochs_to_target": _stats(reached),
                "seconds_to_target": _stats(
                    [t["seconds_to_target"] for t in training if t["seconds_to_target"] is not None]
                ),
                "reached_target": f"{len(reached)}/{len(rows)}",
                "rtf_one_thread": _stats([r["rtf_one_thread"] for r in rows]),
                "step_memory_mb": rows[0]["memory"]["step_mb"],
                "train_step_s": next((r["train_step_s"] for r in rows if "train_step_s" in r), None),
                "peak_rss_growth_mb": next(
                    (r["memory"]["peak_rss_growth_mb"] for r in rows if "peak_rss_growth_mb" in r["memory"]), None
                ),
                "activation_memory_mb": rows[0]["memory"]["activations_mb"],
                "skipped_steps": sum(t["skipped_steps"] for t in training),
                # runs that did not learn: best dev WER above FAILED, or a non-finite loss
                "failed": sum(bool(t["diverged"]) or t["best_dev_wer"] > FAILED for t in training),
                "grad_norm_max": max(max(filter(None, t["grad_norm_max"]), default=0.0) for t in training),
                "dev_wer_curves": [t["dev_wer"] for t in training],
                "grad_norm_curves": [t["grad_norm_median"] for t in training],
                "snr": _curve(rows, "snr"),
                "packet_loss": _curve(rows, "packet_loss"),
                "length": _curve(rows, "length"),
                "length_seconds": {
                    level: float(np.mean([r["length"][level]["seconds"] for r in rows if "length" in r]))
                    for level in _curve(rows, "length")
                },
            }
            sweep_rows = [r for r in rows if "snr" in r]
            group["clean_sweep"] = _stats([r["test"]["an4"]["wer"] for r in sweep_rows])
            streams = [r["streaming"] for r in rows if "streaming" in r]
            if streams:
                group["streaming"] = {
                    "chunk_ms": streams[0]["chunk_ms"],
                    "compute_ms_median": float(np.mean([s["compute_ms_median"] for s in streams])),
                    "latency_ms": float(np.mean([s["latency_ms"] for s in streams])),
                    "max_abs_diff_offline": max(s["max_abs_diff_offline"] for s in streams),
                }
            groups[f"{unit}-{direction}"] = group
    return groups


def _pct(stats: dict[str, Any]) -> str:
    if stats["n"] == 0 or math.isnan(stats["mean"]):
        return "-"
    if stats["n"] == 1:
        return f"{100 * stats['mean']:.1f}"
    return f"{100 * stats['mean']:.1f} ± {100 * stats['std']:.1f}"


def _table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def _differs(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two seed means differ by more than SIGNIFICANCE pooled standard errors."""
    if a["n"] < 2 or b["n"] < 2:
        return False
    se = math.sqrt(a["std"] ** 2 / a["n"] + b["std"] ** 2 / b["n"])
    return abs(a["mean"] - b["mean"]) > SIGNIFICANCE * max(se, 1e-12)


def _ranked(groups: dict[str, Any], direction: str, key: str) -> list[dict[str, Any]]:
    found = [g for g in groups.values() if g["direction"] == direction and not math.isnan(g[key]["mean"])]
    return sorted(found, key=lambda g: g[key]["mean"])


def _kept(clean: float, degraded: float) -> float:
    """The share of the clean word accuracy (1 - WER) that is left: 1 = nothing lost, 0 = nothing recognized.
    Absolute WER points would favour weak models, which have little left to lose."""
    return max(0.0, 1.0 - degraded) / max(1e-9, 1.0 - clean)


def _kept_over(group: dict[str, Any], sweep: str) -> float | None:
    """Mean share of clean accuracy kept over a sweep's levels (noise, packet loss): one number per unit."""
    if not group[sweep] or group["clean_sweep"]["n"] == 0:
        return None
    clean = group["clean_sweep"]["mean"]
    return float(np.mean([_kept(clean, v["mean"]) for v in group[sweep].values()]))


def _verdict(losses: dict[str, float], verb: str, margin: float = 0.01) -> str:
    """How GRU's loss compares with the other units' (shares, or WER points): the claim holds when GRU loses
    least, or within `margin` of the least."""
    if "gru" not in losses:
        return "cannot be judged (no GRU result)"
    best = min(losses, key=lambda u: losses[u])
    gap = losses["gru"] - losses[best]
    if best == "gru":
        return "holds: GRU " + verb + " least"
    if gap <= margin:
        return f"holds within {100 * margin:g} point: {best} {verb} least, GRU {100 * gap:.1f} points more"
    return f"does not hold: {best} {verb} least, GRU {100 * gap:.1f} points more"


def conclusions(groups: dict[str, Any], study: StudyConfig) -> list[str]:
    """Statements the numbers support (and the brief's claims they do not), computed, not written by hand."""
    out: list[str] = []
    names = {"bi": "bidirectional", "uni": "unidirectional"}
    weak = [k for k, g in groups.items() if g["wer_an4"]["mean"] > FAILED]
    if weak:
        out.append(
            f"**Caution**: {', '.join(weak)} stay above {100 * FAILED:.0f}% WER on average: at this budget they have "
            "not learned, so they are left out of the robustness and length verdicts below (a model that recognizes "
            "nothing cannot get worse). The tiny models of a --quick study always are: it only exercises the path."
        )
    for direction in study.directions:
        ranked = _ranked(groups, direction, "wer_an4")
        if not ranked:
            continue
        best, rest = ranked[0], ranked[1:]
        clear = [g["unit"] for g in rest if _differs(best["wer_an4"], g["wer_an4"])]
        unclear = [g["unit"] for g in rest if g["unit"] not in clear]
        line = (
            f"**Accuracy, {names[direction]}**: {best['unit']} has the lowest AN4 WER ({_pct(best['wer_an4'])}%, "
            f"order: {' < '.join(g['unit'] for g in ranked)})."
        )
        if clear:
            line += f" Its lead over {', '.join(clear)} exceeds {SIGNIFICANCE:g} standard errors of the seed spread"
            line += f"; over {', '.join(unclear)} it does not." if unclear else "."
        elif rest:
            line += f" The seeds do not separate it from {', '.join(unclear)}: no clear winner."
        gru = groups.get(f"gru-{direction}")
        if gru is not None and best["unit"] != "gru":
            line += f" GRU: {_pct(gru['wer_an4'])}%."
        out.append(line)
        fast = sorted(
            (g for g in groups.values() if g["direction"] == direction),
            key=lambda g: g["train_step_s"] or g["epoch_seconds"]["mean"],
        )
        out.append(
            f"**Training speed, {names[direction]}** (seconds per training step on one thread, "
            f"{study.measure.memory_batch} utterances of {study.measure.memory_seconds:g} s, each unit's backend): "
            + ", ".join(f"{g['unit']} {g['train_step_s'] or math.nan:.2f}" for g in fast)
            + ". **Inference** (real-time factor, one thread): "
            + ", ".join(
                f"{g['unit']} {g['rtf_one_thread']['mean']:.4f}"
                for g in sorted(fast, key=lambda g: g["rtf_one_thread"]["mean"])
            )
            + "."
        )
    for sweep, what, levels in (
        ("snr", "noise", ", ".join(f"{v:g}" for v in study.measure.snr_db) + " dB SNR"),
        ("packet_loss", "missing data", ", ".join(f"{100 * v:g}" for v in study.measure.packet_loss) + "% lost"),
    ):
        for direction in study.directions:
            kept = {
                g["unit"]: k
                for g in groups.values()
                if g["direction"] == direction
                and g["clean_sweep"]["mean"] <= FAILED
                and (k := _kept_over(g, sweep)) is not None
            }
            if not kept:
                continue
            order = sorted(kept, key=lambda u: -kept[u])
            text = ", ".join(f"{u} {100 * kept[u]:.0f}%" for u in order)
            out.append(
                f"**Robustness to {what}, {names[direction]}** (share of the clean word accuracy kept, mean over "
                f"{levels}): {text}. The brief's claim that GRUs stay stable under {what} "
                f"{_verdict({u: 1 - k for u, k in kept.items()}, 'loses')}."
            )
    for direction in study.directions:
        ends = {}
        for g in groups.values():
            if g["direction"] == direction and len(g["length"]) >= 2 and g["clean_sweep"]["mean"] <= FAILED:
                points = list(g["length"].values())
                ends[g["unit"]] = (points[0]["mean"], points[-1]["mean"])
        if not ends:
            continue
        seconds = [g["length_seconds"] for g in groups.values() if g["direction"] == direction and g["unit"] in ends]
        span = f"{min(s[k] for s in seconds for k in s):.0f} -> {max(s[k] for s in seconds for k in s):.0f} s"
        kept_long = {u: _kept(a, b) for u, (a, b) in ends.items()}
        text = ", ".join(
            f"{u} {100 * ends[u][0]:.1f} -> {100 * ends[u][1]:.1f} ({100 * kept_long[u]:.0f}% kept)"
            for u in sorted(kept_long, key=lambda u: -kept_long[u])
        )
        out.append(
            f"**Long inputs, {names[direction]}** (WER % on the shortest -> the longest joined inputs, {span}, "
            f"decoded in one pass; share of the short-input word accuracy kept): {text}. The claim that GRUs "
            f"handle long utterances well {_verdict({u: 1 - k for u, k in kept_long.items()}, 'loses')}."
        )
    for direction in study.directions:
        spread = sorted((g for g in groups.values() if g["direction"] == direction), key=lambda g: g["wer_an4"]["std"])
        if not spread or spread[0]["wer_an4"]["n"] < 2:
            continue
        failed = [f"{g['unit']} ({g['failed']} of {g['wer_an4']['n']})" for g in spread if g["failed"]]
        skipped = [f"{g['unit']} ({g['skipped_steps']})" for g in spread if g["skipped_steps"]]
        out.append(
            f"**Training stability, {names[direction]}** (standard deviation of AN4 WER over seeds, points): "
            + ", ".join(f"{g['unit']} {100 * g['wer_an4']['std']:.1f}" for g in spread)
            + f". Runs that did not learn (best dev WER above {100 * FAILED:.0f}%, or a non-finite loss): "
            + f"{', '.join(failed) or 'none'}"
            + f"; steps skipped for a non-finite gradient: {', '.join(skipped) or 'none'}."
        )
    return out


def render_markdown(report: dict[str, Any], plots: Sequence[Path]) -> str:
    groups, study = report["groups"], report["study"]
    lines = [
        "# GRU against LSTM, plain RNN, Li-GRU and minGRU: the study",
        "",
        f"Made by `{report['command']}` on {report['environment']['device_name']} "
        f"({report['environment']['threads']} threads, torch {report['environment']['torch']}), "
        f"{report['finished']}; {report['runs_measured']} of {report['runs_planned']} runs measured.",
        "",
        f"Every model has {study['parameters']:,} parameters (±{100 * study['tolerance']:.0f}%, matched by the hidden "
        f"size), the same recipe (`{study['recipe']}` with {', '.join(f'`{o}`' for o in study['overrides'])}), and "
        f"seeds {', '.join(map(str, study['seeds']))}. Test audio goes through the 8 kHz G.711 mu-law line; "
        "decoding is greedy (no LM). Numbers are mean ± standard deviation over seeds.",
    ]
    if report["missing"]:
        lines += ["", f"**Missing runs** (not trained or not measured): {', '.join(report['missing'])}."]
    lines += ["", "## Conclusions", ""] + [f"- {c}" for c in report["conclusions"]]
    lines += ["", "## Accuracy and cost", ""]
    target = f"{100 * study['measure']['target_dev_wer']:.0f}%"
    header = ["unit", "dir", "H", "params", "AN4 WER %", "numbers WER %", "dev WER %", "train step s (1 thread)",
              "s/epoch (as run)", f"epochs to dev WER {target}", "step MB", "peak RSS +MB", "RTF 1 thread",
              "stream latency ms"]  # fmt: skip

    def row(g: dict[str, Any]) -> list[str]:
        epochs = g["epochs_to_target"]
        return [
            g["unit"], g["direction"], str(g["hidden_size"]), f"{g['parameters']:,}", _pct(g["wer_an4"]),
            _pct(g["wer_numbers"]), _pct(g["best_dev_wer"]),
            "-" if g["train_step_s"] is None else f"{g['train_step_s']:.2f}",
            f"{g['epoch_seconds']['mean']:.0f}",
            "-" if not epochs["n"] else f"{epochs['mean']:.1f} ({g['reached_target']})",
            f"{g['step_memory_mb']:.0f}",
            "-" if g["peak_rss_growth_mb"] is None else f"{g['peak_rss_growth_mb']:.0f}",
            f"{g['rtf_one_thread']['mean']:.4f}",
            f"{g['streaming']['latency_ms']:.0f}" if "streaming" in g else "-",
        ]  # fmt: skip

    lines += _table(header, (row(g) for g in groups.values()))
    for key, title, fmt in (
        ("snr", "WER % vs SNR (AN4 test, white noise before the line)", lambda k: f"{float(k):g} dB"),
        ("packet_loss", "WER % vs packet loss (AN4 test, lost 20 ms frames)", lambda k: f"{100 * float(k):g}%"),
        ("length", "WER % vs input length (joined AN4 test utterances, one pass)", lambda k: f"≥{float(k):g} s"),
    ):
        levels = sorted({lvl for g in groups.values() for lvl in g[key]}, key=float, reverse=key == "snr")
        if not levels:
            continue
        sweep_seeds = study["measure"]["sweep_seeds"] or study["seeds"]
        lines += ["", f"## {title}", "", f"Models of seed{'s' if len(sweep_seeds) > 1 else ''} "
                  f"{', '.join(map(str, sweep_seeds))}; the clean column is the same models' AN4 WER.", ""]  # fmt: skip
        clean = [] if key == "length" else ["clean"]
        lines += _table(
            ["unit", "dir", *clean, *(fmt(v) for v in levels)],
            (
                [g["unit"], g["direction"]]
                + ([] if key == "length" else [_pct(g["clean_sweep"])])
                + [_pct(g[key][v]) if v in g[key] else "-" for v in levels]
                for g in groups.values()
            ),
        )
    lines += ["", "## Training stability", ""]
    lines += _table(
        ["unit", "dir", "AN4 WER sd (points)", "runs that did not learn", "skipped steps", "largest gradient norm"],
        (
            [
                g["unit"],
                g["direction"],
                f"{100 * g['wer_an4']['std']:.2f}",
                str(g["failed"]),
                str(g["skipped_steps"]),
                f"{g['grad_norm_max']:.1f}",
            ]  # fmt: skip
            for g in groups.values()
        ),
    )
    streaming = [g for g in groups.values() if "streaming" in g]
    if streaming:
        lines += ["", "## Streaming (unidirectional models)", ""]
        lines += _table(
            [
                "unit",
                "chunk ms",
                "compute ms per chunk (median)",
                "latency ms (chunk + p95 compute)",
                "largest difference from offline",
            ],  # fmt: skip
            (
                [
                    g["unit"],
                    str(g["streaming"]["chunk_ms"]),
                    f"{g['streaming']['compute_ms_median']:.2f}",
                    f"{g['streaming']['latency_ms']:.0f}",
                    f"{g['streaming']['max_abs_diff_offline']:.1e}",
                ]  # fmt: skip
                for g in streaming
            ),
        )
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    lines += [
        "",
        "## How it was measured",
        "",
        "See `gruasr.study.measure` for each quantity. Training speed is compared by the training step time, "
        "measured unit after unit on one thread on the same batch; seconds per epoch (with the dev pass) are as the "
        "runs ran, two processes sharing the machine with whatever else ran, so they are only indicative. "
        "Training-step memory (step MB) counts parameters, gradients, Adam's moments and the activations autograd "
        f"saves for the backward pass on {study['measure']['memory_batch']} utterances of "
        f"{study['measure']['memory_seconds']:g} s; peak RSS +MB is measured: the growth of a fresh process's peak "
        "resident memory over two such training steps. A difference is called real when it exceeds "
        f"{SIGNIFICANCE:g} pooled standard errors over seeds.",
        "",
    ]
    return "\n".join(lines)


def report_header(
    name: str, quick: bool, study: dict[str, Any], planned: int, measured: int, missing: list[str]
) -> dict[str, Any]:
    """What every study report starts with: the command, when, where, the study's recipe, runs done and not."""
    command = " ".join(["gruasr", *sys.argv[1:]]) if sys.argv and sys.argv[0].endswith("gruasr") else f"gruasr {name}"
    return {
        "command": command,
        "finished": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "environment": {**environment(), "platform": platform.platform()},
        "quick": quick,
        "study": study,
        "runs_planned": planned,
        "runs_measured": measured,
        "missing": missing,
    }


def write_report(runs: list[Run], study: StudyConfig, out: Path, quick: bool = False) -> list[Path]:
    """Aggregate the measured runs into out/report.json, out/report.md and out/*.png; returns the paths."""
    measures, missing = [], []
    for run in runs:
        path = run_dir(out, run) / "measure.json"
        if path.is_file():
            measures.append(json.loads(path.read_text()))
        else:
            missing.append(run.name)
    groups = aggregate(measures, study)
    from dataclasses import asdict

    report = {
        **report_header("compare", quick, asdict(study), len(runs), len(measures), missing),
        "groups": groups,
        "conclusions": conclusions(groups, study),
        "runs": measures,
    }
    plots = draw_plots(groups, study, out) if groups else []
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "report.md").write_text(render_markdown(report, plots))
    return [out / "report.md", out / "report.json", *plots]
