"""The scaling study (`gruasr scale --config configs/scale.toml --out DIR`): WER against model size and against
training-data size on a grid of (size, data fraction, seed) runs, a power law fitted along each axis with its
confidence band, conclusions computed from the numbers, a plot, all resumable like `gruasr compare`.

    recipe = "configs/telephone.toml"     # the training recipe every run shares
    overrides = ["train.epochs=12", ...]  # `--set` overrides for every run
    fractions = [0.25, 0.5, 1.0]          # data.fraction of each run (nested subsets of the training manifests)
    seeds = [1]
    [sizes]                               # name = a preset file (its [model] table) or a list of overrides
    xs = "configs/size-xs.toml"
    [quick]                               # what --quick changes: same keys as the top level

Every run is measured greedily (acoustic models compared, not LMs) on AN4 test and FSDD test phone numbers, both
through the same simulated 300-3400 Hz G.711 mu-law line with the same draws per utterance (study.measure.Scorer).
The law is WER = a * x^(-b) for x = parameters (one fit per data fraction) and x = hours of training audio (one
fit per size), fitted by least squares on log WER against log x: b's 95% interval is b +- t(0.975, n-2) * se(b),
and the plotted band is the fit's 95% confidence band for the mean. With three points per fit (one degree of
freedom) that interval is wide, and the report says so.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from gruasr.audio.telephony import TelephoneChannel
from gruasr.bundle import load_bundle
from gruasr.data.tokens import TokenTable
from gruasr.errors import ConfigError
from gruasr.study.config import read_study_tree
from gruasr.study.match import count_parameters
from gruasr.study.measure import Scorer, load_items
from gruasr.study.report import report_header
from gruasr.study.runs import run_dir
from gruasr.training.config import TrainConfig, build, load_config
from gruasr.training.data import read_utterances

SCALE_VERSION = 1
SETS = {"an4": "AN4 test", "numbers": "FSDD test phone numbers"}


@dataclass(frozen=True)
class ScaleConfig:
    recipe: str = "configs/telephone.toml"
    overrides: tuple[str, ...] = ()
    #: size name -> a preset recipe file (its [model] table is used) or a list of `--set` overrides
    sizes: dict[str, Any] = field(default_factory=dict)
    fractions: tuple[float, ...] = (0.25, 0.5, 1.0)
    seeds: tuple[int, ...] = (1,)
    #: FSDD phone numbers built for training, dev and test (as `gruasr compare` prepares them)
    numbers_train: int = 800
    numbers_dev: int = 200
    numbers_test: int = 200
    #: at most this many test utterances per set (0: all)
    limit: int = 0

    def __post_init__(self) -> None:
        if len(self.sizes) < 2:
            raise ConfigError(f"sizes must name at least two model sizes, got {list(self.sizes)}")
        for name, value in self.sizes.items():
            if not isinstance(value, str | list) or (
                isinstance(value, list) and not all(isinstance(v, str) for v in value)
            ):
                raise ConfigError(f"sizes.{name} must be a preset file or a list of section.key=value overrides")
        if len(self.fractions) < 2 or len(set(self.fractions)) != len(self.fractions):
            raise ConfigError(f"fractions must be at least two distinct values, got {list(self.fractions)}")
        if any(not 0 < f <= 1 for f in self.fractions):
            raise ConfigError(f"fractions must be in (0, 1], got {list(self.fractions)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be distinct and at least one, got {list(self.seeds)}")


def load_scale(path: str | Path, quick: bool = False) -> ScaleConfig:
    """Read a scale TOML; with `quick`, its [quick] table replaces the keys it names (overrides appended)."""
    return build(ScaleConfig, read_study_tree(path, quick, "scale"), str(path))


@dataclass(frozen=True)
class ScaleRun:
    size: str
    fraction: float
    seed: int
    config: TrainConfig

    @property
    def name(self) -> str:
        return f"{self.size}-d{round(100 * self.fraction):03d}-s{self.seed}"

    @property
    def parameters(self) -> int:
        return count_parameters(self.config.model)

    def describe(self) -> str:
        model = self.config.model
        return (
            f"size {self.size} ({model.num_layers}x{model.hidden_size}, {self.parameters:,} parameters), "
            f"{100 * self.fraction:g}% of the training data, seed {self.seed}"
        )


def plan_scale(study: ScaleConfig, out: Path) -> list[ScaleRun]:
    """Every (size, fraction, seed) run, seed-major and the full-data runs first within a seed (a study cut
    short still has the model axis). Manifest paths of the recipe are taken relative to `out`."""
    base = load_config(study.recipe, [*study.overrides, "augment.seed=0"])
    data = dataclasses.replace(
        base.data, train=tuple(str(out / p) for p in base.data.train), dev=tuple(str(out / p) for p in base.data.dev)
    )
    models = {}
    for name, spec in study.sizes.items():
        if isinstance(spec, str):  # a preset: its model table, on the study's features
            preset = load_config(spec).model
            models[name] = dataclasses.replace(preset, input_dim=base.model.input_dim)
        else:
            models[name] = load_config(study.recipe, [*study.overrides, *spec]).model
    fractions = sorted(study.fractions, reverse=True)
    return [
        ScaleRun(size, fraction, seed, dataclasses.replace(
            base, seed=seed, data=dataclasses.replace(data, fraction=fraction), model=models[size]
        ))
        for seed in study.seeds
        for fraction in fractions
        for size in study.sizes
    ]  # fmt: skip


def training_hours(config: TrainConfig) -> float:
    """Hours of distinct training audio a run sees (its fraction of the manifests, before repeats and
    augmentation copies)."""
    data = config.data
    sets = read_utterances(data.train, TokenTable(), data.max_duration, data.limit, data.fraction)
    return sum(u.duration or 0.0 for s in sets for u in s) / 3600


def measure_scale_run(run: ScaleRun, out: Path, tests: dict[str, Any]) -> dict[str, Any]:
    folder = run_dir(out, run)
    bundle = load_bundle(folder / "model")
    scorer = Scorer(bundle)
    line = TelephoneChannel(codec="ulaw", output_rate=scorer.rate)
    summary = json.loads((folder / "summary.json").read_text())
    return {
        "version": SCALE_VERSION,
        "run": run.name,
        "size": run.size,
        "fraction": run.fraction,
        "seed": run.seed,
        "parameters": bundle.model.num_parameters(),
        "hours": training_hours(run.config),
        "epochs": len(summary["history"]),
        "train_minutes": sum(h["seconds"] for h in summary["history"]) / 60,
        "dev_wer": summary["selection"]["dev_wer"],
        "test": {key: scorer.score(items, line) for key, items in tests.items()},
    }


def measure_scale(runs: Sequence[ScaleRun], study: ScaleConfig, out: Path, console: Console) -> list[dict[str, Any]]:
    """Measure every trained run that has no current measure.json; returns the measures of all trained runs."""
    tests: dict[str, Any] | None = None
    measures = []
    for run in runs:
        folder = run_dir(out, run)
        if not (folder / "summary.json").is_file():
            continue
        path = folder / "measure.json"
        result = json.loads(path.read_text()) if path.is_file() else {}
        if result.get("version") != SCALE_VERSION:
            if tests is None:
                rate = run.config.sample_rate
                tests = {
                    "an4": load_items(out / "data" / "an4" / "test.jsonl", rate, study.limit),
                    "numbers": load_items(out / "data" / "fsdd" / "test_numbers.jsonl", rate, study.limit),
                }
            console.print(f"measuring {run.name}")
            result = measure_scale_run(run, out, tests)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(result, indent=1) + "\n")
            tmp.replace(path)
        measures.append(result)
    return measures


# -- the law ------------------------------------------------------------------------------------------------


def fit_power_law(x: Sequence[float], y: Sequence[float]) -> dict[str, Any]:
    """WER = a * x^(-b) by least squares on (log x, log y). Returns a, b, b's 95% interval (None with two
    points: an exact fit has no error estimate), R^2, n, and what band() needs (the fit's 95% confidence band
    for the mean of log y). Zero WERs are floored at 1e-4 (log 0 is undefined)."""
    lx = np.log(np.asarray(x, dtype=np.float64))
    ly = np.log(np.maximum(np.asarray(y, dtype=np.float64), 1e-4))
    n = lx.shape[0]
    if n < 2 or np.ptp(lx) == 0:
        raise ConfigError(f"a power law needs at least two distinct x values, got {list(x)}")
    slope, intercept = np.polyfit(lx, ly, 1)
    residual = ly - (intercept + slope * lx)
    sxx = float(((lx - lx.mean()) ** 2).sum())
    total = float(((ly - ly.mean()) ** 2).sum())
    fit: dict[str, Any] = {
        "a": float(math.exp(intercept)),
        "b": float(-slope),
        "n": int(n),
        "r2": 1 - float((residual**2).sum()) / total if total > 0 else 1.0,
        "b_ci95": None,
        "log_x_mean": float(lx.mean()),
        "sxx": sxx,
        "s": None,
        "t": None,
    }
    if n > 2:
        from scipy import stats

        s = math.sqrt(float((residual**2).sum()) / (n - 2))
        t = float(stats.t.ppf(0.975, n - 2))
        half = t * s / math.sqrt(sxx)
        fit.update(b_ci95=[fit["b"] - half, fit["b"] + half], s=s, t=t)
    return fit


def predict(fit: dict[str, Any], x: float) -> tuple[float, float | None, float | None]:
    """The law's WER at x, and its 95% confidence band there (None without an error estimate)."""
    mean = math.log(fit["a"]) - fit["b"] * math.log(x)
    if fit["s"] is None:
        return math.exp(mean), None, None
    half = fit["t"] * fit["s"] * math.sqrt(1 / fit["n"] + (math.log(x) - fit["log_x_mean"]) ** 2 / fit["sxx"])
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def _mean_wer(measures: Sequence[dict[str, Any]], key: str) -> float:
    return float(np.mean([m["test"][key]["wer"] for m in measures]))


