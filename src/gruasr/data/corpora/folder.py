"""A folder of audio files with transcripts -> one manifest.

Two layouts:
- A TSV of transcripts (`--tsv FILE`): one utterance a line, `path<TAB>text` or `path<TAB>text<TAB>speaker`.
  An optional header line names the columns (`path`, `text`, optionally `speaker` and `id`, in any order).
  Relative paths are relative to the audio folder. Without an id column the id is the path relative to the
  folder, without its suffix, with `/` and spaces turned into `-` and `_`.
- LibriSpeech: `<speaker>/<chapter>/<speaker>-<chapter>.trans.txt` holding `<utterance-id> TEXT` lines, the
  audio `<utterance-id>.flac` (or .wav) beside it. The speaker is the id's first `-` field (else the folder two
  levels up). Audio files beside a .trans.txt that no line names are rejected ("no transcript").
"""

from __future__ import annotations

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

AUDIO_SUFFIXES = (".flac", ".wav", ".ogg")
_COLUMNS = ("path", "text", "speaker", "id")


def _path_id(path: Path, base: Path) -> str:
    try:
        rel = path.relative_to(base)
    except ValueError:
        rel = Path(path.name)
    return "-".join(rel.with_suffix("").parts).replace(" ", "_")


def _utterance(utt_id: str, audio: Path, raw_text: str, speaker: str | None, where: str) -> Utterance | Rejected:
    text = normalize_transcript(raw_text)
    if not text:
        return Rejected(utt_id, str(audio), f"{where}: empty transcript")
    return Utterance(utt_id, str(audio), text, speaker=speaker or None)


def _sort(item: Utterance | Rejected, utts: list[Utterance], rejected: list[Rejected]) -> None:
    if isinstance(item, Rejected):
        rejected.append(item)
    else:
        utts.append(item)


def read_tsv(tsv: Path, src: Path) -> tuple[list[Utterance], list[Rejected]]:
    """Utterances from a transcripts TSV (see the module docstring); bad lines are returned as rejected."""
    if not tsv.is_file():
        raise ConfigError(f"transcripts TSV not found: {tsv}")
    lines = tsv.read_text(encoding="utf-8-sig", errors="replace").splitlines()
    columns = ["path", "text", "speaker"]
    first = lines[0].split("\t") if lines else []
    if first and first[0].strip().lower() == "path":
        columns = [c.strip().lower() for c in first]
        wrong = [c for c in columns if c not in _COLUMNS] + [c for c in ("path", "text") if c not in columns]
        if wrong or len(set(columns)) != len(columns):
            raise ConfigError(f"{tsv}: header must name path, text and optionally speaker, id; got {first}")
        lines = lines[1:]
        start = 2
    else:
        start = 1
    utts: list[Utterance] = []
    rejected: list[Rejected] = []
    for number, line in enumerate(lines, start):
        if not line.strip():
            continue
        cells = line.split("\t")
        where = f"{tsv.name}:{number}"
        if len(cells) > len(columns) or len(cells) < columns.index("text") + 1:
            rejected.append(Rejected(where, "", f"expected {len(columns)} tab-separated columns, got {len(cells)}"))
            continue
        row = dict(zip(columns, (c.strip() for c in cells), strict=False))
        if not row.get("path"):
            rejected.append(Rejected(where, "", "empty path"))
            continue
        path = Path(row["path"])
        audio = path if path.is_absolute() else (src / path).resolve()
        utt_id = row.get("id") or _path_id(audio, src.resolve())
        item = _utterance(utt_id, audio, row["text"], row.get("speaker"), where)
        _sort(item, utts, rejected)
    return utts, rejected


def read_librispeech(src: Path) -> tuple[list[Utterance], list[Rejected]]:
    """Utterances from every `*.trans.txt` under `src` (LibriSpeech layout)."""
    utts: list[Utterance] = []
    rejected: list[Rejected] = []
    for trans in sorted(src.rglob("*.trans.txt")):
        named: set[str] = set()
        for number, line in enumerate(trans.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            utt_id, _, raw_text = line.strip().partition(" ")
            named.add(utt_id)
            audio = next((p for s in AUDIO_SUFFIXES if (p := trans.parent / f"{utt_id}{s}").is_file()), None)
            if audio is None:
                rejected.append(Rejected(utt_id, "", f"{trans.name}:{number}: no audio file {utt_id}.flac beside it"))
                continue
            parts = utt_id.split("-")
            speaker = parts[0] if len(parts) == 3 else trans.parent.parent.name
            _sort(_utterance(utt_id, audio.resolve(), raw_text, speaker, f"{trans.name}:{number}"), utts, rejected)
        for audio in sorted(trans.parent.iterdir()):
            if audio.suffix.lower() in AUDIO_SUFFIXES and audio.stem not in named:
                rejected.append(Rejected(audio.stem, str(audio.resolve()), f"no transcript in {trans.name}"))
    return utts, rejected


def import_folder(
    src: str | Path, out: str | Path, tsv: str | Path | None = None, limits: CheckLimits | None = None
) -> ImportReport:
    """Write the manifest `out` and `<out stem>.rejected.tsv` beside it, from `tsv` if given, else from the
    LibriSpeech-style *.trans.txt files under `src`."""
    src, out = require_dir(src, "audio folder"), Path(out)
    if tsv is not None:
        utts, rejected = read_tsv(Path(tsv), src)
    else:
        utts, rejected = read_librispeech(src)
        if not utts and not rejected:
            raise ConfigError(f"{src}: no transcripts found (give --tsv FILE, or use LibriSpeech's *.trans.txt layout)")
    seen: set[str] = set()
    unique: list[Utterance] = []
    for utt in utts:
        if utt.id in seen:
            rejected.append(Rejected(utt.id, utt.audio, "repeated id"))
        else:
            seen.add(utt.id)
            unique.append(utt)
    return finish_import(out, unique, rejected, limits, f"folder {src}")
