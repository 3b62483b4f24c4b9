"""A model folder on disk: load, save and verify. Safetensors for tensors, JSON for everything else; no pickle.

    model.safetensors   the CTC model's weights (float32, or float16 in the bundled models: read back as float32)
    model.json          {"format": "gruasr-model", "version": 1, "model": ModelConfig, "features": FbankConfig,
                         "cmvn": GlobalCMVN, "tokens": [...], "sample_rate": Hz, "weights_sha256": hex digest of
                         model.safetensors, "decoding": {method, use_lm, beam_size, lm_weight, word_bonus},
                         "training": {...}, "environment": {...}}
    lm.arpa, lexicon.txt  (optional) the language model and word list used by default when decoding
    RECIPE.md           (bundled models) how the model was made
    checksums.sha256    the SHA-256 of every other file, as `sha256sum` writes it (gruasr.integrity)
    checksums.sha256.sig  (optional) an Ed25519 signature of checksums.sha256

    from gruasr.bundle import load_bundle, verify
    bundle = load_bundle("runs/telephone/model", device="cpu")   # model, features, CMVN, tokens, meta
    verify("src/gruasr/pretrained/telephone")                    # manifest, sizes, shapes, LM, or CheckpointError
    load_bundle(folder, trusted_keys=["release.pub"])            # only if signed by that key

Verified models: loading checks the folder against its manifest before it parses anything, and refuses a
missing manifest, a file listed but missing, a file present but not listed, a subfolder, a symbolic link, a
malformed manifest and any file whose bytes changed (CheckpointError naming the file and what to do). The
bytes of model.json, model.safetensors, lm.arpa and lexicon.txt are hashed as they are read for parsing, so
what was checked is what is used. With trusted keys, only a folder whose manifest one of them signed loads.
A folder made before manifests gets one with `gruasr model manifest DIR` (for folders you trust); keys with
`gruasr model keygen`, signatures with `gruasr model sign`. Weights are never unpickled: safetensors only.

Every folder is written under a temporary name, its manifest written last, and renamed into place (swapped with
the old one in one step on Linux), so a kill -9 leaves either the old folder or the new one and a reader never
finds it missing. Both recognizers, training, the study and the CLI read and
write models through here; nothing here imports training code.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save_file

from gruasr.data.tokens import TokenTable
from gruasr.decoding.beam import Lexicon
from gruasr.decoding.lm import NGramLM
from gruasr.errors import CheckpointError, ConfigError
from gruasr.features.cmvn import GlobalCMVN
from gruasr.features.config import FbankConfig
from gruasr.integrity import MANIFEST, CheckedFolder, TrustedKey, check_folder, sha256, write_manifest
from gruasr.models.ctc_model import SUBSAMPLING, CTCModel, ModelConfig
from gruasr.transcription import DecodeOptions, model_decoding

FORMAT = "gruasr-model"
VERSION = 1
WEIGHTS = "model.safetensors"
META = "model.json"
LM = "lm.arpa"
LEXICON = "lexicon.txt"
#: the models that ship inside the package (src/gruasr/pretrained/NAME)
PRETRAINED = Path(__file__).resolve().parent / "pretrained"


@dataclass
class ModelBundle:
    """Everything needed to turn audio into log-probabilities, as one model folder holds it."""

    model: CTCModel
    features: FbankConfig
    cmvn: GlobalCMVN
    tokens: TokenTable
    meta: dict[str, Any]
    path: Path | None = None
    #: the folder's checked files (load_bundle): the LM and lexicon are read through it, hashed as read
    files: CheckedFolder | None = field(default=None, repr=False)

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
        """The LM and lexicon to decode with: the named files, else the folder's own (read through the checked
        folder: the bytes parsed are the bytes hashed); without a lexicon file the LM's words are the lexicon.
        (None, None) when there is neither. Files named here are the caller's, read as they are."""
        language_model, words = None, None
        if lm is not None:
            language_model = NGramLM.from_arpa(lm)
        elif self.lm_path is not None:
            language_model = NGramLM.from_arpa_text(self._text(LM), str(self.lm_path))
        if lexicon is not None:
            words = Lexicon.from_file(str(lexicon))
        elif self.lexicon_path is not None:
            words = Lexicon.from_text(self._text(LEXICON))
        elif language_model is not None:
            words = Lexicon(language_model.vocab)
        return language_model, words

    def _text(self, name: str) -> str:
        if self.files is None:  # a bundle made in memory with a path: nothing was checked to read through
            return (Path(self.path or ".") / name).read_text(encoding="utf-8", errors="replace")
        data = self.files.read(name)
        return data.decode("utf-8", errors="replace")


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
    existing folder, then its manifest (of every file there: commit_dir rewrites it when more files follow)."""
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
    write_manifest(folder)


def atomic_dir(final: Path) -> Path:
    """A fresh temporary sibling of `final` to fill, then pass to `commit_dir`."""
    tmp = final.with_name(f".{final.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    return tmp


def commit_dir(tmp: Path, final: Path, manifest: bool = True) -> Path:
    """Replace `final` by `tmp`, after writing tmp's manifest (of every file in it: a model folder is only ever
    committed with one). An existing `final` is swapped with `tmp` in one step where the system can (Linux:
    renameat2 RENAME_EXCHANGE), so a reader or a kill -9 never finds `final` missing, then removed; elsewhere it
    is moved aside first, leaving a moment without one."""
    if manifest:
        write_manifest(tmp)
    if not final.exists():
        os.replace(tmp, final)
        return final
    if _exchange(tmp, final):
        shutil.rmtree(tmp)  # now the old folder
        return final
    old = final.with_name(f".{final.name}.old")
    if old.exists():
        shutil.rmtree(old)
    os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old)
    return final


def _exchange(a: Path, b: Path) -> bool:
    """Swap two existing paths atomically (renameat2 with RENAME_EXCHANGE, Linux 3.15+, glibc 2.28+); False where
    the system or its file system cannot."""
    if not sys.platform.startswith("linux"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(b))


def save_model(
    folder: str | os.PathLike[str],
    model: CTCModel,
    features: FbankConfig,
    cmvn: GlobalCMVN,
    tokens: TokenTable,
    extra: dict[str, Any] | None = None,
    keep: tuple[str, ...] = (LM, LEXICON),
) -> Path:
    """Write a model folder atomically, with its manifest (files named in `keep` that are already there stay)."""
    final = Path(folder)
    tmp = atomic_dir(final)
    write_model_files(tmp, model, features, cmvn, tokens, extra)
    for name in keep:
        if (final / name).is_file():
            shutil.copy2(final / name, tmp / name)
    return commit_dir(tmp, final)


def read_meta(folder: Path) -> dict[str, Any]:
    """model.json of a model folder, its format and version checked (read as it is: load_bundle checks it)."""
    path = folder / META
    if not path.is_file():
        raise CheckpointError(f"{folder}: not a gruasr model (no {META})")
    return _parse_meta(path, path.read_bytes())


def _parse_meta(path: Path, data: bytes) -> dict[str, Any]:
    try:
        meta = json.loads(data.decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path}: not valid JSON ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a gruasr model file")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path}: model format version {meta.get('version')}, this gruasr reads {VERSION}")
    return meta


def record_checksum(folder: Path) -> str:
    """(Re)write model.json's weights_sha256 for the folder's current model.safetensors, and the folder's
    manifest: this trusts the files as they are. Returns the weights' checksum."""
    meta = read_meta(folder)
    meta["weights_sha256"] = sha256(folder / WEIGHTS)
    write_json(folder / META, meta)
    write_manifest(folder)
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