def analyse(measures: Sequence[dict[str, Any]], study: ScaleConfig) -> dict[str, Any]:
    """The grid (mean over seeds), the fits along both axes, and conclusions stated from the numbers."""
    grid: dict[str, dict[str, Any]] = {}
    for size in study.sizes:
        for fraction in study.fractions:
            cell = [m for m in measures if m["size"] == size and m["fraction"] == fraction]
            if cell:
                grid[f"{size}@{fraction:g}"] = {
                    "size": size, "fraction": fraction, "seeds": len(cell),
                    "parameters": cell[0]["parameters"], "hours": float(np.mean([m["hours"] for m in cell])),
                    "train_minutes": float(np.mean([m["train_minutes"] for m in cell])),
                    **{f"wer_{k}": _mean_wer(cell, k) for k in SETS},
                }  # fmt: skip
    fits: dict[str, dict[str, Any]] = {"parameters": {}, "hours": {}}
    for key in SETS:
        for fraction in study.fractions:
            cells = [c for c in grid.values() if c["fraction"] == fraction]
            if len({c["parameters"] for c in cells}) >= 2:
                fit = fit_power_law([c["parameters"] for c in cells], [c[f"wer_{key}"] for c in cells])
                fits["parameters"][f"{key}@{fraction:g}"] = fit
        for size in study.sizes:
            cells = [c for c in grid.values() if c["size"] == size]
            if len(cells) >= 2:
                fits["hours"][f"{key}@{size}"] = fit_power_law(
                    [c["hours"] for c in cells], [c[f"wer_{key}"] for c in cells]
                )
    return {"grid": grid, "fits": fits, "conclusions": conclusions(grid, fits, study)}


