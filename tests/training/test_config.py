"""The TOML recipe: defaults, overrides, and clear errors."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gruasr import ConfigError
from gruasr.training.config import config_from_json, load_config
from gruasr.training.schedule import learning_rate

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "name",
    [
        "telephone.toml", "telephone-streaming.toml", "telephone-holdout.toml", "telephone-generalize.toml",
        "telephone-variants.toml", "tiny.toml", "size-xs.toml", "size-s.toml", "size-m.toml", "size-l.toml",
        "size-xl.toml",
    ],
)  # fmt: skip
def test_shipped_recipes_load(name):
    config = load_config(ROOT / "configs" / name)
    assert config.model.input_dim == config.features.num_mel_bins
    assert config_from_json(config.to_json()) == config  # the resolved config reads back to the same recipe


def test_overrides_are_typed_toml_values():
    config = load_config(None, ["train.epochs=3", "model.unit=lstm", "augment.speeds=[1.0]", "train.lr=1e-3"])
    assert config.train.epochs == 3 and config.model.unit == "lstm"
    assert config.augment.speeds == (1.0,) and config.train.lr == 1e-3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["train.epoch=3"], "unknown keys"),
        (["trian.epochs=3"], "unknown keys"),
        (["train.epochs=three"], "must be an integer"),
        (["model.unit=transformer"], "model.unit"),
        (["augment.noise_prob=2.0"], "noise_prob"),
        (["features.num_mel_bins=40", "model.input_dim=80"], "input_dim"),
        (["data.train=['a']", "data.repeat=[1, 2]"], "repeat"),
        (["data.dev=['a', 'b']", "data.dev_weights=[1.0]"], "dev_weights has 1 entries for 2"),
        (["data.dev=['a']", "data.dev_weights=[0.0]"], "positive sum"),
        (["specaugment.freq_warp=0.6"], "freq_warp"),
        (["train.epochs"], "section.key=value"),
    ],
)
def test_bad_settings_are_refused(overrides, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nepochs = 1")
    with pytest.raises(ConfigError, match="TOML"):
        load_config(bad)


def test_schedule_warms_up_then_decays_to_the_floor():
    rates = [learning_rate(s, 1.0, 10, 110, 0.1) for s in range(120)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[10:], rates[11:], strict=False))
    assert rates[110] == pytest.approx(0.1) and rates[119] == pytest.approx(0.1)


def test_a_recipe_extends_its_base(tmp_path):
    (tmp_path / "a.toml").write_text('seed = 3\n[model]\nunit = "lstm"\nhidden_size = 64\n[train]\nepochs = 5\n')
    (tmp_path / "b.toml").write_text('base = "a.toml"\n[model]\nhidden_size = 32\n')
    config = load_config(tmp_path / "b.toml", ["train.lr=0.01"])
    assert (config.seed, config.model.unit, config.model.hidden_size) == (3, "lstm", 32)  # merged per key
    assert (config.train.epochs, config.train.lr) == (5, 0.01)
    streaming = load_config(ROOT / "configs" / "telephone-streaming.toml")
    default = load_config(ROOT / "configs" / "telephone.toml")
    assert not streaming.model.bidirectional and streaming.data == default.data
    assert streaming.train == replace(default.train, epochs=80)  # the streaming recipe trains twice as long
    (tmp_path / "a.toml").write_text('base = "b.toml"\n')
    with pytest.raises(ConfigError, match="circle"):
        load_config(tmp_path / "b.toml")
    (tmp_path / "c.toml").write_text('base = "missing.toml"\n')
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "c.toml")


def test_dev_weights_make_selection_a_weighted_mean_of_the_sets_wer():
    from gruasr.evaluation.metrics import DevResult, ErrorCounts

    small, large, pooled = ErrorCounts(), ErrorCounts(), ErrorCounts()
    for counts in (small, pooled):
        counts.add("a b c d", "a b c x")  # 1 error in 4 words: 25%
    for _ in range(9):
        for counts in (large, pooled):
            counts.add("one two three four", "one two three four")  # 0 errors in 36 words
    assert DevResult([small, large]).pooled == pooled  # the manifests' counts together
    assert DevResult([small, large]).wer == pytest.approx(1 / 40)  # words pooled: the small set drowns
    assert DevResult([small, large], (1.0, 1.0)).wer == pytest.approx(0.125)
    assert DevResult([small, large], (3.0, 1.0)).wer == pytest.approx(0.1875)
    silent = ErrorCounts()
    silent.add("", "uh oh")  # a speech-free clip: 2 words invented, whatever the weights
    assert DevResult([small, large, silent], (3.0, 1.0, 0.0)).invented == 2
    assert DevResult([small, large]).invented == 0  # errors on sets with words are not inventions
    # printed per set: a WER where there are words, the words invented where there are none (not "100.00%")
    assert DevResult([small, large, silent]).per_set() == ["25.00%", "0.00%", "2 words invented"]


def test_size_presets_grow_and_m_is_the_default_model():
    from gruasr.models.ctc_model import CTCModel

    sizes = [CTCModel(load_config(ROOT / "configs" / f"size-{n}.toml").model).num_parameters()
             for n in ("xs", "s", "m", "l", "xl")]  # fmt: skip
    assert sizes == sorted(sizes) and sizes[0] < 1_000_000 and sizes[-1] > 25_000_000
    assert load_config(ROOT / "configs" / "size-m.toml").model == load_config(ROOT / "configs" / "telephone.toml").model
