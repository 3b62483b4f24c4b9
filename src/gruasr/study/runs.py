"""The study's runs: corpora prepared once, one training recipe per (unit, direction, seed), trained or resumed.

Every finished run keeps its folder (`runs/<unit>-<direction>-s<seed>/` with summary.json and model/), so a
study that is stopped and started again skips what is done and resumes a run cut off mid-way from its last
checkpoint. Several processes may share one study with `shard=(k, n)`: process k trains runs k, k+n, ...
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from rich.console import Console

from gruasr.data.corpora.an4 import import_an4
from gruasr.data.corpora.fsdd import import_fsdd
from gruasr.errors import ConfigError
from gruasr.study.config import StudyConfig
from gruasr.study.match import count_parameters, match_hidden_size
from gruasr.training.config import TrainConfig, load_config
from gruasr.training.loop import train


class Planned(Protocol):
    """A training run of a study: a folder name, its recipe, and a line saying what it is."""

    @property
    def name(self) -> str: ...

    @property
    def config(self) -> TrainConfig: ...

    def describe(self) -> str: ...


@dataclass(frozen=True)
class Run:
    unit: str
    direction: str
    seed: int
    config: TrainConfig

    @property
    def name(self) -> str:
        return f"{self.unit}-{self.direction}-s{self.seed}"

    @property
    def parameters(self) -> int:
        return count_parameters(self.config.model)

    def describe(self) -> str:
        model = self.config.model
        return f"{model.unit} {model.num_layers}x{model.hidden_size} {self.direction}, {self.parameters:,} parameters"


def prepare_corpora(data: Path, out: Path, numbers_train: int, numbers_dev: int, numbers_test: int) -> Path:
    """AN4 and FSDD manifests (+ that many phone numbers per split) under out/data, once (processes sharing the
    study wait for the first); returns that folder."""
    folder = out / "data"
    folder.mkdir(parents=True, exist_ok=True)
    with open(out / ".prepare.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _prepare(data, folder, {"train": numbers_train, "dev": numbers_dev, "test": numbers_test})


def _prepare(data: Path, folder: Path, numbers: dict[str, int]) -> Path:
    done = folder / "prepared.json"
    wanted = {"numbers_train": numbers["train"], "numbers_dev": numbers["dev"],
              "numbers_test": numbers["test"], "source": str(data.resolve())}  # fmt: skip
    if done.is_file() and json.loads(done.read_text()) == wanted:
        return folder
    if not (data / "an4").is_dir() or not (data / "fsdd").is_dir():
        raise ConfigError(f"{data} must hold the corpora an4/ and fsdd/ (set --data or GRUASR_DATA)")
    import_an4(data / "an4", folder / "an4")
    import_fsdd(data / "fsdd", folder / "fsdd", numbers=numbers, seed=0)
    done.write_text(json.dumps(wanted) + "\n")
    return folder


def plan_runs(study: StudyConfig, out: Path) -> list[Run]:
    """Every run of the study, seed-major (all units of the first seed first), so a study cut short still has
    every unit at the same number of seeds. Manifest paths of the recipe are taken relative to `out`."""
    base = load_config(study.recipe, [*study.overrides, "augment.seed=0"])
    data = dataclasses.replace(
        base.data,
        train=tuple(str(out / p) for p in base.data.train),
        dev=tuple(str(out / p) for p in base.data.dev),
    )
    models = {}
    for unit in study.units:
        for direction in study.directions:
            model = dataclasses.replace(
                base.model,
                unit=unit,
                bidirectional=direction == "bi",
                backend=study.backends.get(unit),
                unit_options=base.model.unit_options if unit == base.model.unit else {},
            )
            models[unit, direction] = match_hidden_size(model, study.parameters, study.tolerance)
    return [
        Run(unit, direction, seed, dataclasses.replace(base, seed=seed, data=data, model=models[unit, direction]))
        for seed in study.seeds
        for unit in study.units
        for direction in study.directions
    ]


def run_dir(out: Path, run: Planned) -> Path:
    return out / "runs" / run.name


def is_done(out: Path, run: Planned) -> bool:
    return (run_dir(out, run) / "summary.json").is_file() and (run_dir(out, run) / "model" / "model.json").is_file()


R = TypeVar("R", bound=Planned)


def train_runs(runs: list[R], out: Path, console: Console, shard: tuple[int, int] = (0, 1)) -> list[R]:
    """Train (or resume) this shard's unfinished runs; returns the runs trained now."""
    k, n = shard
    if not 0 <= k < n:
        raise ConfigError(f"shard must be K/N with 0 <= K < N, got {k}/{n}")
    mine = [r for i, r in enumerate(runs) if i % n == k]
    trained = []
    for index, run in enumerate(mine):
        folder = run_dir(out, run)
        if is_done(out, run):
            continue
        resume = (folder / "checkpoints").is_dir()
        console.rule(
            f"[bold]run {runs.index(run) + 1}/{len(runs)}[/] {run.name}: {run.describe()}"
            f"{' (resuming)' if resume else ''}; shard {k}/{n}: {index + 1} of {len(mine)}"
        )
        folder.mkdir(parents=True, exist_ok=True)
        train(run.config, folder, resume=resume, console=console)
        trained.append(run)
    return trained
