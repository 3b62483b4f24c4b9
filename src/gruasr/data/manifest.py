"""Manifests: JSON Lines, one utterance a line (see DESIGN.md).

    {"id": str, "audio": path, "text": str}  plus optional  "start", "duration" (seconds), "channel" (int),
    "speaker" (str), "sample_rate" (int), "encoding" (raw PCM spec such as "s16be", for headerless files)

A relative `audio` path is relative to the manifest file. Text is lower-case words separated by single spaces.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from gruasr.audio.io import RawFormat, load_audio
from gruasr.errors import ConfigError

_KEYS = ("id", "audio", "text", "start", "duration", "channel", "speaker", "sample_rate", "encoding")


@dataclass(frozen=True)
class Utterance:
    """One manifest line. `audio` is an absolute path once read through read_manifest."""

    id: str
    audio: str
    text: str
    start: float | None = None
    duration: float | None = None
    channel: int | None = None
    speaker: str | None = None
    sample_rate: int | None = None
    encoding: str | None = None

    @property
    def raw_format(self) -> RawFormat | None:
        """How to read a headerless file, from `encoding` and `sample_rate`; None for files with a header."""
        if self.encoding is None:
            return None
        if self.sample_rate is None:
            raise ConfigError(f"utterance {self.id}: raw encoding {self.encoding!r} needs a sample_rate")
        return RawFormat.parse(self.encoding, self.sample_rate)

    def to_json(self) -> str:
        return json.dumps({k: v for k, v in asdict(self).items() if v is not None}, ensure_ascii=False)


def normalize_text(text: str) -> str:
    """Lower case, single spaces, no leading or trailing space."""
    return " ".join(text.lower().split())


def _parse_line(line: str, where: str, base: Path) -> Utterance:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise ConfigError(f"{where}: not valid JSON ({err.msg})") from None
    if not isinstance(obj, dict):
        raise ConfigError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    missing = [k for k in ("id", "audio", "text") if not isinstance(obj.get(k), str)]
    if missing:
        raise ConfigError(f"{where}: missing or non-string {', '.join(missing)}")
    unknown = sorted(set(obj) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}")
    for key, kind in (("start", (int, float)), ("duration", (int, float)), ("channel", int), ("sample_rate", int)):
        value = obj.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, kind)):
            raise ConfigError(f"{where}: {key} must be a number, got {value!r}")
    audio = Path(obj["audio"])
    obj["audio"] = str(audio) if audio.is_absolute() else os.path.normpath(base / audio)
    return Utterance(**obj)


def iter_manifest(path: str | os.PathLike[str]) -> Iterator[Utterance]:
    """Utterances of a manifest, one at a time; blank lines are skipped, bad lines raise ConfigError."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"manifest not found: {path}")
    base = path.resolve().parent
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                yield _parse_line(line, f"{path}:{number}", base)


def read_manifest(path: str | os.PathLike[str]) -> list[Utterance]:
    """All utterances of a manifest; ids must be unique."""
    utts = list(iter_manifest(path))
    seen: set[str] = set()
    for u in utts:
        if u.id in seen:
            raise ConfigError(f"{path}: duplicate utterance id {u.id!r}")
        seen.add(u.id)
    return utts


def write_manifest(path: str | os.PathLike[str], utts: Iterable[Utterance], relative: bool = True) -> Path:
    """Write utterances as JSON Lines, atomically. With `relative`, audio inside the manifest's folder is
    written relative to it (so the folder can move with its manifests); audio elsewhere stays absolute."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    base = path.resolve().parent
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as f:
        for u in utts:
            audio = Path(u.audio).resolve()
            if relative and audio.is_relative_to(base):
                u = replace(u, audio=str(audio.relative_to(base)))
            f.write(u.to_json() + "\n")
    os.replace(tmp, path)
    return path


def load_utterance(utt: Utterance, sample_rate: int | None = None) -> np.ndarray:
    """The utterance's samples: mono float32 (n,), its segment and channel only, resampled to `sample_rate`."""
    audio = load_audio(
        utt.audio, raw=utt.raw_format, sample_rate=sample_rate, start=utt.start or 0.0, duration=utt.duration
    )
    if utt.channel is not None:
        return audio.channel(utt.channel)
    if audio.channels == 1:
        return audio.samples[0]
    return audio.samples.mean(axis=0)  # a stereo file without a channel: both legs mixed