def _weights(files: CheckedFolder, meta: dict[str, Any], model: CTCModel) -> dict[str, torch.Tensor]:
    """The checked weights: read once and hashed (the manifest, and model.json's checksum when it records one),
    then names and shapes against `model`."""
    path = files.path / WEIGHTS
    if not files.has(WEIGHTS):
        raise CheckpointError(f"{path}: missing")
    data = files.read(WEIGHTS)
    recorded = meta.get("weights_sha256")
    if recorded is not None and hashlib.sha256(data).hexdigest() != recorded:
        raise CheckpointError(f"{path}: checksum mismatch (model.json records {recorded}): corrupt or replaced")
    try:
        state = load(data)
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


def load_bundle(
    folder: str | os.PathLike[str],
    device: str | torch.device = "cpu",
    *,
    trusted_keys: Sequence[TrustedKey] | TrustedKey | None = None,
    allow_missing_manifest: bool = False,
) -> ModelBundle:
    """Read and verify a model folder (see `verify`) and put the model and CMVN on `device`, in eval mode.
    The folder is checked against its manifest (checksums.sha256) before anything is parsed, and model.json and
    the weights are hashed as they are read; with `trusted_keys` (PEM public key files or Ed25519PublicKey
    objects) the manifest must be signed by one of them. `allow_missing_manifest` is for re-bundling a training
    run written before manifests (`gruasr model bundle`), never for recognition. Every problem is a
    CheckpointError naming the file (a ConfigError for an unreadable trusted key)."""
    folder = Path(folder)
    if folder.is_dir() and not (folder / META).exists() and not (folder / MANIFEST).exists():
        raise CheckpointError(f"{folder}: not a gruasr model (no {META})")
    files = check_folder(folder, trusted_keys, deferred=(META, WEIGHTS), allow_missing_manifest=allow_missing_manifest)
    if not files.has(META):
        raise CheckpointError(f"{folder}: not a gruasr model (no {META})")
    meta = _parse_meta(folder / META, files.read(META))
    config, features, cmvn, tokens = _parts(folder, meta)
    model = CTCModel(config)
    model.load_state_dict(_weights(files, meta, model))
    model.to(device).eval()
    return ModelBundle(model, features, cmvn.to(device), tokens, meta, folder, files)


def verify(
    folder: str | os.PathLike[str], trusted_keys: Sequence[TrustedKey] | TrustedKey | None = None
) -> dict[str, Any]:
    """Check a model folder without keeping it: every file against the manifest (and its signature by one of
    `trusted_keys`, when given), model.json's format, the sizes of model, features, CMVN and tokens agree, the
    weights' checksum (when recorded), names and shapes, and that the LM and lexicon (when present) read.
    Returns a summary; raises CheckpointError (or AudioFormat/ConfigError of the LM) otherwise."""
    bundle = load_bundle(folder, trusted_keys=trusted_keys)
    lm, lexicon = bundle.language_model()
    files = bundle.files
    return {
        "path": str(bundle.path),
        "files": sorted(files.digests) if files is not None and files.digests is not None else None,
        "signed_by": files.signed_by if files is not None else None,
        "signature_present": files.signature_present if files is not None else False,
        "parameters": bundle.model.num_parameters(),
        "sample_rate": bundle.sample_rate,
        "frame_seconds": bundle.frame_seconds,
        "tokens": len(bundle.tokens),
        "weights_sha256": bundle.meta.get("weights_sha256"),
        "lm": str(bundle.lm_path) if lm is not None else None,
        "lexicon_words": len(lexicon.words) if lexicon is not None else None,
        "decoding": bundle.meta.get("decoding"),
    }
