"""Free Spoken Digit Dataset -> isolated-digit manifests plus synthesized connected-digit "phone numbers".

Files: recordings/{digit}_{speaker}_{take}.wav (8 kHz 16-bit mono; 6 speakers x 10 digits x 50 takes); the same
names as .flac are read too (the GPU kit, scripts/gpu_kit.py, carries FSDD as FLAC).
Splits, by take number within every digit and speaker:
- test: takes 0-4 (the dataset's official test set, 300 files);
- dev: takes 5-9 (300 files), held out of the official training takes 5-49; same speakers as train and test,
  because FSDD's official split is speaker-dependent too;
- train: takes 10-49 (2,400 files).
Text is the digit word ("zero" .. "nine").

Numbers (see numbers.py) are built from one split's takes only: train_numbers.jsonl from train takes,
dev_numbers.jsonl from dev takes, test_numbers.jsonl from test takes, so no take heard in training appears in a
test number. Their WAV files go to OUT/numbers/<split>/, with sources.jsonl saying which take sits where.
Each split draws from its own generator, numpy default_rng([seed, k]) with k = 0 train, 1 dev, 2 test,
3 holdout, so changing one split's count leaves the other splits' numbers unchanged.

Unseen speaker (--holdout-speaker NAME): every take of that speaker leaves train/dev/test (and their numbers)
and goes to holdout.jsonl (all 500 takes) and holdout_numbers.jsonl (numbers from those takes), for testing
on a speaker the model never heard.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from gruasr.data.corpora.check import (
    CheckLimits,
    ImportReport,
    Rejected,
    check_utterances,
    require_dir,
    write_rejected,
    write_split,
)
from gruasr.data.corpora.numbers import NumberConfig, synthesize_numbers
from gruasr.data.manifest import Utterance, write_manifest
from gruasr.errors import ConfigError

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
TEST_TAKES = range(0, 5)
DEV_TAKES = range(5, 10)
#: default count of synthesized numbers per split
NUMBERS = {"train": 2000, "dev": 200, "test": 200, "holdout": 200}
_STREAM = {"train": 0, "dev": 1, "test": 2, "holdout": 3}
_NAME = re.compile(r"^(?P<digit>[0-9])_(?P<speaker>[A-Za-z0-9-]+)_(?P<take>[0-9]+)$")


def split_of_take(take: int) -> str:
    """'test' for takes 0-4, 'dev' for 5-9, 'train' for the rest."""
    if take in TEST_TAKES:
        return "test"
    return "dev" if take in DEV_TAKES else "train"


def parse_name(path: Path) -> tuple[int, str, int] | None:
    """(digit, speaker, take) from `7_jackson_32.wav` (or .flac), or None if the name does not follow the pattern."""
    match = _NAME.match(path.stem)
    if match is None or path.suffix.lower() not in (".wav", ".flac"):
        return None
    return int(match["digit"]), match["speaker"], int(match["take"])


def _recordings(src: Path) -> Path:
    """The recordings folder: SRC/recordings, or SRC itself when it holds the WAV files directly."""
    folder = src / "recordings"
    return folder if folder.is_dir() else src


def gather(src: Path) -> tuple[list[Utterance], list[Rejected]]:
    """Every take as an utterance (id = file stem), plus the files whose names are not digit_speaker_take.wav."""
    folder = _recordings(require_dir(src, "FSDD folder"))
    utts, rejected = [], []
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or not path.is_file():
            continue
        parsed = parse_name(path)
        if parsed is None:
            rejected.append(Rejected(path.stem, str(path), "file name is not <digit>_<speaker>_<take>.wav"))
            continue
        digit, speaker, _ = parsed
        utts.append(Utterance(path.stem, str(path.resolve()), DIGIT_WORDS[digit], speaker=speaker))
    if not utts:
        raise ConfigError(f"no FSDD recordings (<digit>_<speaker>_<take>.wav) in {folder}")
    return utts, rejected


def import_fsdd(
    src: str | Path,
    out: str | Path,
    limits: CheckLimits | None = None,
    seed: int = 0,
    numbers: Mapping[str, int] | None = None,
    holdout_speaker: str | None = None,
    number_config: NumberConfig | None = None,
) -> ImportReport:
    """Write train/dev/test.jsonl, <split>_numbers.jsonl, numbers/<split>/*.wav and rejected.tsv into `out`
    (and holdout.jsonl, holdout_numbers.jsonl with `holdout_speaker`). `numbers` overrides NUMBERS per split."""
    src, out = Path(src), Path(out)
    counts = {**NUMBERS, **(numbers or {})}
    unknown = sorted(set(counts) - set(NUMBERS))
    if unknown:
        raise ConfigError(f"numbers: unknown splits {unknown} (known: {sorted(NUMBERS)})")
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}")
    report = ImportReport(out)
    takes, rejected = gather(src)
    speakers = sorted({u.speaker or "" for u in takes})
    if holdout_speaker is not None and holdout_speaker not in speakers:
        raise ConfigError(f"holdout speaker {holdout_speaker!r} is not in FSDD (speakers: {', '.join(speakers)})")

    checked = check_utterances(takes, limits or CheckLimits(), "FSDD takes")
    rejected += checked.rejected
    splits: dict[str, list[Utterance]] = {"train": [], "dev": [], "test": []}
    if holdout_speaker is not None:
        splits["holdout"] = []
    for utt in checked.good:
        take = int(utt.id.rsplit("_", 1)[1])
        splits["holdout" if utt.speaker == holdout_speaker else split_of_take(take)].append(utt)

    for name, utts in splits.items():
        if not utts:
            raise ConfigError(f"FSDD {name}: no usable takes (see the rejected list)")
        write_split(report, out / f"{name}.jsonl", utts)
    for name, utts in splits.items():
        rng = np.random.default_rng([seed, _STREAM[name]])
        made = synthesize_numbers(
            utts, counts[name], rng, out / "numbers" / name, f"fsdd-{name}-num", number_config or NumberConfig()
        )
        path = out / f"{name}_numbers.jsonl"
        write_manifest(path, [utt for utt, _ in made])
        report.add(path.name, [utt for utt, _ in made])
    report.rejected = rejected
    report.rejected_path = write_rejected(out / "rejected.tsv", rejected)
    report.notes.append("dev = takes 5-9 of every digit and speaker; test = takes 0-4; train = takes 10-49")
    if holdout_speaker is not None:
        report.notes.append(f"unseen speaker {holdout_speaker}: only in holdout.jsonl and holdout_numbers.jsonl")
    return report
