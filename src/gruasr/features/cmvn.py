"""Global cepstral mean and variance normalisation (CMVN): one mean and one standard deviation per feature
dimension, measured over a training set, stored with the model, applied as (x - mean) / std.

Statistics are accumulated in float64 with the parallel form of Welford's algorithm (Chan, Golub and LeVeque
1979, "Updating formulae and a pairwise algorithm for computing sample variances"): each feature matrix gives its
own count, mean and sum of squared deviations, and these merge exactly, so long runs of large log energies lose
no precision to the cancellation in sum(x^2) - n * mean^2. The variance is the population variance (divisor n),
as Kaldi's apply-cmvn uses.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.errors import ConfigError, ShapeError
from gruasr.features.fbank import Fbank, Mfcc

FORMAT = "gruasr.cmvn"
VERSION = 1
#: default floor on the variance: log-mel variances are O(1); only a constant dimension comes near it
VARIANCE_FLOOR = 1e-6
_KEYS = ("format", "version", "dim", "count", "variance_floor", "mean", "std", "feature_config", "leg_prior")


class CmvnStats:
    """Running count, mean and sum of squared deviations (M2) per dimension, in float64."""

    def __init__(self, dim: int) -> None:
        if dim <= 0:
            raise ConfigError(f"CMVN dimension must be positive, got {dim}")
        self.dim = dim
        self.count = 0
        self.mean = np.zeros(dim, dtype=np.float64)
        self.m2 = np.zeros(dim, dtype=np.float64)

    def update(self, features: Tensor | np.ndarray) -> None:
        """Add the frames of one feature matrix (T, dim); T may be 0."""
        x = features.detach().cpu().double().numpy() if isinstance(features, Tensor) else np.asarray(features)
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ShapeError(f"CMVN expects features (T, {self.dim}), got shape {x.shape}")
        if x.shape[0] == 0:
            return
        x = x.astype(np.float64, copy=False)
        if not np.all(np.isfinite(x)):
            raise ShapeError("CMVN features contain NaN or infinite values")
        mean = x.mean(axis=0)
        m2 = np.square(x - mean).sum(axis=0)
        self._merge(x.shape[0], mean, m2)

    def merge(self, other: CmvnStats) -> None:
        """Add another accumulator's frames (e.g. from another worker)."""
        if other.dim != self.dim:
            raise ShapeError(f"cannot merge CMVN stats of dimension {other.dim} into {self.dim}")
        if other.count:
            self._merge(other.count, other.mean, other.m2)

    def _merge(self, n: int, mean: np.ndarray, m2: np.ndarray) -> None:
        total = self.count + n
        delta = mean - self.mean
        self.mean = self.mean + delta * (n / total)
        self.m2 = self.m2 + m2 + np.square(delta) * (self.count * n / total)
        self.count = total

    @property
    def variance(self) -> np.ndarray:
        """Population variance (dim,) float64."""
        if self.count == 0:
            raise ConfigError("CMVN statistics are empty: no frames were accumulated")
        return self.m2 / self.count

    def to_cmvn(self, variance_floor: float = VARIANCE_FLOOR) -> GlobalCMVN:
        std = np.sqrt(np.maximum(self.variance, variance_floor))
        return GlobalCMVN(self.mean, std, count=self.count)


def leg_normalize(x: Tensor, prior: int, total: Tensor, count: int) -> tuple[Tensor, Tensor, int]:
    """Frames x (..., T, F) of a leg minus its running mean, shrunk towards 0 (the global mean) by `prior`
    frames: frame t becomes x_t - (total + x_1 + ... + x_t) / (prior + count + t), where `total` (F,) and `count`
    are the sum and number of the leg's frames before x (zeros and 0: x starts the leg). Returns the normalized
    frames and the leg's new sum and count, to carry into its next frames."""
    if not x.shape[-2]:
        return x, total, count
    sums = total + x.cumsum(-2)
    t = count + torch.arange(1, x.shape[-2] + 1, device=x.device, dtype=x.dtype)
    return x - sums / (prior + t)[:, None], sums[..., -1, :], count + x.shape[-2]


