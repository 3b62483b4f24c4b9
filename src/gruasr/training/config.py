"""The training recipe: one TOML file, frozen dataclasses per section, `--set section.key=value` overrides.

Unknown sections or keys are errors, so a typo cannot silently fall back to a default. The resolved config
(after overrides) is written next to every run as `config.json`.
"""

from __future__ import annotations

import dataclasses
import json
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from gruasr.data.augment import AugmentConfig
from gruasr.decoding.lm_text import LMRecipe
from gruasr.errors import ConfigError
from gruasr.features.config import FbankConfig
from gruasr.features.specaugment import SpecAugmentConfig
from gruasr.models.ctc_model import ModelConfig

T = TypeVar("T")


@dataclass(frozen=True)
class DataConfig:
    """Manifests (paths relative to the working directory) and how much of each to use."""

    train: tuple[str, ...] = ()
    dev: tuple[str, ...] = ()
    #: folders of WebDataset shards (`gruasr data shard`) to stream the training audio from instead of `train`'s
    #: manifests: fresh augmentation every epoch, nothing held in memory (gruasr.training.streamed)
    train_shards: tuple[str, ...] = ()
    #: times each training manifest is used per epoch (same length as `train`; default 1 each)
    repeat: tuple[int, ...] = ()
    #: utterances longer than this (seconds) are left out of training
    max_duration: float = 20.0
    #: at most this many utterances per manifest (0: all); for quick runs
    limit: int = 0
    #: train on this fraction of each training manifest's utterances (1: all): the ones whose ids hash first, so
    #: smaller fractions are subsets of larger ones (a data-size axis: `gruasr scale`); dev sets stay whole
    fraction: float = 1.0
    #: how much each dev manifest's WER counts in model selection (same length as `dev`): the selection WER is
    #: sum(w_i * WER_i) / sum(w_i), so a small set can count as much as a large one; default: all dev utterances
    #: pooled (each word counts once)
    dev_weights: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.repeat and len(self.repeat) != len(self.train):
            raise ConfigError(f"data.repeat has {len(self.repeat)} entries for {len(self.train)} train manifests")
        if self.dev_weights and len(self.dev_weights) != len(self.dev):
            raise ConfigError(f"data.dev_weights has {len(self.dev_weights)} entries for {len(self.dev)} dev manifests")
        if self.dev_weights and (any(w < 0 for w in self.dev_weights) or sum(self.dev_weights) <= 0):
            raise ConfigError("data.dev_weights must be >= 0 with a positive sum")
        if any(r < 0 for r in self.repeat):
            raise ConfigError("data.repeat entries must be >= 0")
        if not 0 < self.fraction <= 1:
            raise ConfigError(f"data.fraction must be in (0, 1], got {self.fraction}")
        if self.train_shards and (self.train or self.repeat or self.fraction != 1 or self.limit):
            raise ConfigError(
                "data.train_shards streams the training audio: give no data.train, repeat, fraction or limit"
            )


@dataclass(frozen=True)
class AugmentSection(AugmentConfig):
    """Waveform augmentation (AugmentConfig's settings), precomputed as `variants` copies of every training
    utterance (epoch e uses copy e mod variants), so augmentation costs nothing per epoch on a CPU;
    SpecAugment runs on every batch."""

    variants: int = 3
    #: seed of the precomputed copies (None: the run's seed); runs that share it share the same copies, which
    #: one process computes once (the comparison study trains every unit on the same copies)
    seed: int | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.variants < 1:
            raise ConfigError(f"augment.variants must be >= 1, got {self.variants}")

    def to_augment(self) -> AugmentConfig:
        return AugmentConfig(**{f.name: getattr(self, f.name) for f in dataclasses.fields(AugmentConfig)})


@dataclass(frozen=True)
class DevChannel:
    """The line the dev audio goes through (fixed seed), so model selection sees telephone audio."""

    codec: str | None = "ulaw"
    seed: int = 0


@dataclass(frozen=True)
class OptimConfig:
    epochs: int = 30
    #: padded audio seconds per batch, and utterances per batch at most
    max_seconds: float = 240.0
    max_batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 300
    #: the learning rate decays (cosine) from lr to lr * final_lr_ratio at the last step
    final_lr_ratio: float = 0.05
    grad_clip: float = 5.0
    #: average the weights of the last N epoch checkpoints at the end (1: no averaging)
    average_last: int = 5
    #: stop when dev WER has not improved for this many epochs (0: never)
    patience: int = 0
    #: also checkpoint every N optimizer steps inside an epoch (0: only at epoch ends)
    checkpoint_every: int = 0
    num_workers: int = 2
    #: micro-batches per step and rank: each rank's share of a batch is cut into this many pieces whose
    #: gradients add up before the update (the same update, a fraction of the memory); see training.distributed
    accumulate: int = 1
    deterministic: bool = False
    #: mixed precision (bfloat16) on a GPU; ignored on a CPU
    amp: bool = True
    device: str = "auto"
    #: fine-tune: start from this model folder's weights and CMVN (its model config must equal [model]);
    #: "" trains from a random start. A path relative to the working directory, or "bundled:NAME" for a
    #: model shipped with gruasr (e.g. "bundled:telephone")
    init: str = ""
    #: fine-tuning only: the selection's candidates also include the start's weights moved towards the best
    #: epoch's, init + a * (best - init) for each a here (WiSE-FT, Wortsman et al. 2022: a fine-tune that keeps
    #: some of its start's robustness); dev chooses among all candidates. () adds none
    interpolate: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if any(not 0 < a < 1 for a in self.interpolate):
            raise ConfigError(f"train.interpolate: each weight must lie in (0, 1), got {self.interpolate}")
        if self.interpolate and not self.init:
            raise ConfigError("train.interpolate needs train.init: it interpolates between the start and the fine-tune")
        if self.epochs < 1 or self.max_batch < 1 or self.max_seconds <= 0 or self.lr <= 0:
            raise ConfigError("train: epochs, max_batch, max_seconds and lr must be positive")
        if not 0 < self.final_lr_ratio <= 1:
            raise ConfigError(f"train.final_lr_ratio must be in (0, 1], got {self.final_lr_ratio}")
        if self.accumulate < 1:
            raise ConfigError(f"train.accumulate must be >= 1, got {self.accumulate}")
        if self.average_last < 1:
            raise ConfigError(f"train.average_last must be >= 1, got {self.average_last}")


