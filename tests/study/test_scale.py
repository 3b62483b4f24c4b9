"""The scaling study: the power-law fit and its interval, nested data fractions, the plan of the committed study,
conclusions computed from a grid, and `gruasr scale --quick` end to end (report, plot, shards, resumability)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from gruasr.cli.main import main
from gruasr.data.manifest import Utterance
from gruasr.errors import ConfigError
from gruasr.study.scale import ScaleConfig, conclusions, fit_power_law, load_scale, plan_scale, predict
from gruasr.training.data import take_fraction

ROOT = Path(__file__).resolve().parents[2]


def test_power_law_fit_recovers_the_law_and_its_interval_covers_it() -> None:
    x = np.array([1e5, 3e5, 1e6, 3e6])
    exact = fit_power_law(x, 2.0 * x**-0.3)
    assert exact["a"] == pytest.approx(2.0) and exact["b"] == pytest.approx(0.3) and exact["r2"] == pytest.approx(1.0)
    assert exact["b_ci95"][1] - exact["b_ci95"][0] == pytest.approx(0.0, abs=1e-9)  # no scatter, no width
    covered = 0
    rng = np.random.default_rng(0)
    for _ in range(200):  # a 95% interval covers the true exponent about 95% of the time
        fit = fit_power_law(x, 2.0 * x**-0.3 * np.exp(rng.normal(0, 0.1, x.shape)))
        covered += fit["b_ci95"][0] <= 0.3 <= fit["b_ci95"][1]
    assert 180 <= covered <= 200
    mean, low, high = predict(fit, 5e5)
    assert low is not None and high is not None and low < mean < high
    two = fit_power_law([1.0, 2.0], [0.5, 0.25])  # two points: exact, no error estimate
    assert (
        two["b"] == pytest.approx(1.0)
        and two["b_ci95"] is None
        and predict(two, 4.0) == (pytest.approx(0.125), None, None)
    )
    assert fit_power_law([1.0, 2.0, 4.0], [0.0, 0.1, 0.1])["a"] > 0  # a zero WER is floored, not log(0)
    with pytest.raises(ConfigError, match="two distinct"):
        fit_power_law([3.0, 3.0], [0.2, 0.1])


def test_data_fractions_are_nested_fixed_and_in_manifest_order() -> None:
    utts = [Utterance(f"utt{i:03d}", f"{i}.wav", "one") for i in range(200)]
    quarter, half = take_fraction(utts, 0.25), take_fraction(utts, 0.5)
    assert len(quarter) == 50 and len(half) == 100 and take_fraction(utts, 1.0) == utts
    assert {u.id for u in quarter} < {u.id for u in half}  # nested
    assert quarter == sorted(quarter, key=lambda u: u.id)  # manifest order kept
    assert quarter == take_fraction(list(reversed(utts)), 0.25)[::-1]  # chosen by id, not by position
    assert len(take_fraction(utts[:1], 0.01)) == 1  # never empty


def test_the_committed_study_plan(tmp_path: Path) -> None:
    study = load_scale(ROOT / "configs" / "scale.toml")
    runs = plan_scale(study, tmp_path)
    assert len(runs) == 12 and len({r.name for r in runs}) == 12
    assert [r.name for r in runs[:3]] == ["xs-d100-s1", "s-d100-s1", "m-d100-s1"]  # the full-data runs first
    sizes = {r.size: r.parameters for r in runs}
    assert sizes["xs"] < sizes["s"] < sizes["m"] == 3_428_381  # m is the default model's size
    for run in runs:
        assert run.config.data.fraction == run.fraction and run.config.train.epochs == 12
        assert all(p.startswith(str(tmp_path)) for p in run.config.data.train)
        assert run.config.model.input_dim == run.config.features.dim
    quick = load_scale(ROOT / "configs" / "scale.toml", quick=True)
    assert set(quick.sizes) == {"a", "b", "c"} and quick.fractions == (0.5, 1.0)


def test_scale_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="two model sizes"):
        ScaleConfig(sizes={"a": []})
    with pytest.raises(ConfigError, match="fractions"):
        ScaleConfig(sizes={"a": [], "b": []}, fractions=(0.5, 1.5))
    with pytest.raises(ConfigError, match="sizes.b"):
        ScaleConfig(sizes={"a": [], "b": 3})
    with pytest.raises(ConfigError, match="data.fraction"):
        from gruasr.training.config import load_config

        load_config(None, ["data.fraction=0"])
    with pytest.raises(ConfigError, match="not found"):
        load_scale(tmp_path / "missing.toml")


def _cell(size: str, parameters: int, fraction: float, an4: float, numbers: float) -> dict[str, float | str]:
    return {"size": size, "parameters": parameters, "fraction": fraction, "hours": 2.0 * fraction,
            "wer_an4": an4, "wer_numbers": numbers}  # fmt: skip


def test_conclusions_follow_the_numbers() -> None:
    study = ScaleConfig(sizes={"s": [], "m": [], "l": []}, fractions=(0.5, 1.0))
    grid = {
        "s@0.5": _cell("s", 10**6, 0.5, 0.30, 0.05), "m@0.5": _cell("m", 3 * 10**6, 0.5, 0.25, 0.06),
        "l@0.5": _cell("l", 10**7, 0.5, 0.28, 0.07), "s@1": _cell("s", 10**6, 1.0, 0.25, 0.04),
        "m@1": _cell("m", 3 * 10**6, 1.0, 0.20, 0.03), "l@1": _cell("l", 10**7, 1.0, 0.15, 0.02),
    }  # fmt: skip
    fits = {"parameters": {"an4@1": fit_power_law([1e6, 3e6, 1e7], [0.25, 0.20, 0.15])}, "hours": {}}
    said = conclusions(grid, fits, study)
    assert said[0].startswith("At 1.00 h of training audio (50%), pick size m") and "phone numbers alone s" in said[0]
    assert said[1].startswith("At 2.00 h") and "pick size l" in said[1] and "still the best" in said[1]
    b = fits["parameters"]["an4@1"]["b"]
    assert (
        f"b = {b:.2f}" in said[2]
        and f"multiplies WER by {2**-b:.2f}" in said[2]
        and math.isclose(b, 0.22, abs_tol=0.01)
    )


def test_scale_quick_end_to_end(tmp_path: Path, data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "scale"
    args = ["scale", "--quick", "--config", str(ROOT / "configs" / "scale.toml"), "--out", str(out),
            "--data", str(data_dir), "--threads", "1"]  # fmt: skip
    assert main([*args, "--shard", "1/2"]) == 0  # runs 1, 3, 5 only, no report
    assert sorted(p.name for p in (out / "runs").iterdir()) == ["a-d050-s1", "b-d100-s1", "c-d050-s1"]
    assert not (out / "report.json").exists()
    assert main(args) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["runs_planned"] == report["runs_measured"] == 6 and report["missing"] == []
    grid = report["analysis"]["grid"]
    assert len(grid) == 6
    assert grid["a@0.5"]["hours"] == pytest.approx(grid["a@1"]["hours"] / 2, rel=0.2)  # half the utterances
    assert grid["a@1"]["parameters"] < grid["b@1"]["parameters"] < grid["c@1"]["parameters"]
    fits = report["analysis"]["fits"]
    assert set(fits["parameters"]) == {"an4@0.5", "an4@1", "numbers@0.5", "numbers@1"}
    assert set(fits["hours"]) == {f"{k}@{s}" for k in ("an4", "numbers") for s in "abc"}
    assert all(f["n"] == 3 and f["b_ci95"] is not None for f in fits["parameters"].values())
    for run in report["runs"]:  # the report's numbers are the run folders'
        saved = json.loads((out / "runs" / run["run"] / "measure.json").read_text())
        assert saved["test"] == run["test"] and run["test"]["an4"]["wer"] >= 0
    text = (out / "report.md").read_text()
    assert "## Conclusions" in text and "pick size" in text and "(scaling.png)" in text
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    stamps = {p: p.stat().st_mtime_ns for p in (out / "runs").glob("*/*.json")}
    assert main(args) == 0  # resumable: nothing retrained or remeasured
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    capsys.readouterr()
