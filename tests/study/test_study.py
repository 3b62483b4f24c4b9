"""The comparison study: matched budgets, the streaming probe's exactness, the memory probe, the verdicts, and
`gruasr compare --quick` end to end on a tiny config (structure and consistency of the report, resumability)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from gruasr.bundle import ModelBundle
from gruasr.cli.main import main
from gruasr.data.tokens import TokenTable
from gruasr.errors import ConfigError
from gruasr.features.cmvn import GlobalCMVN
from gruasr.features.config import FbankConfig
from gruasr.models.ctc_model import CTCModel, ModelConfig
from gruasr.models.recurrent import available
from gruasr.study.config import load_study
from gruasr.study.match import count_parameters, match_hidden_size
from gruasr.study.measure import Item, Scorer, long_inputs, streaming_probe, training_memory
from gruasr.study.report import _differs, _verdict
from gruasr.study.runs import plan_runs

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("unit", available())
@pytest.mark.parametrize("bidirectional", [True, False])
def test_matched_budget_within_tolerance(unit: str, bidirectional: bool) -> None:
    base = ModelConfig(unit=unit, num_layers=2, conv_channels=96, bidirectional=bidirectional)
    config = match_hidden_size(base, 600_000)
    built = CTCModel(config).num_parameters()
    assert built == count_parameters(config)
    assert abs(built - 600_000) <= 0.1 * 600_000
    # the next hidden size up or down is no closer to the budget
    for h in (config.hidden_size - 1, config.hidden_size + 1):
        other = count_parameters(ModelConfig(**{**config.to_dict(), "hidden_size": h}))
        assert abs(other - 600_000) >= abs(built - 600_000)


def test_budget_below_the_fixed_layers_is_an_error() -> None:
    with pytest.raises(ConfigError, match="conv_channels"):
        match_hidden_size(ModelConfig(conv_channels=256), 50_000)


def test_the_committed_study_plan() -> None:
    study = load_study(ROOT / "configs" / "compare.toml")
    runs = plan_runs(study, Path("/study"))
    assert len(runs) == 5 * 2 * 3 and len({r.name for r in runs}) == 30
    assert {r.unit for r in runs} == set(available())
    assert all(abs(r.parameters - study.parameters) <= study.tolerance * study.parameters for r in runs)
    # seed-major: every unit and direction of the first seed comes before any run of the second
    assert [r.seed for r in runs[:10]] == [1] * 10
    assert all(p.startswith("/study/data/") for r in runs for p in r.config.data.train + r.config.data.dev)
    assert {r.config.augment.seed for r in runs} == {0}  # every run trains on the same augmented copies


def test_the_converged_comparison_plan() -> None:
    """configs/compare-converged.toml: GRU, LSTM and Li-GRU at the default model's size and schedule."""
    study = load_study(ROOT / "configs" / "compare-converged.toml")
    runs = plan_runs(study, Path("/study"))
    assert [r.name for r in runs] == ["gru-bi-s1", "lstm-bi-s1", "ligru-bi-s1"]
    gru = runs[0].config.model
    assert (gru.hidden_size, gru.num_layers, gru.conv_channels) == (256, 3, 256)  # the default model itself
    assert all(abs(r.parameters - 3428381) <= 0.05 * 3428381 for r in runs)
    assert all(r.config.train.epochs == 40 and r.config.augment.variants == 3 for r in runs)


def test_study_config_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('units = ["gru", "transformer"]\n')
    with pytest.raises(ConfigError, match="units"):
        load_study(bad)
    bad.write_text("seeds = [1, 1]\n")
    with pytest.raises(ConfigError, match="seeds"):
        load_study(bad)
    bad.write_text("typo = 1\n")
    with pytest.raises(ConfigError, match="typo"):
        load_study(bad)
    with pytest.raises(ConfigError, match="not found"):
        load_study(tmp_path / "missing.toml")


def _bundle(unit: str, bidirectional: bool) -> ModelBundle:
    features = FbankConfig(num_mel_bins=40)
    model = CTCModel(ModelConfig(input_dim=40, unit=unit, hidden_size=24, num_layers=2, conv_channels=16,
                                 bidirectional=bidirectional)).eval()  # fmt: skip
    cmvn = GlobalCMVN(torch.randn(40), torch.rand(40) + 0.5)
    return ModelBundle(model, features, cmvn, TokenTable(), {})


def test_streaming_probe_is_exact_and_timed() -> None:
    scorer = Scorer(_bundle("gru", bidirectional=False))
    rng = np.random.default_rng(0)
    items = [Item("x", (0.1 * rng.standard_normal(n)).astype(np.float32)) for n in (9000, 13700)]
    probe = streaming_probe(scorer, items, 160)
    assert probe["max_abs_diff_offline"] < 1e-4
    assert 0 < probe["compute_ms_median"] <= probe["compute_ms_p95"]
    assert probe["latency_ms"] == pytest.approx(160 + probe["compute_ms_p95"])


def test_training_memory_grows_with_the_batch() -> None:
    config = ModelConfig(input_dim=40, unit="gru", hidden_size=16, num_layers=1, conv_channels=8)
    small, large = training_memory(config, 2, 1.0), training_memory(config, 4, 2.0)
    assert small["parameters_mb"] == large["parameters_mb"] > 0
    assert 3.0 < large["activations_mb"] / small["activations_mb"] < 5.0  # ~linear in batch x time
    assert small["step_mb"] == pytest.approx(4 * small["parameters_mb"] + small["activations_mb"])