def _law(fit: dict[str, Any], what: str) -> str:
    interval = fit["b_ci95"]
    band = f", 95% interval {interval[0]:.2f} to {interval[1]:.2f}" if interval else " (two points: no interval)"
    return f"exponent b = {fit['b']:.2f}{band}; doubling the {what} multiplies WER by {2 ** -fit['b']:.2f}"


def conclusions(grid: dict[str, dict[str, Any]], fits: dict[str, Any], study: ScaleConfig) -> list[str]:
    """Sentences computed from the grid and the fits (AN4 through the line is the set that decides)."""
    out = []
    sizes = list(study.sizes)
    for fraction in sorted(study.fractions):
        cells = [c for c in grid.values() if c["fraction"] == fraction]
        if not cells:
            continue
        best = min(cells, key=lambda c: c["wer_an4"])
        numbers = min(cells, key=lambda c: c["wer_numbers"])
        text = (
            f"At {best['hours']:.2f} h of training audio ({100 * fraction:g}%), pick size {best['size']} "
            f"({best['parameters']:,} parameters): AN4 WER {100 * best['wer_an4']:.2f}%"
        )
        if numbers["size"] != best["size"]:
            text += f" (for phone numbers alone {numbers['size']}: {100 * numbers['wer_numbers']:.2f}%)"
        if best["size"] == sizes[-1] and len(cells) == len(sizes):
            text += "; the largest size measured is still the best here: larger models may gain more"
        out.append(text + ".")
    for name, fit in fits["parameters"].items():
        key, fraction = name.split("@")
        out.append(f"Model size, {SETS[key]}, {100 * float(fraction):g}% of the data: {_law(fit, 'parameters')}.")
    for name, fit in fits["hours"].items():
        key, size = name.split("@")
        out.append(f"Data size, {SETS[key]}, size {size}: {_law(fit, 'training audio')}.")
    wide = [f for axis in fits.values() for f in axis.values() if f["b_ci95"] and f["b_ci95"][0] <= 0 <= f["b_ci95"][1]]
    if wide:
        out.append(
            f"{len(wide)} of the fits cannot exclude b = 0 (no gain) at 95%: with this few points per fit the "
            "exponents are indications, not measurements; more sizes, fractions or seeds narrow them."
        )
    return out


