"""CMU AN4 (census database, close-talking microphone) -> train/dev/test manifests.

Layout (see shared/data/an4/FORMAT.md): wav/an4_clstk/<speaker>/<id>.raw (training, 948 utterances,
74 speakers) and wav/an4test_clstk/<speaker>/<id>.raw (test, 130 utterances, 10 other speakers); headerless
16 kHz 16-bit big-endian PCM, so manifest lines carry "sample_rate": 16000 and "encoding": "s16be".
Transcripts: etc/an4_train.transcription (`<s> WORDS </s> (id)`) and etc/an4_test.transcription (`WORDS (id)`).

Dev split: AN4 has no official one, so a few whole training speakers are held out (speaker-disjoint, like the
test set). The choice is deterministic and independent of file-system order: speakers are grouped by the first
letter of their id (AN4 ids start with f or m, the speaker's gender), each group gets a share of the dev
speakers proportional to its size (largest remainder), and within a group the speakers with the smallest
SHA-256 of "an4-dev/<speaker>" are taken. The default, 7 of 74 speakers, gives 2 female + 5 male speakers
(the training set is 21 f / 53 m, the test set 3 f / 7 m) and about 9.5% of the training utterances.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

from gruasr.audio.io import AN4_RAW
from gruasr.data.corpora.check import (
    CheckLimits,
    ImportReport,
    Rejected,
    check_utterances,
    require_dir,
    write_rejected,
    write_split,
)
from gruasr.data.corpora.text import normalize_transcript
from gruasr.data.manifest import Utterance
from gruasr.errors import ConfigError

#: default number of training speakers held out as the dev set
DEV_SPEAKERS = 7

#: split -> (audio folder under wav/, transcription file under etc/)
_SPLITS = {"train": ("an4_clstk", "an4_train.transcription"), "test": ("an4test_clstk", "an4_test.transcription")}
_LINE = re.compile(r"^(?P<text>.*)\((?P<id>[^()\s]+)\)\s*$")


def parse_transcription(path: Path) -> tuple[dict[str, str], list[Rejected]]:
    """id -> normalized text from a Sphinx transcription file (`<s> WORDS </s> (id)` or `WORDS (id)`);
    lines without an id, with an empty text or a repeated id are returned as rejected."""
    if not path.is_file():
        raise ConfigError(f"AN4 transcription not found: {path}")
    texts: dict[str, str] = {}
    rejected: list[Rejected] = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        where = f"{path.name}:{number}"
        if match is None:
            rejected.append(Rejected(where, "", f"transcription line without an (id): {line.strip()[:60]!r}"))
            continue
        utt_id, text = match["id"], normalize_transcript(match["text"])
        if utt_id in texts:
            rejected.append(Rejected(utt_id, "", f"{where}: repeated id"))
        elif not text:
            rejected.append(Rejected(utt_id, "", f"{where}: empty transcript"))
        else:
            texts[utt_id] = text
    return texts, rejected


def _gather(src: Path, split: str) -> tuple[list[Utterance], list[Rejected]]:
    """The utterances of one official split: transcripts paired with audio files; unpaired ones rejected."""
    folder, transcription = _SPLITS[split]
    wav_dir = require_dir(src / "wav" / folder, "AN4 audio folder")
    texts, rejected = parse_transcription(src / "etc" / transcription)
    files = {p.stem: p for p in sorted(wav_dir.glob("*/*.raw"))}
    utts = []
    for utt_id, text in texts.items():
        path = files.get(utt_id)
        if path is None:
            rejected.append(Rejected(utt_id, "", f"no audio file {utt_id}.raw under wav/{folder}"))
            continue
        utts.append(
            Utterance(
                id=utt_id,
                audio=str(path.resolve()),
                text=text,
                speaker=path.parent.name,
                sample_rate=AN4_RAW.sample_rate,
                encoding=AN4_RAW.spec,
            )
        )
    for stem, path in files.items():
        if stem not in texts:
            rejected.append(Rejected(stem, str(path), f"no transcript in etc/{transcription}"))
    return utts, rejected


def _dev_key(speaker: str) -> str:
    return hashlib.sha256(f"an4-dev/{speaker}".encode()).hexdigest()


def choose_dev_speakers(speakers: Sequence[str], count: int) -> list[str]:
    """`count` speakers, shared among the first-letter (gender) groups in proportion to their sizes, the
    smallest SHA-256 keys first within each group (see the module docstring). Sorted by name."""
    unique = sorted(set(speakers))
    if not 0 < count < len(unique):
        raise ConfigError(f"dev speakers must be between 1 and {len(unique) - 1}, got {count}")
    groups: dict[str, list[str]] = defaultdict(list)
    for speaker in unique:
        groups[speaker[0]].append(speaker)
    quotas = {g: count * len(members) // len(unique) for g, members in groups.items()}
    remainders = sorted(groups, key=lambda g: (-(count * len(groups[g]) % len(unique)), g))
    for g in remainders[: count - sum(quotas.values())]:
        quotas[g] += 1
    chosen = [s for g, members in groups.items() for s in sorted(members, key=_dev_key)[: quotas[g]]]
    return sorted(chosen)


def import_an4(
    src: str | Path,
    out: str | Path,
    limits: CheckLimits | None = None,
    dev_speakers: int | Sequence[str] = DEV_SPEAKERS,
) -> ImportReport:
    """Write train.jsonl, dev.jsonl (whole training speakers held out), test.jsonl (the official 130 test
    utterances) and rejected.tsv into `out`. `dev_speakers` is a count (chosen as the module docstring says)
    or explicit speaker names."""
    src = require_dir(src, "AN4 folder")
    out = Path(out)
    limits = limits or CheckLimits()
    report = ImportReport(out)
    train, rejected = _gather(src, "train")
    test, test_rejected = _gather(src, "test")
    rejected += test_rejected

    speakers = sorted({u.speaker or "" for u in train})
    if isinstance(dev_speakers, int):
        dev_names = choose_dev_speakers(speakers, dev_speakers)
    else:
        dev_names = sorted(set(dev_speakers))
        unknown = [s for s in dev_names if s not in speakers]
        if unknown or not 0 < len(dev_names) < len(speakers):
            raise ConfigError(
                f"dev speakers must be 1 to {len(speakers) - 1} AN4 training speakers, got {unknown or dev_names}"
            )
    overlap = sorted({u.speaker or "" for u in test} & set(speakers))
    if overlap:
        report.notes.append(f"warning: speakers in both AN4 train and test: {', '.join(overlap)}")

    checked_train = check_utterances(train, limits, "AN4 train")
    checked_test = check_utterances(test, limits, "AN4 test")
    rejected += checked_train.rejected + checked_test.rejected
    held = set(dev_names)
    splits = {
        "train": [u for u in checked_train.good if u.speaker not in held],
        "dev": [u for u in checked_train.good if u.speaker in held],
        "test": checked_test.good,
    }
    for name, utts in splits.items():
        if not utts:
            raise ConfigError(f"AN4 {name}: no usable utterances (see the rejected list)")
        write_split(report, out / f"{name}.jsonl", utts)
    report.rejected = rejected
    report.rejected_path = write_rejected(out / "rejected.tsv", rejected)
    genders = Counter(s[0] for s in dev_names)
    mix = " + ".join(f"{n} {g}" for g, n in sorted(genders.items()))
    report.notes.append(f"dev speakers ({mix}): {', '.join(dev_names)}")
    return report
