"""A model folder on disk: load, save and verify. Safetensors for tensors, JSON for everything else; no pickle.

    model.safetensors   the CTC model's weights (float32, or float16 in the bundled models: read back as float32)
    model.json          {"format": "gruasr-model", "version": 1, "model": ModelConfig, "features": FbankConfig,
                         "cmvn": GlobalCMVN, "tokens": [...], "sample_rate": Hz, "weights_sha256": hex digest of
                         model.safetensors, "decoding": {method, use_lm, beam_size, lm_weight, word_bonus},
                         "training": {...}, "environment": {...}}
    lm.arpa, lexicon.txt  (optional) the language model and word list used by default when decoding

    from gruasr.bundle import load_bundle, verify
    bundle = load_bundle("runs/telephone/model", device="cpu")   # model, features, CMVN, tokens, meta
    verify("src/gruasr/pretrained/telephone")                    # sizes, shapes and checksum, or CheckpointError

Every folder is written under a temporary name and renamed into place, so a kill -9 leaves either the old
folder or the new one. Both recognizers, training, the study and the CLI read and write models through here;
nothing here imports training code.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from gruasr.data.tokens import TokenTable
from gruasr.decoding.beam import BeamConfig, Lexicon
from gruasr.decoding.lm import NGramLM
from gruasr.errors import CheckpointError, ConfigError
from gruasr.features.cmvn import GlobalCMVN
from gruasr.features.config import FbankConfig
from gruasr.models.ctc_model import SUBSAMPLING, CTCModel, ModelConfig

FORMAT = "gruasr-model"
VERSION = 1
WEIGHTS = "model.safetensors"
META = "model.json"
LM = "lm.arpa"
LEXICON = "lexicon.txt"
#: the models that ship inside the package (src/gruasr/pretrained/NAME)
PRETRAINED = Path(__file__).resolve().parent / "pretrained"


@dataclass(frozen=True)
class DecodeOptions:
    """How to decode: "greedy", or "beam" (with the LM and lexicon when `use_lm` and they exist)."""

    method: str = "beam"
    beam: BeamConfig = field(default_factory=BeamConfig)
    use_lm: bool = True

    def __post_init__(self) -> None:
        if self.method not in ("greedy", "beam"):
            raise ConfigError(f"decoding method must be 'greedy' or 'beam', got {self.method!r}")


def model_decoding(meta: dict[str, Any], **overrides: object) -> DecodeOptions:
    """The decoding options a model folder recommends (model.json "decoding", tuned on dev when bundled), with
    `overrides` applied: method, use_lm, beam_size, lm_weight, word_bonus (None values are ignored)."""
    saved = meta.get("decoding")
    settings: dict[str, Any] = dict(saved) if isinstance(saved, dict) else {}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    try:
        beam = BeamConfig(
            beam_size=int(settings.get("beam_size", 16)),
            lm_weight=float(settings.get("lm_weight", 0.5)),
            word_bonus=float(settings.get("word_bonus", 1.0)),
        )
    except (TypeError, ValueError) as err:
        raise ConfigError(f"decoding settings {settings}: {err}") from None
    return DecodeOptions(str(settings.get("method", "beam")), beam, bool(settings.get("use_lm", True)))


@dataclass
class ModelBundle:
    """Everything needed to turn audio into log-probabilities, as one model folder holds it."""

    model: CTCModel
    features: FbankConfig
    cmvn: GlobalCMVN
    tokens: TokenTable
    meta: dict[str, Any]
    path: Path | None = None

    @property
    def sample_rate(self) -> int:
        """The model's input rate, Hz."""
        return self.features.sample_rate

    @property
    def frame_seconds(self) -> float:
        """Seconds between feature frames (the feature config's frame shift)."""
        return frame_seconds(self.features)

    @property
    def step_seconds(self) -> float:
        """Seconds between the model's output frames (the frame shift times the subsampling)."""
        return SUBSAMPLING * self.frame_seconds

    @property
    def device(self) -> torch.device:
        """Where the model's parameters are (the CMVN is kept there too)."""
        return next(self.model.parameters()).device

    def to(self, device: str | torch.device) -> ModelBundle:
        """Move the model and CMVN to `device` (in place); returns self."""
        self.model.to(device)
        self.cmvn.to(device)
        return self

    @property
    def lm_path(self) -> Path | None:
        """The folder's lm.arpa, or None."""
        return self.path / LM if self.path is not None and (self.path / LM).is_file() else None

    @property
    def lexicon_path(self) -> Path | None:
        """The folder's lexicon.txt, or None."""
        return self.path / LEXICON if self.path is not None and (self.path / LEXICON).is_file() else None

    def decoding(self, **overrides: object) -> DecodeOptions:
        """The model's recommended decoding options (model.json "decoding"), with overrides; see model_decoding."""
        return model_decoding(self.meta, **overrides)

    def language_model(
        self, lm: str | os.PathLike[str] | None = None, lexicon: str | os.PathLike[str] | None = None
    ) -> tuple[NGramLM | None, Lexicon | None]:
        """The LM and lexicon to decode with: the named files, else the folder's own; without a lexicon file the
        LM's words are the lexicon. (None, None) when there is neither."""
        lm_path = Path(lm) if lm is not None else self.lm_path
        language_model = NGramLM.from_arpa(lm_path) if lm_path is not None else None
        lex_path = Path(lexicon) if lexicon is not None else self.lexicon_path
        if lex_path is not None:
            return language_model, Lexicon.from_file(str(lex_path))
        return language_model, Lexicon(language_model.vocab) if language_model is not None else None


def frame_seconds(features: FbankConfig) -> float:
    """Seconds between feature frames of `features` (frame_shift_ms / 1000)."""
    return features.frame_shift_ms / 1000.0