# -- the report -----------------------------------------------------------------------------------------------


def _group(cell: dict[str, Any], by: str) -> str:
    return f"{cell['fraction']:g}" if by == "fraction" else str(cell["size"])


def draw_scale(analysis: dict[str, Any], study: ScaleConfig, folder: Path) -> Path:
    """scaling.png: WER against parameters (a line per data fraction) and against hours (a line per size), both
    sets, log-log, with each fit and its 95% band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    grid, fits = analysis["grid"], analysis["fits"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 8), squeeze=False)
    axes_of = {("parameters", "an4"): axes[0][0], ("hours", "an4"): axes[0][1],
               ("parameters", "numbers"): axes[1][0], ("hours", "numbers"): axes[1][1]}  # fmt: skip
    groups = {"parameters": ("fraction", [f"{f:g}" for f in study.fractions]), "hours": ("size", list(study.sizes))}
    for (axis, key), ax in axes_of.items():
        by, names = groups[axis]
        for i, group in enumerate(names):
            color = plt.get_cmap("tab10")(i)
            cells = sorted((c for c in grid.values() if _group(c, by) == group), key=lambda c: c[axis])
            if not cells:
                continue
            label = f"{100 * float(group):g}% data" if by == "fraction" else f"size {group}"
            xs = [c[axis] for c in cells]
            ax.plot(xs, [100 * c[f"wer_{key}"] for c in cells], "o", color=color, label=label)
            fit = fits[axis].get(f"{key}@{group}")
            if fit is None:
                continue
            line = np.geomspace(min(xs), max(xs), 50)
            points = [predict(fit, float(v)) for v in line]
            ax.plot(line, [100 * p[0] for p in points], "-", color=color, alpha=0.8)
            if points[0][1] is not None:
                low = [100 * (p[1] or 0.0) for p in points]
                high = [100 * (p[2] or 0.0) for p in points]
                ax.fill_between(line, low, high, color=color, alpha=0.12)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("parameters" if axis == "parameters" else "hours of training audio")
        ax.set_ylabel(f"{SETS[key]} WER % (mu-law line, greedy)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    fig.suptitle("WER = a x^-b: points measured, lines fitted, bands 95% confidence of the fit")
    fig.tight_layout()
    path = folder / "scaling.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render_scale(report: dict[str, Any]) -> str:
    quick = " (quick: tiny models and data, not a result)" if report["quick"] else ""
    lines = [
        "# Scaling study: WER against model size and training-data size",
        "",
        f"`{report['command']}`, finished {report['finished']}; {report['runs_measured']} of "
        f"{report['runs_planned']} runs measured{quick}."
        f" Machine: {report['environment'].get('device_name', '?')}, torch {report['environment'].get('torch', '?')}.",
        "",
        "Greedy decoding, AN4 test and FSDD test phone numbers through a 300-3400 Hz G.711 mu-law line. The law: "
        "WER = a x^-b, least squares on logs; the interval is b's 95% confidence interval (Student t, n - 2 "
        "degrees of freedom).",
        "",
        "## Conclusions",
        "",
        *[f"- {c}" for c in report["analysis"]["conclusions"]],
        "",
        "## The grid (mean over seeds)",
        "",
        "| size | parameters | data | hours | seeds | AN4 WER | numbers WER | training minutes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for c in report["analysis"]["grid"].values():
        lines.append(
            f"| {c['size']} | {c['parameters']:,} | {100 * c['fraction']:g}% | {c['hours']:.2f} | {c['seeds']} | "
            f"{100 * c['wer_an4']:.2f}% | {100 * c['wer_numbers']:.2f}% | {c['train_minutes']:.1f} |"
        )
    lines += ["", "## Fits", "", "| axis | set, held fixed | a | b | b 95% interval | R^2 | points |",
              "| --- | --- | --- | --- | --- | --- | --- |"]  # fmt: skip
    for axis, fits in report["analysis"]["fits"].items():
        for name, fit in fits.items():
            key, fixed = name.split("@")
            interval = f"{fit['b_ci95'][0]:.2f} to {fit['b_ci95'][1]:.2f}" if fit["b_ci95"] else "-"
            held = f"{100 * float(fixed):g}% data" if axis == "parameters" else f"size {fixed}"
            lines.append(
                f"| {axis} | {SETS[key]}, {held} | {fit['a']:.3g} | {fit['b']:.3f} | {interval} | {fit['r2']:.3f} "
                f"| {fit['n']} |"
            )
    if report["plot"]:
        lines += ["", f"![WER against size and data]({report['plot']})"]
    if report["missing"]:
        lines += ["", f"Not yet trained: {', '.join(report['missing'])}."]
    return "\n".join(lines) + "\n"


def write_scale_report(runs: Sequence[ScaleRun], study: ScaleConfig, out: Path, quick: bool = False) -> list[Path]:
    """out/report.json, out/report.md and out/scaling.png from the measured runs; returns the paths."""
    measures = [json.loads((run_dir(out, r) / "measure.json").read_text()) for r in runs
                if (run_dir(out, r) / "measure.json").is_file()]  # fmt: skip
    missing = [r.name for r in runs if not (run_dir(out, r) / "measure.json").is_file()]
    analysis = analyse(measures, study)
    plot = draw_scale(analysis, study, out) if analysis["grid"] else None
    report = {
        **report_header("scale", quick, asdict(study), len(runs), len(measures), missing),
        "analysis": analysis,
        "plot": plot.name if plot else None,
        "runs": measures,
    }
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "report.md").write_text(render_scale(report))
    return [out / "report.md", out / "report.json", *([plot] if plot else [])]