def test_long_inputs_reach_their_length() -> None:
    rate = 8000
    items = [Item(f"w{i}", np.full(int(rate * (1 + i % 3)), 0.1, np.float32)) for i in range(20)]
    made = long_inputs(items, [5.0, 12.0], 3, rate)
    assert [len(m) for m in made] == [3, 3]
    for length, inputs in zip([5.0, 12.0], made, strict=True):
        for item in inputs:
            assert item.samples.shape[0] >= length * rate
            assert len(item.text.split()) >= 2
    assert [m.text for m in made[0]] == [m.text for m in long_inputs(items, [5.0, 12.0], 3, rate)[0]]  # seeded


def test_verdicts_and_significance() -> None:
    assert _verdict({"gru": 0.05, "lstm": 0.08}, "loses").startswith("holds: GRU loses least")
    assert "within" in _verdict({"gru": 0.055, "lstm": 0.05}, "loses")
    assert _verdict({"gru": 0.10, "lstm": 0.05}, "loses").startswith("does not hold: lstm")
    assert _verdict({"lstm": 0.05}, "loses").startswith("cannot be judged")
    tight = {"mean": 0.10, "std": 0.002, "n": 3}
    assert _differs(tight, {"mean": 0.15, "std": 0.002, "n": 3})
    assert not _differs(tight, {"mean": 0.104, "std": 0.01, "n": 3})
    assert not _differs({"mean": 0.1, "std": 0.0, "n": 1}, {"mean": 0.5, "std": 0.0, "n": 1})


TINY = """
recipe = "{root}/configs/telephone.toml"
overrides = ['data.train=["data/an4/train.jsonl", "data/fsdd/train.jsonl", "data/fsdd/train_numbers.jsonl"]',
             'data.dev=["data/an4/dev.jsonl", "data/fsdd/dev_numbers.jsonl"]', "data.repeat=[1, 1, 1]",
             "data.limit=12", "data.max_duration=4.0", "features.num_mel_bins=24",
             "model.num_layers=1", "model.conv_channels=8", "augment.variants=1", "train.epochs=1",
             "train.max_seconds=40.0", "train.warmup_steps=2", "train.average_last=1", "train.num_workers=0"]
seeds = [1, 2]
parameters = 6000
numbers_train = 24
numbers_dev = 8
[backends]
lstm = "fused"
[measure]
numbers = 8
limit = 4
snr_db = [10.0]
packet_loss = [0.2]
lengths = [3.0, 6.0]
long_per_length = 1
sweep_seeds = [1]
rtf_utterances = 2
memory_batch = 2
memory_seconds = 1.0
"""


def test_compare_quick_end_to_end(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tiny.toml"
    config.write_text(TINY.format(root=ROOT))
    out = tmp_path / "study"
    args = ["compare", "--config", str(config), "--out", str(out), "--data", str(data_dir)]
    # a shard trains and measures its runs only (0, 2, 4, ...) and writes no report
    assert main([*args, "--shard", "0/2"]) == 0
    names = sorted(p.name for p in (out / "runs").iterdir())
    assert len(names) == 10 and not (out / "report.md").exists()
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["runs_planned"] == report["runs_measured"] == 20 and report["missing"] == []
    assert set(report["groups"]) == {f"{u}-{d}" for u in available() for d in ("bi", "uni")}
    for key, group in report["groups"].items():
        assert abs(group["parameters"] - 6000) <= 600, key
        values = group["wer_an4"]["values"]
        assert len(values) == 2 and all(v >= 0 for v in values)
        assert group["wer_an4"]["mean"] == pytest.approx(np.mean(values))
        assert group["wer_an4"]["std"] == pytest.approx(np.std(values, ddof=1))
        assert set(group["snr"]) == {"10.0"} and set(group["packet_loss"]) == {"0.2"}
        assert set(group["length"]) == {"3.0", "6.0"} and group["snr"]["10.0"]["n"] == 1  # sweeps on seed 1
        assert group["length_seconds"]["6.0"] >= 6.0
        assert group["rtf_one_thread"]["mean"] > 0 and group["step_memory_mb"] > 0
        assert group["peak_rss_growth_mb"] is not None and group["peak_rss_growth_mb"] >= 0
        assert group["train_step_s"] is not None and group["train_step_s"] > 0
        assert len(group["dev_wer_curves"]) == 2 and all(len(c) == 1 for c in group["dev_wer_curves"])
        if group["direction"] == "uni":
            assert group["streaming"]["max_abs_diff_offline"] < 1e-4
            assert group["streaming"]["latency_ms"] >= 160
        else:
            assert "streaming" not in group
    for run in report["runs"]:  # the per-run numbers are the ones in the run folders
        saved = json.loads((out / "runs" / run["run"] / "measure.json").read_text())
        assert saved["test"] == run["test"]
    text = (out / "report.md").read_text()
    for heading in ("## Conclusions", "## Accuracy and cost", "WER % vs SNR", "packet loss", "input length",
                    "## Training stability", "## Streaming"):  # fmt: skip
        assert heading in text
    for name in ("learning_curves", "wer_vs_parameters", "wer_vs_snr", "wer_vs_packet_loss", "wer_vs_length",
                 "speed", "grad_norms"):  # fmt: skip
        png = out / f"{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"({name}.png)" in text
    # resumable: a second call retrains and remeasures nothing
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/*.json")}
    assert main(args) == 0
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    capsys.readouterr()


def test_compare_without_corpora_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["compare", "--quick", "--out", str(tmp_path / "s"), "--data", str(tmp_path)])
    assert code != 0
    assert "corpora not found" in capsys.readouterr().err
