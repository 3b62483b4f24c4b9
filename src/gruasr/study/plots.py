"""The study's plots: learning curves, WER against parameters, SNR, packet loss and input length, gradient
norms, and speed/memory bars; drawn headless (Agg) from the report's aggregated numbers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from gruasr.study.config import StudyConfig


def draw_plots(groups: dict[str, Any], study: StudyConfig, folder: Path) -> list[Path]:
    """The study's PNG plots (headless), from the aggregated groups of report.aggregate; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    colors = {u: plt.get_cmap("tab10")(i) for i, u in enumerate(study.units)}
    dirs = [d for d in study.directions if any(g["direction"] == d for g in groups.values())]
    paths = []

    def panels(title: str, name: str, draw: Any, xlabel: str, ylabel: str, log_x: bool = False) -> None:
        fig, axes = plt.subplots(1, len(dirs), figsize=(5.5 * len(dirs), 4), squeeze=False, sharey=True)
        for ax, direction in zip(axes[0], dirs, strict=True):
            for g in groups.values():
                if g["direction"] == direction:
                    draw(ax, g, colors[g["unit"]])
            ax.set_title(f"{title}, {'bidirectional' if direction == 'bi' else 'unidirectional'}")
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
            if log_x:
                from matplotlib.ticker import NullFormatter, ScalarFormatter

                ax.set_xscale("log")
                ax.set_xticks(list(study.measure.lengths))
                ax.xaxis.set_major_formatter(ScalarFormatter())
                ax.xaxis.set_minor_formatter(NullFormatter())
        axes[0][0].set_ylabel(ylabel)
        axes[0][-1].legend(fontsize=8)
        fig.tight_layout()
        path = folder / f"{name}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)

    def learning(ax: Any, g: dict[str, Any], color: Any) -> None:
        curves = np.array([[100 * v for v in c] for c in g["dev_wer_curves"] if len(c) == len(g["dev_wer_curves"][0])])
        epochs = np.arange(1, curves.shape[1] + 1)
        ax.plot(epochs, curves.mean(0), color=color, label=g["unit"])
        ax.fill_between(epochs, curves.min(0), curves.max(0), color=color, alpha=0.15)

    panels("Dev WER while training", "learning_curves", learning, "epoch", "dev WER % (mean, band: min-max)")

    def sweep(key: str, scale: float, clean_at: float) -> Any:
        def draw(ax: Any, g: dict[str, Any], color: Any) -> None:
            xs = [clean_at] + [scale * float(k) for k in g[key]]
            ys = [g["clean_sweep"]["mean"]] + [v["mean"] for v in g[key].values()]
            if key == "length":
                xs = [g["length_seconds"][k] for k in g[key]]
                ys = ys[1:]
            points = sorted(zip(xs, ys, strict=True))
            ax.plot([p[0] for p in points], [100 * p[1] for p in points], marker="o", color=color, label=g["unit"])

        return draw

    top_snr = max(study.measure.snr_db, default=30.0) + 10
    panels("WER vs SNR", "wer_vs_snr", sweep("snr", 1.0, top_snr), f"SNR dB (clean drawn at {top_snr:g})", "AN4 WER %")
    panels("WER vs packet loss", "wer_vs_packet_loss", sweep("packet_loss", 100.0, 0.0), "lost 20 ms frames %",
           "AN4 WER %")  # fmt: skip
    panels("WER vs input length", "wer_vs_length", sweep("length", 1.0, 0.0), "input seconds (joined AN4 test)",
           "WER %", log_x=True)  # fmt: skip

    def params(ax: Any, g: dict[str, Any], color: Any) -> None:
        values = [100 * v for v in g["wer_an4"]["values"]]
        ax.scatter([g["parameters"]] * len(values), values, color=color, alpha=0.4, s=14)
        ax.errorbar(g["parameters"], 100 * g["wer_an4"]["mean"], yerr=100 * g["wer_an4"]["std"], color=color,
                    marker="o", capsize=3, label=f"{g['unit']} (H={g['hidden_size']})")  # fmt: skip

    panels("AN4 WER vs parameters", "wer_vs_parameters", params, "parameters", "AN4 WER % (seeds; mean ± sd)")

    def norms(ax: Any, g: dict[str, Any], color: Any) -> None:
        for i, curve in enumerate(g["grad_norm_curves"]):
            ys = [np.nan if v is None else v for v in curve]
            ax.plot(np.arange(1, len(ys) + 1), ys, color=color, alpha=0.7, label=g["unit"] if i == 0 else None)
        ax.set_yscale("log")

    panels("Gradient norm (median per epoch)", "grad_norms", norms, "epoch", "gradient norm before clipping")

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    labels = list(groups)
    bar_colors = [colors[groups[k]["unit"]] for k in labels]
    hatches = ["" if groups[k]["direction"] == "bi" else "//" for k in labels]
    for ax, (key, title) in zip(
        axes,
        [("train_step_s", "training step s, one thread"), ("rtf_one_thread", "real-time factor, one thread"),
         ("step_memory_mb", "training-step memory MB")],
        strict=True,
    ):  # fmt: skip
        values = [groups[k][key]["mean"] if isinstance(groups[k][key], dict) else groups[k][key] or 0 for k in labels]
        bars = ax.bar(range(len(labels)), values, color=bar_colors)
        for bar, hatch in zip(bars, hatches, strict=True):
            bar.set_hatch(hatch)
        ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    path = folder / "speed.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    paths.append(path)
    return paths
