"""The study's recipe (`configs/compare.toml`): which units, directions and seeds, the parameter budget, the
training recipe every run shares, and what to measure.

    recipe = "configs/telephone.toml"     # the base training recipe, relative to the working directory
    overrides = ["train.epochs=8", ...]   # `--set` overrides applied to every run (the study's training recipe)
    units = ["rnn", "lstm", "gru", "ligru", "mingru"]
    directions = ["bi", "uni"]
    seeds = [1, 2, 3]
    parameters = 600000                   # every model's budget, matched within `tolerance` by the hidden size
    [backends]                            # backend per unit (default: the unit's own)
    [measure]                             # test sets, sweeps, speed probes (MeasureConfig)
    [quick]                               # what --quick changes: same keys as the top level
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gruasr.errors import ConfigError
from gruasr.models.recurrent import available
from gruasr.training.config import build

DIRECTIONS = ("bi", "uni")


@dataclass(frozen=True)
class MeasureConfig:
    """What is measured on every trained model (greedy decoding: the acoustic models are compared, not LMs)."""

    #: FSDD test phone numbers made from test takes (and AN4 test, whole)
    numbers: int = 200
    #: at most this many utterances per test set and per sweep condition (0: all)
    limit: int = 0
    #: SNRs of the noise sweep (dB; clean is always included), white and babble-like noise per TelephoneChannel
    snr_db: tuple[float, ...] = (30.0, 20.0, 10.0, 5.0, 0.0)
    #: packet-loss rates of the missing-data sweep (0 is always included)
    packet_loss: tuple[float, ...] = (0.05, 0.1, 0.2)
    #: lengths (seconds) of the long inputs made by joining test utterances, and how many of each
    lengths: tuple[float, ...] = (5.0, 10.0, 20.0, 40.0, 60.0)
    long_per_length: int = 8
    #: which seeds get the sweeps (empty: all)
    sweep_seeds: tuple[int, ...] = ()
    #: utterances timed for the one-thread real-time factor
    rtf_utterances: int = 30
    #: chunk of the streaming latency probe (unidirectional models), milliseconds
    chunk_ms: int = 160
    #: the dev WER whose first reaching is "time to target"
    target_dev_wer: float = 0.5
    #: batch of the training-memory probe: utterances x seconds
    memory_batch: int = 16
    memory_seconds: float = 10.0


@dataclass(frozen=True)
class StudyConfig:
    recipe: str = "configs/telephone.toml"
    overrides: tuple[str, ...] = ()
    units: tuple[str, ...] = ("rnn", "lstm", "gru", "ligru", "mingru")
    directions: tuple[str, ...] = DIRECTIONS
    seeds: tuple[int, ...] = (1, 2, 3)
    parameters: int = 600_000
    tolerance: float = 0.1
    backends: dict[str, str] = field(default_factory=dict)
    #: FSDD phone numbers built from training takes for training, and from dev takes for dev
    numbers_train: int = 800
    numbers_dev: int = 200
    measure: MeasureConfig = field(default_factory=MeasureConfig)

    def __post_init__(self) -> None:
        unknown = [u for u in self.units if u not in available()]
        if unknown or not self.units:
            raise ConfigError(f"units must name units of the registry {available()}, got {list(self.units)}")
        if not self.directions or any(d not in DIRECTIONS for d in self.directions):
            raise ConfigError(f"directions must be among {DIRECTIONS}, got {list(self.directions)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be distinct and at least one, got {list(self.seeds)}")
        if not 0 < self.tolerance < 1:
            raise ConfigError(f"tolerance must be in (0, 1), got {self.tolerance}")
        bad = [u for u in self.backends if u not in available()]
        if bad:
            raise ConfigError(f"backends names unknown units {bad}")


def load_study(path: str | Path, quick: bool = False) -> StudyConfig:
    """Read a study TOML; with `quick`, its [quick] table replaces the keys it names (measure merged)."""
    return build(StudyConfig, read_study_tree(path, quick, "study"), str(path))


def read_study_tree(path: str | Path, quick: bool, kind: str) -> dict[str, Any]:
    """A study TOML as a table; with `quick`, its [quick] table replaces the keys it names, except that
    `overrides` are appended (later ones win) and a `measure` table is merged into the top level's."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{kind} config not found: {path}")
    try:
        tree: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    quick_tree = tree.pop("quick", {})
    if quick:
        for key, value in quick_tree.items():
            if key == "measure" and isinstance(value, dict):
                tree.setdefault("measure", {}).update(value)
            elif key == "overrides" and isinstance(value, list):
                tree["overrides"] = list(tree.get("overrides", [])) + value
            else:
                tree[key] = value
    return tree