@dataclass(frozen=True)
class CmvnSection:
    #: causal per-leg mean normalization after the global CMVN, with this many frames of prior (0: off); saved
    #: with the model, so recognition applies it too (gruasr.features.cmvn.GlobalCMVN)
    leg_prior: int = 0

    def __post_init__(self) -> None:
        if self.leg_prior < 0:
            raise ConfigError(f"cmvn.leg_prior must be >= 0 frames, got {self.leg_prior}")


@dataclass(frozen=True)
class TrainConfig:
    sample_rate: int = 8000
    seed: int = 1
    data: DataConfig = field(default_factory=DataConfig)
    features: FbankConfig = field(default_factory=FbankConfig)
    augment: AugmentSection = field(default_factory=AugmentSection)
    specaugment: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    dev_channel: DevChannel = field(default_factory=DevChannel)
    cmvn: CmvnSection = field(default_factory=CmvnSection)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: OptimConfig = field(default_factory=OptimConfig)
    #: how `gruasr model bundle` builds the LM and lexicon (training does not use it)
    lm: LMRecipe = field(default_factory=LMRecipe)

    def __post_init__(self) -> None:
        if self.features.sample_rate != self.sample_rate:
            raise ConfigError(
                f"features.sample_rate ({self.features.sample_rate}) must equal sample_rate ({self.sample_rate})"
            )
        if self.model.input_dim != self.features.dim:
            raise ConfigError(
                f"model.input_dim ({self.model.input_dim}) must equal the feature dimension ({self.features.dim})"
            )

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _convert(kind: Any, value: Any, where: str) -> Any:
    """Turn TOML/JSON values into the field's declared type (lists into tuples, ints into floats, tables into
    dataclasses), with a clear error when they do not fit."""
    origin = typing.get_origin(kind)
    if dataclasses.is_dataclass(kind) and isinstance(kind, type):
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {value!r}")
        return build(kind, value, where)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(kind)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _convert(option, value, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is tuple:
        args = typing.get_args(kind)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(args[0], v, f"{where}[{i}]") for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where} must have {len(args)} entries, got {len(value)}")
        return tuple(_convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True)))
    if origin is dict or kind is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where} must be a table, got {value!r}")
        return dict(value)
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if kind is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if kind is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if kind is Any:
        return value
    raise ConfigError(f"{where}: unsupported type {kind!r}")


def build(cls: type[T], data: dict[str, Any], where: str = "config") -> T:
    """Build dataclass `cls` from a mapping; unknown keys are errors, missing keys take defaults."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown} (known: {sorted(names)})")
    kwargs = {k: _convert(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None


def _set(tree: dict[str, Any], dotted: str, raw: str) -> None:
    keys = dotted.split(".")
    if not all(keys):
        raise ConfigError(f"--set needs section.key=value, got {dotted!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw  # a bare word is a string
    node = tree
    for key in keys[:-1]:
        node = node.setdefault(key, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {dotted}: {key} is not a section")
    node[keys[-1]] = value


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def _read_recipe(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe's tree; `base = "other.toml"` (relative to this file) extends another recipe: its tables are
    merged key by key, and this file's values win."""
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: recipes extend each other in a circle")
    try:
        tree = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    base = tree.pop("base", None)
    if base is None:
        return tree
    if not isinstance(base, str):
        raise ConfigError(f"{path}: base must be a file name, got {base!r}")
    return _merge(_read_recipe(path.parent / base, (*seen, path.resolve())), tree)


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """Read a TOML recipe (None: all defaults) and apply `section.key=value` overrides (TOML values)."""
    tree: dict[str, Any] = _read_recipe(Path(path)) if path is not None else {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set needs section.key=value, got {item!r}")
        key, raw = item.split("=", 1)
        _set(tree, key.strip(), raw.strip())
    # Features follow the top-level sample rate unless they say otherwise.
    # Features follow the top-level sample rate, and the model's input the features, unless told otherwise.
    rate = tree.get("sample_rate", TrainConfig.sample_rate)
    features = tree.setdefault("features", {})
    if not isinstance(features, dict):
        raise ConfigError("config.features must be a table")
    features.setdefault("sample_rate", rate)
    model = tree.setdefault("model", {})
    if isinstance(model, dict):
        model.setdefault("input_dim", build(FbankConfig, features, "config.features").dim)
    return build(TrainConfig, tree, "config")


def config_from_json(text: str) -> TrainConfig:
    return build(TrainConfig, json.loads(text), "config")
