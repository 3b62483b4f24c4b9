"""Training checkpoints on disk: safetensors for tensors, JSON for everything else. No pickle.

A training checkpoint is a model folder (gruasr.bundle: loadable with `--model`) plus trainer.safetensors
(optimizer tensors, RNG state) and trainer.json (step, epoch, position in the epoch, optimizer scalars,
history). Every folder is written under a temporary name and renamed into place, so a kill -9 leaves either
the old checkpoint or the new one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gruasr.bundle import atomic_dir, commit_dir, write_json, write_model_files
from gruasr.errors import CheckpointError
from gruasr.models.ctc_model import CTCModel


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
    rank_rngs: list[torch.Tensor] | None = None,
) -> Path:
    """A loadable model directory plus the trainer's state, written atomically. `rank_rngs`: every rank's torch
    RNG state under torchrun (rank 0 writes them all); default: this process's."""
    tmp = atomic_dir(folder)
    write_model_files(tmp, **bundle_args)
    tensors, optim_meta = _flatten_optimizer(optimizer.state_dict())
    rngs = rank_rngs or [torch.get_rng_state()]
    tensors["rng.torch"] = rngs[0]
    for rank, rng in enumerate(rngs[1:], start=1):
        tensors[f"rng.torch.rank{rank}"] = rng
    trainer = {**trainer, "ranks": len(rngs)}
    save_file(tensors, str(tmp / "trainer.safetensors"))
    write_json(tmp / "trainer.json", {"trainer": trainer, "optimizer": optim_meta})
    return commit_dir(tmp, folder)


def load_checkpoint(
    folder: Path, model: CTCModel, optimizer: torch.optim.Optimizer, rank: int = 0, world: int = 1
) -> dict[str, Any]:
    """Restore model weights, optimizer and this rank's RNG state from a checkpoint; return the trainer dict.
    A checkpoint resumes under the number of ranks that wrote it (CheckpointError otherwise)."""
    try:
        state = load_file(str(folder / "model.safetensors"))
        tensors = load_file(str(folder / "trainer.safetensors"))
        meta = json.loads((folder / "trainer.json").read_text(encoding="utf-8"))
        model.load_state_dict(state)
        optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    except (OSError, SafetensorError, ValueError, KeyError, RuntimeError) as err:
        raise CheckpointError(f"{folder}: cannot resume from this checkpoint ({err})") from None
    trainer: dict[str, Any] = meta["trainer"]
    ranks = int(trainer.pop("ranks", 1))
    if ranks != world:
        raise CheckpointError(
            f"{folder}: written by a run of {ranks} rank(s); resume it with the same number (torchrun "
            f"--nproc-per-node and --nnodes), not {world}"
        )
    torch.set_rng_state(tensors["rng.torch" if rank == 0 else f"rng.torch.rank{rank}"])
    return trainer