def bundled(name: str = "telephone") -> Path:
    """The folder of a model shipped in the package (telephone, telephone-streaming); CheckpointError if a
    trimmed install lacks it."""
    folder = PRETRAINED / name
    if not (folder / META).is_file():
        raise CheckpointError(f"the bundled model {name!r} is missing from {folder}; give a model folder")
    return folder


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_model_files(
    folder: Path,
    model: CTCModel,
    features: FbankConfig,
    cmvn: GlobalCMVN,
    tokens: TokenTable,
    extra: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float32,
) -> None:
    """Write model.safetensors (floating tensors as `dtype`) and model.json, with the weights' checksum, into an
    existing folder."""
    state = {
        k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
        for k, v in model.state_dict().items()
    }
    save_file(state, str(folder / WEIGHTS))
    meta = {
        **(extra or {}),
        "format": FORMAT,
        "version": VERSION,
        "model": model.config.to_dict(),
        "features": features.to_dict(),
        "cmvn": cmvn.to_dict(),
        "tokens": list(tokens.symbols),
        "sample_rate": features.sample_rate,
        "weights_sha256": sha256(folder / WEIGHTS),
    }
    write_json(folder / META, meta)


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
    keep: tuple[str, ...] = (LM, LEXICON),
) -> Path:
    """Write a model folder atomically (files named in `keep` that are already there stay)."""
    final = Path(folder)
    tmp = atomic_dir(final)
    write_model_files(tmp, model, features, cmvn, tokens, extra)
    for name in keep:
        if (final / name).is_file():
            shutil.copy2(final / name, tmp / name)
    return commit_dir(tmp, final)


def read_meta(folder: Path) -> dict[str, Any]:
    """model.json of a model folder, its format and version checked."""
    path = folder / META
    if not path.is_file():
        raise CheckpointError(f"{folder}: not a gruasr model (no {META})")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a gruasr model file")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: model format version {meta.get('version')}, this gruasr reads {VERSION}")
    return meta


def record_checksum(folder: Path) -> str:
    """(Re)write model.json's weights_sha256 for the folder's current model.safetensors; returns it."""
    meta = read_meta(folder)
    meta["weights_sha256"] = sha256(folder / WEIGHTS)
    write_json(folder / META, meta)
    return str(meta["weights_sha256"])


def _parts(folder: Path, meta: dict[str, Any]) -> tuple[ModelConfig, FbankConfig, GlobalCMVN, TokenTable]:
    try:
        config = ModelConfig.from_dict(meta["model"])
        features = FbankConfig.from_dict(meta["features"])
        cmvn = GlobalCMVN.from_dict(meta["cmvn"], where=str(folder / META))
        tokens = TokenTable(tuple(meta["tokens"]))
    except (KeyError, TypeError, ConfigError) as err:
        raise CheckpointError(f"{folder / META}: incomplete or invalid ({err})") from None
    if config.vocab_size != len(tokens) or config.input_dim != features.dim or cmvn.dim != features.dim:
        raise CheckpointError(
            f"{folder}: model, features, CMVN and tokens disagree on their sizes (model input {config.input_dim}, "
            f"features {features.dim}, CMVN {cmvn.dim}; model output {config.vocab_size}, tokens {len(tokens)})"
        )
    return config, features, cmvn, tokens


def _weights(folder: Path, meta: dict[str, Any], model: CTCModel) -> dict[str, torch.Tensor]:
    """The checked weights: checksum (when model.json records one), names and shapes against `model`."""
    path = folder / WEIGHTS
    if not path.is_file():
        raise CheckpointError(f"{path}: missing")
    recorded = meta.get("weights_sha256")
    if recorded is not None and sha256(path) != recorded:
        raise CheckpointError(f"{path}: checksum mismatch (model.json records {recorded}): corrupt or replaced")
    try:
        state = load_file(str(path))
    except (OSError, SafetensorError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot read weights ({err})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = sorted(k for k in expected if k in state and state[k].shape != expected[k].shape)
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{path}: weights do not fit the model (missing {missing[:3]}, unexpected {unexpected[:3]}, "
            f"wrong shape {wrong[:3]})"
        )
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


def load_bundle(folder: str | os.PathLike[str], device: str | torch.device = "cpu") -> ModelBundle:
    """Read and verify a model folder (see `verify`) and put the model and CMVN on `device`, in eval mode.
    Every problem is a CheckpointError naming the file."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"model not found: {folder}")
    meta = read_meta(folder)
    config, features, cmvn, tokens = _parts(folder, meta)
    model = CTCModel(config)
    model.load_state_dict(_weights(folder, meta, model))
    model.to(device).eval()
    return ModelBundle(model, features, cmvn.to(device), tokens, meta, folder)


def verify(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """Check a model folder without keeping it: model.json's format, the sizes of model, features, CMVN and
    tokens agree, the weights' checksum (when recorded), names and shapes, and that the LM and lexicon (when
    present) read. Returns a summary; raises CheckpointError (or AudioFormat/ConfigError of the LM) otherwise."""
    bundle = load_bundle(folder)
    lm, lexicon = bundle.language_model()
    return {
        "path": str(bundle.path),
        "parameters": bundle.model.num_parameters(),
        "sample_rate": bundle.sample_rate,
        "frame_seconds": bundle.frame_seconds,
        "tokens": len(bundle.tokens),
        "weights_sha256": bundle.meta.get("weights_sha256"),
        "lm": str(bundle.lm_path) if lm is not None else None,
        "lexicon_words": len(lexicon.words) if lexicon is not None else None,
        "decoding": bundle.meta.get("decoding"),
    }