class GlobalCMVN(nn.Module):
    """Applies (x - mean) / std over the last dimension: x (..., dim) -> (..., dim), same dtype and device.

    std is floored at sqrt(variance_floor) when built, so a constant dimension maps to 0 instead of inf.
    mean and std are buffers (saved in a state dict and moved by .to()); `count` says how many frames made them.
    `feature_config`, when given, says which features the statistics belong to ({"kind": "fbank" | "mfcc",
    "config": FbankConfig/MfccConfig.to_dict()}, as compute_cmvn records it) and is saved with them.

    `leg_prior` P > 0 adds causal per-leg mean normalization after the global one (one call leg is one speaker
    and one line): frame t of a sequence minus the running mean of its frames 1..t, shrunk towards the global
    mean by P frames of prior, (x_1 + ... + x_t) / (P + t); no lookahead. forward() applies it along the time
    axis of each sequence it is given (one utterance, or a batch of left-aligned ones: padding at the end does not
    reach real frames); a stream carries the sums across its chunks and utterances (StreamingRecognizer)."""

    mean: Tensor
    std: Tensor

    def __init__(
        self,
        mean: Tensor | np.ndarray | list[float],
        std: Tensor | np.ndarray | list[float],
        variance_floor: float = VARIANCE_FLOOR,
        count: int = 0,
        feature_config: dict[str, Any] | None = None,
        leg_prior: int = 0,
    ) -> None:
        super().__init__()
        m = torch.as_tensor(np.asarray(mean, dtype=np.float64))
        s = torch.as_tensor(np.asarray(std, dtype=np.float64))
        if m.ndim != 1 or s.shape != m.shape or m.numel() == 0:
            raise ShapeError(f"CMVN mean and std must be 1-D of one length, got {tuple(m.shape)} and {tuple(s.shape)}")
        if not (torch.isfinite(m).all() and torch.isfinite(s).all()):
            raise ConfigError("CMVN mean and std must be finite")
        if (s < 0).any():
            raise ConfigError("CMVN std must be non-negative")
        if not (variance_floor > 0 and math.isfinite(variance_floor)):
            raise ConfigError(f"CMVN variance_floor must be positive, got {variance_floor}")
        if isinstance(leg_prior, bool) or not isinstance(leg_prior, int) or leg_prior < 0:
            raise ConfigError(f"CMVN leg_prior must be a non-negative integer (frames), got {leg_prior!r}")
        self.variance_floor = float(variance_floor)
        self.leg_prior = leg_prior
        self.count = int(count)
        self.feature_config = feature_config
        self.register_buffer("mean", m.float())  # (dim,)
        self.register_buffer("std", s.clamp_min(math.sqrt(variance_floor)).float())  # (dim,)

    @property
    def dim(self) -> int:
        return int(self.mean.shape[0])

    def forward(self, x: Tensor) -> Tensor:
        """x (..., T, F) -> normalized; with leg_prior, each sequence along dim -2 is one leg from its start."""
        x = self.normalize(x)
        if self.leg_prior:
            if x.ndim < 2:
                raise ShapeError(f"CMVN with leg_prior needs (..., T, F) features, got shape {tuple(x.shape)}")
            x = leg_normalize(x, self.leg_prior, x.new_zeros(x.shape[-1]), 0)[0]
        return x

    def normalize(self, x: Tensor) -> Tensor:
        """The global part only: (x - mean) / std, frame by frame."""
        if x.shape[-1] != self.dim:
            raise ShapeError(f"CMVN of dimension {self.dim} applied to features of shape {tuple(x.shape)}")
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def with_leg_prior(self, leg_prior: int) -> GlobalCMVN:
        """The same statistics with another leg_prior (0: global normalization only)."""
        return GlobalCMVN(
            self.mean.cpu(), self.std.cpu(), self.variance_floor, self.count, self.feature_config, leg_prior
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "dim": self.dim,
            "count": self.count,
            "variance_floor": self.variance_floor,
            "mean": [float(v) for v in self.mean.cpu()],
            "std": [float(v) for v in self.std.cpu()],
            "feature_config": self.feature_config,
            **({"leg_prior": self.leg_prior} if self.leg_prior else {}),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the statistics as JSON (atomically: temp file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
        return path

    @classmethod
    def from_dict(cls, data: Any, where: str = "CMVN") -> GlobalCMVN:
        """Build from to_dict's output, checking every field; ConfigError names `where` and the problem."""
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a JSON object, got {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise ConfigError(f"{where}: not a CMVN file (format {data.get('format')!r}, expected {FORMAT!r})")
        if data.get("version") != VERSION:
            raise ConfigError(f"{where}: unsupported CMVN version {data.get('version')!r} (expected {VERSION})")
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise ConfigError(f"{where}: unknown keys {unknown}")
        dim = data.get("dim")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
            raise ConfigError(f"{where}: dim must be a positive integer, got {dim!r}")
        vectors = {}
        for key in ("mean", "std"):
            values = data.get(key)
            if not isinstance(values, list) or len(values) != dim:
                raise ConfigError(f"{where}: {key} must be a list of {dim} numbers")
            if not all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in values):
                raise ConfigError(f"{where}: {key} holds a value that is not a finite number")
            vectors[key] = values
        if any(v <= 0 for v in vectors["std"]):
            raise ConfigError(f"{where}: std must be positive")
        count = data.get("count", 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ConfigError(f"{where}: count must be a non-negative integer, got {count!r}")
        floor = data.get("variance_floor", VARIANCE_FLOOR)
        if isinstance(floor, bool) or not isinstance(floor, int | float) or not (floor > 0 and math.isfinite(floor)):
            raise ConfigError(f"{where}: variance_floor must be a positive number, got {floor!r}")
        feature_config = data.get("feature_config")
        if feature_config is not None and not isinstance(feature_config, dict):
            raise ConfigError(f"{where}: feature_config must be an object or null")
        leg_prior = data.get("leg_prior", 0)
        if isinstance(leg_prior, bool) or not isinstance(leg_prior, int) or leg_prior < 0:
            raise ConfigError(f"{where}: leg_prior must be a non-negative integer, got {leg_prior!r}")
        return cls(vectors["mean"], vectors["std"], float(floor), count, feature_config, leg_prior)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> GlobalCMVN:
        """Read a file written by save(); ConfigError (naming the file) if it is missing or malformed."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"CMVN file not found: {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConfigError(f"{path}: not valid JSON ({err})") from None
        return cls.from_dict(data, where=str(path))


def compute_cmvn(
    manifest_path: str | os.PathLike[str],
    fbank: Fbank | Mfcc,
    sample_rate: int,
    max_utterances: int | None = None,
    progress: bool = True,
    variance_floor: float = VARIANCE_FLOOR,
) -> GlobalCMVN:
    """Global CMVN over the utterances of a manifest (the first max_utterances, if given): each is loaded at
    sample_rate Hz (resampled if needed; must equal the features' rate), turned into features, accumulated.
    Progress goes to stderr. The result carries the feature config, to be saved with the model."""
    if sample_rate != fbank.frame_config.sample_rate:
        raise ConfigError(f"sample_rate {sample_rate} differs from the features' {fbank.frame_config.sample_rate} Hz")
    if max_utterances is not None and max_utterances <= 0:
        raise ConfigError(f"max_utterances must be positive, got {max_utterances}")
    utts = read_manifest(manifest_path)[:max_utterances]
    if not utts:
        raise ConfigError(f"{manifest_path}: no utterances")
    stats = CmvnStats(fbank.dim)
    generator = torch.Generator(device=fbank.device).manual_seed(0) if fbank.frame_config.dither > 0 else None

    def accumulate(utt: Any) -> None:
        with torch.inference_mode():
            stats.update(fbank(load_utterance(utt, sample_rate), generator))

    if progress:
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(stderr=True), transient=True) as bar:
            task = bar.add_task("CMVN", total=len(utts))
            for utt in utts:
                accumulate(utt)
                bar.advance(task)
    else:
        for utt in utts:
            accumulate(utt)
    cmvn = stats.to_cmvn(variance_floor)
    kind = "mfcc" if isinstance(fbank, Mfcc) else "fbank"
    cmvn.feature_config = {"kind": kind, "config": fbank.config.to_dict()}
    return cmvn
