"""Models and training checkpoints on disk: safetensors for tensors, JSON for everything else. No pickle.

A model directory (what `gruasr.load_model` and `--model` read):
    model.safetensors   the CTC model's weights
    model.json          {"format": "gruasr-model", "model": ModelConfig, "features": FbankConfig, "cmvn": ...,
                         "tokens": [...], "sample_rate": ..., "training": {...}, "environment": {...}}
    lm.arpa, lexicon.txt  (optional) the language model and word list used by default when decoding

A training checkpoint is a model directory plus trainer.safetensors (optimizer tensors, RNG state) and
trainer.json (step, epoch, position in the epoch, optimizer scalars, history). Every directory is written
under a temporary name and renamed into place, so a kill -9 leaves either the old checkpoint or the new one.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gruasr.data.tokens import TokenTable
from gruasr.errors import CheckpointError, ConfigError
from gruasr.features.cmvn import GlobalCMVN
from gruasr.features.config import FbankConfig
from gruasr.models.ctc_model import CTCModel, ModelConfig

FORMAT = "gruasr-model"
VERSION = 1


@dataclass
class ModelBundle:
    """Everything needed to turn audio into log-probabilities, as one model directory holds it."""

    model: CTCModel
    features: FbankConfig
    cmvn: GlobalCMVN
    tokens: TokenTable
    meta: dict[str, Any]
    path: Path | None = None

    @property
    def sample_rate(self) -> int:
        return self.features.sample_rate


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_model_files(
    folder: Path,
    model: CTCModel,
    features: FbankConfig,
    cmvn: GlobalCMVN,
    tokens: TokenTable,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write model.safetensors and model.json into an existing folder."""
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(folder / "model.safetensors"))
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": model.config.to_dict(),
        "features": features.to_dict(),
        "cmvn": cmvn.to_dict(),
        "tokens": list(tokens.symbols),
        "sample_rate": features.sample_rate,
        **(extra or {}),
    }
    _write_json(folder / "model.json", meta)


def atomic_dir(final: Path) -> Path:
    """A fresh temporary sibling of `final` to fill, then pass to `commit_dir`."""
    tmp = final.with_name(f".{final.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def commit_dir(tmp: Path, final: Path) -> Path:
    """Replace `final` by `tmp` (a rename; the old one is removed after the new one is in place)."""
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    if old.exists():
        shutil.rmtree(old)
    return final


def save_model(
    folder: str | os.PathLike[str],
    model: CTCModel,
    features: FbankConfig,
    cmvn: GlobalCMVN,
    tokens: TokenTable,
    extra: dict[str, Any] | None = None,
    keep: tuple[str, ...] = ("lm.arpa", "lexicon.txt"),
) -> Path:
    """Write a model directory atomically (files named in `keep` that are already there stay)."""
    final = Path(folder)
    tmp = atomic_dir(final)
    write_model_files(tmp, model, features, cmvn, tokens, extra)
    for name in keep:
        if (final / name).is_file():
            shutil.copy2(final / name, tmp / name)
    return commit_dir(tmp, final)


def read_meta(folder: Path) -> dict[str, Any]:
    path = folder / "model.json"
    if not path.is_file():
        raise CheckpointError(f"{folder}: not a gruasr model (no model.json)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a gruasr model file")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: model format version {meta.get('version')}, this gruasr reads {VERSION}")
    return meta


def load_bundle(folder: str | os.PathLike[str], device: str | torch.device = "cpu") -> ModelBundle:
    """Read a model directory; every problem is a CheckpointError naming the file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"model not found: {folder}")
    meta = read_meta(folder)
    try:
        config = ModelConfig.from_dict(meta["model"])
        features = FbankConfig.from_dict(meta["features"])
        cmvn = GlobalCMVN.from_dict(meta["cmvn"], where=str(folder / "model.json"))
        tokens = TokenTable(tuple(meta["tokens"]))
    except (KeyError, TypeError, ConfigError) as err:
        raise CheckpointError(f"{folder / 'model.json'}: incomplete or invalid ({err})") from None
    if config.vocab_size != len(tokens) or config.input_dim != features.dim or cmvn.dim != features.dim:
        raise CheckpointError(f"{folder}: model, features, CMVN and tokens disagree on their sizes")
    weights = folder / "model.safetensors"
    try:
        state = load_file(str(weights))
    except (OSError, SafetensorError, ValueError) as err:
        raise CheckpointError(f"{weights}: cannot read weights ({err})") from None
    model = CTCModel(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in expected if k in state and state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{weights}: weights do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"wrong shape {wrong[:3]})"
        )
    model.load_state_dict(state)
    model.to(device).eval()
    return ModelBundle(model, features, cmvn.to(device), tokens, meta, folder)


# -- trainer state ------------------------------------------------------------------------------------------


def _flatten_optimizer(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for index, entry in state["state"].items():
        for name, value in entry.items():
            key = f"optim.{index}.{name}"
            if isinstance(value, torch.Tensor):
                tensors[key] = value.detach().cpu().contiguous()
            else:
                scalars[key] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    entries: dict[int, dict[str, Any]] = {}
    for key, value in [*tensors.items(), *meta["scalars"].items()]:
        if not key.startswith("optim."):
            continue
        _, index, name = key.split(".", 2)
        entries.setdefault(int(index), {})[name] = value
    return {"state": entries, "param_groups": meta["param_groups"]}


def save_checkpoint(
    folder: Path,
    bundle_args: dict[str, Any],
    optimizer: torch.optim.Optimizer,
    trainer: dict[str, Any],
) -> Path:
    """A loadable model directory plus the trainer's state, written atomically."""
    tmp = atomic_dir(folder)
    write_model_files(tmp, **bundle_args)
    tensors, optim_meta = _flatten_optimizer(optimizer.state_dict())
    tensors["rng.torch"] = torch.get_rng_state()
    save_file(tensors, str(tmp / "trainer.safetensors"))
    _write_json(tmp / "trainer.json", {"trainer": trainer, "optimizer": optim_meta})
    return commit_dir(tmp, folder)


def load_checkpoint(folder: Path, model: CTCModel, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """Restore model weights, optimizer and RNG state from a checkpoint; return the trainer dict."""
    try:
        state = load_file(str(folder / "model.safetensors"))
        tensors = load_file(str(folder / "trainer.safetensors"))
        meta = json.loads((folder / "trainer.json").read_text(encoding="utf-8"))
        model.load_state_dict(state)
        optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    except (OSError, SafetensorError, ValueError, KeyError, RuntimeError) as err:
        raise CheckpointError(f"{folder}: cannot resume from this checkpoint ({err})") from None
    torch.set_rng_state(tensors["rng.torch"])
    trainer: dict[str, Any] = meta["trainer"]
    return trainer
