"""Kaldi data directory -> one manifest.

Reads wav.scp (`recording-id path`), text (`utterance-id words...`), and when present segments
(`utterance-id recording-id start end`, seconds; end -1 means the end of the recording) and utt2spk
(`utterance-id speaker-id`). Without segments every wav.scp entry is one utterance with the same id.

Never runs anything: a wav.scp entry that is a command (ends with `|`, e.g. `sph2pipe -f wav x.sph |`) is
rejected with that reason, as is an archive entry (`file.ark:offset`). Convert such audio to files first.
Relative paths in wav.scp are relative to `root`: Kaldi scripts run from the recipe folder (egs/<corpus>/s5),
so the default is the current directory, as in Kaldi; pass root when running from elsewhere.
"""

from __future__ import annotations

import re
from pathlib import Path

from gruasr.data.corpora.check import (
    CheckLimits,
    ImportReport,
    Rejected,
    finish_import,
    require_dir,
)
from gruasr.data.corpora.text import normalize_transcript
from gruasr.data.manifest import Utterance
from gruasr.errors import ConfigError

_ARCHIVE = re.compile(r"\.ark:\d+(\[.*\])?$")
PIPE_REASON = "wav.scp entry is a shell command (ends with '|'); gruasr never runs commands from data files"


def read_table(path: Path, min_fields: int = 2) -> tuple[dict[str, str], list[Rejected]]:
    """A Kaldi table file as key -> rest of the line; short lines and repeated keys are returned as rejected."""
    table: dict[str, str] = {}
    rejected: list[Rejected] = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        key = line.split()[0]
        where = f"{path.name}:{number}"
        if len(line.split()) < min_fields:
            rejected.append(Rejected(key, "", f"{where}: expected at least {min_fields} fields"))
        elif key in table:
            rejected.append(Rejected(key, "", f"{where}: repeated id"))
        else:
            table[key] = line.strip()[len(key) :].strip()
    return table, rejected


def _resolve(value: str, root: Path) -> tuple[str | None, str]:
    """(absolute path, '') for a plain file entry, (None, reason) for a command or archive entry."""
    if value.endswith("|"):
        return None, f"{PIPE_REASON}: {value[:80]!r}"
    if _ARCHIVE.search(value):
        return None, f"Kaldi archive entries (file.ark:offset) are not supported: {value[:80]!r}"
    path = Path(value)
    return str(path if path.is_absolute() else (root / path).resolve()), ""


def _segments(path: Path) -> tuple[dict[str, tuple[str, float, float | None]], list[Rejected]]:
    """utterance -> (recording, start, duration or None for 'to the end')."""
    table, rejected = read_table(path, min_fields=4)
    segments: dict[str, tuple[str, float, float | None]] = {}
    for utt_id, rest in table.items():
        fields = rest.split()
        try:
            start, end = float(fields[1]), float(fields[2])
        except (ValueError, IndexError):
            rejected.append(Rejected(utt_id, "", f"segments: cannot read start/end from {rest!r}"))
            continue
        if end == -1:
            segments[utt_id] = (fields[0], start, None)
        elif start < 0 or end <= start:
            rejected.append(Rejected(utt_id, "", f"segments: bad times start={start} end={end}"))
        else:
            segments[utt_id] = (fields[0], start, end - start)
    return segments, rejected


def import_kaldi(
    src: str | Path, out: str | Path, limits: CheckLimits | None = None, root: str | Path | None = None
) -> ImportReport:
    """Write the manifest `out` and `<out stem>.rejected.tsv` beside it from the Kaldi data folder `src`."""
    src, out = require_dir(src, "Kaldi data folder"), Path(out)
    root = Path.cwd() if root is None else Path(root)
    for name in ("wav.scp", "text"):
        if not (src / name).is_file():
            raise ConfigError(f"Kaldi data folder {src} has no {name}")
    wavs, rejected = read_table(src / "wav.scp")
    raw_texts, text_rejected = read_table(src / "text", min_fields=1)
    rejected += text_rejected
    speakers: dict[str, str] = {}
    if (src / "utt2spk").is_file():
        speakers, spk_rejected = read_table(src / "utt2spk")
        rejected += spk_rejected
    if (src / "segments").is_file():
        segments, seg_rejected = _segments(src / "segments")
        rejected += seg_rejected
    else:
        segments = {reco: (reco, 0.0, None) for reco in wavs}

    utts: list[Utterance] = []
    for utt_id, (reco, start, duration) in segments.items():
        if reco not in wavs:
            rejected.append(Rejected(utt_id, "", f"recording {reco!r} is not in wav.scp"))
            continue
        audio, reason = _resolve(wavs[reco], root)
        text = normalize_transcript(raw_texts.get(utt_id, ""))
        if audio is None:
            rejected.append(Rejected(utt_id, "", reason))
        elif utt_id not in raw_texts:
            rejected.append(Rejected(utt_id, audio, "no transcript in text"))
        elif not text:
            rejected.append(Rejected(utt_id, audio, "empty transcript"))
        else:
            whole = start == 0.0 and duration is None
            utts.append(
                Utterance(
                    utt_id,
                    audio,
                    text,
                    start=None if whole else start,
                    duration=duration,
                    speaker=speakers.get(utt_id),
                )
            )
    listed = {r.id for r in rejected}
    for utt_id in raw_texts:
        if utt_id not in segments and utt_id not in listed:
            rejected.append(Rejected(utt_id, "", "transcript without audio (not in wav.scp or segments)"))

    return finish_import(out, utts, rejected, limits, f"Kaldi data folder {src}")
