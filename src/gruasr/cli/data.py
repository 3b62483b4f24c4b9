"""`gruasr data ...`: import corpora into manifests (an4, fsdd, kaldi, folder), generate non-speech clips, cut
words out of utterances (cut-words) and summarise manifests (stats).

Each subcommand is a thin wrapper over gruasr.data.corpora / gruasr.data.stats. Importers check every file,
write the good utterances and list the bad ones (stdout and rejected.tsv) instead of stopping at the first.
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gruasr.data.corpora.check import CheckLimits, ImportReport

#: rejected utterances printed to stdout at most; the full list is in the rejected.tsv file
SHOW_REJECTED = 50


def _limits(args: argparse.Namespace) -> CheckLimits:
    from gruasr.data.corpora.check import CheckLimits

    return CheckLimits(args.min_duration, args.max_duration, args.sample_rate, decode=not args.headers_only)


def _print_report(report: ImportReport) -> int:
    for name, count in report.counts.items():
        print(f"wrote {report.out / name}: {count:,} utterances, {report.seconds[name] / 3600:.3f} h")
    for note in report.notes:
        print(note)
    print(f"rejected: {len(report.rejected):,} (listed in {report.rejected_path})")
    for bad in report.rejected[:SHOW_REJECTED]:
        print(f"  {bad.id}\t{bad.audio or '-'}\t{bad.reason}")
    if len(report.rejected) > SHOW_REJECTED:
        print(f"  ... and {len(report.rejected) - SHOW_REJECTED:,} more")
    return 0


def _cmd_an4(args: argparse.Namespace) -> int:
    from gruasr.data.corpora.an4 import import_an4

    dev = args.dev_speaker if args.dev_speaker else args.dev_speakers
    return _print_report(import_an4(args.src, args.out, _limits(args), dev))


def _cmd_fsdd(args: argparse.Namespace) -> int:
    from gruasr.data.corpora.fsdd import import_fsdd

    numbers = {
        "train": args.numbers_train,
        "dev": args.numbers_dev,
        "test": args.numbers_test,
        "holdout": args.numbers_holdout,
    }
    report = import_fsdd(args.src, args.out, _limits(args), args.seed, numbers, args.holdout_speaker)
    return _print_report(report)


def _cmd_kaldi(args: argparse.Namespace) -> int:
    from gruasr.data.corpora.kaldi import import_kaldi

    return _print_report(import_kaldi(args.src, args.out, _limits(args), args.root))


def _cmd_folder(args: argparse.Namespace) -> int:
    from gruasr.data.corpora.folder import import_folder

    return _print_report(import_folder(args.src, args.out, args.tsv, _limits(args)))


def _cmd_cut_words(args: argparse.Namespace) -> int:
    from gruasr.data.corpora.cuts import DIGITS, cut_words
    from gruasr.data.manifest import read_manifest, write_manifest
    from gruasr.recognizer import OfflineRecognizer

    report = cut_words(
        read_manifest(args.manifest), OfflineRecognizer.load(args.model), tuple(args.words or DIGITS), args.margin
    )
    path = write_manifest(args.out, report.kept, relative=False)
    speakers = {u.speaker for u in report.kept}
    print(f"wrote {path}: {len(report.kept):,} cuts from {len(speakers)} speakers")
    print(f"dropped: {len(report.dropped):,} cuts the model heard as another word; unaligned utterances: "
          f"{len(report.unaligned):,}")  # fmt: skip
    for utt, word, heard in report.dropped[:SHOW_REJECTED]:
        print(f"  {utt}\t{word}\theard {heard!r}")
    return 0


def _cmd_numbers(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from gruasr.data.corpora.numbers import synthesize_numbers
    from gruasr.data.manifest import read_manifest, write_manifest

    out = Path(args.out)
    made = synthesize_numbers(read_manifest(args.takes), args.count, np.random.default_rng(args.seed), out, args.prefix)
    path = write_manifest(out / "numbers.jsonl", [utt for utt, _ in made])
    speakers = {utt.speaker for utt, _ in made}
    print(f"wrote {path}: {len(made):,} numbers from {len(speakers)} speakers")
    return 0


def _cmd_shard(args: argparse.Namespace) -> int:
    from gruasr.data.manifest import read_manifest
    from gruasr.data.shards import write_shards

    utts = [u for m in args.manifest for u in read_manifest(m)]
    paths = write_shards(utts, args.out, args.max_count, args.max_seconds)
    print(f"wrote {len(paths)} shard{'s' if len(paths) != 1 else ''} of {len(utts):,} utterances to {args.out}")
    return 0


def _cmd_nonspeech(args: argparse.Namespace) -> int:
    from gruasr.data.corpora.nonspeech import NonSpeechConfig, build_nonspeech

    common = {"sample_rate": args.sample_rate, "min_seconds": args.min_seconds, "max_seconds": args.max_seconds}
    sets = [
        ("train", args.train, args.seed, args.crosstalk),
        ("test", args.test, args.seed + 1, None),
        ("dev", args.dev, args.seed + 2, None),
    ]
    for name, count, seed, speech in sets:
        if count:
            path = build_nonspeech(args.out, name, NonSpeechConfig(count=count, seed=seed, **common), speech)
            print(f'wrote {path}: {count:,} clips without speech (text "")')
    return 0


def _cmd_stats(args: argparse.Namespace) -> int:
    from gruasr.data.stats import format_stats, manifest_stats

    stats = manifest_stats(args.manifest, top=args.top, bins=args.bins)
    print(json.dumps(stats.to_dict(), indent=2, ensure_ascii=False) if args.json else format_stats(stats))
    return 1 if stats.unreadable else 0


def _check_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("file checks (failing files are listed in rejected.tsv, not imported)")
    group.add_argument("--min-duration", type=float, default=0.1, metavar="S", help="shortest usable utterance")
    group.add_argument("--max-duration", type=float, default=60.0, metavar="S", help="longest usable utterance")
    group.add_argument("--sample-rate", type=int, default=None, metavar="HZ", help="reject files at other rates")
    group.add_argument("--headers-only", action="store_true", help="read headers only; do not decode samples")


def add_data_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `data` and its subcommands on the top-level subparsers."""
    data = sub.add_parser("data", help="import corpora into manifests; summarise a manifest")
    corpora = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND", required=True)

    an4 = corpora.add_parser("an4", help="CMU AN4 -> train/dev/test.jsonl (dev: whole training speakers)")
    an4.add_argument("--src", required=True, help="the an4 folder (holding etc/ and wav/)")
    an4.add_argument("--out", required=True, help="output folder")
    an4.add_argument("--dev-speakers", type=int, default=7, metavar="N", help="training speakers held out as dev")
    an4.add_argument("--dev-speaker", action="append", metavar="NAME", help="hold out this speaker (repeatable)")
    _check_options(an4)
    an4.set_defaults(func=_cmd_an4)

    fsdd = corpora.add_parser("fsdd", help="Free Spoken Digit Dataset -> digits and synthesized phone numbers")
    fsdd.add_argument("--src", required=True, help="the fsdd folder (holding recordings/)")
    fsdd.add_argument("--out", required=True, help="output folder")
    fsdd.add_argument("--seed", type=int, default=0, help="seed for the synthesized numbers")
    fsdd.add_argument("--numbers-train", type=int, default=2000, metavar="N", help="numbers from training takes")
    fsdd.add_argument("--numbers-dev", type=int, default=200, metavar="N", help="numbers from dev takes")
    fsdd.add_argument("--numbers-test", type=int, default=200, metavar="N", help="numbers from test takes")
    fsdd.add_argument("--numbers-holdout", type=int, default=200, metavar="N", help="numbers from the held-out speaker")
    fsdd.add_argument("--holdout-speaker", metavar="NAME", help="leave this speaker out of train/dev/test entirely")
    _check_options(fsdd)
    fsdd.set_defaults(func=_cmd_fsdd)

    kaldi = corpora.add_parser("kaldi", help="Kaldi data folder (wav.scp, text, segments, utt2spk) -> manifest")
    kaldi.add_argument("--src", required=True, help="the Kaldi data folder")
    kaldi.add_argument("--out", required=True, help="output manifest (.jsonl)")
    kaldi.add_argument("--root", default=None, help="folder relative wav.scp paths start from (default: current)")
    _check_options(kaldi)
    kaldi.set_defaults(func=_cmd_kaldi)

    folder = corpora.add_parser("folder", help="audio folder + transcripts TSV, or LibriSpeech layout -> manifest")
    folder.add_argument("--src", required=True, help="the audio folder")
    folder.add_argument("--tsv", default=None, help="transcripts: path<TAB>text[<TAB>speaker], optional header")
    folder.add_argument("--out", required=True, help="output manifest (.jsonl)")
    _check_options(folder)
    folder.set_defaults(func=_cmd_folder)

    nonspeech = corpora.add_parser(
        "nonspeech", help="generated speech-free audio (silence, noise, hum, tones, DTMF, music) with empty text"
    )
    nonspeech.add_argument("--out", required=True, help="output folder: train/dev/test.jsonl and their audio")
    nonspeech.add_argument("--train", type=int, default=400, metavar="N", help="training clips (0: none)")
    nonspeech.add_argument("--dev", type=int, default=300, metavar="N", help="dev clips (model selection; 0: none)")
    nonspeech.add_argument("--test", type=int, default=300, metavar="N", help="evaluation clips (0: none)")
    nonspeech.add_argument(
        "--seed", type=int, default=0, help="seed of the training set (test: seed + 1, dev: seed + 2)"
    )
    nonspeech.add_argument(
        "--crosstalk", metavar="MANIFEST", help="speech to mix in faintly as another leg's crosstalk (training only)"
    )
    nonspeech.add_argument("--sample-rate", type=int, default=8000, metavar="HZ")
    nonspeech.add_argument("--min-seconds", type=float, default=0.5, metavar="S")
    nonspeech.add_argument("--max-seconds", type=float, default=8.0, metavar="S")
    nonspeech.set_defaults(func=_cmd_nonspeech)

    cut = corpora.add_parser(
        "cut-words", help="words (default: the digits) cut out of a manifest's utterances by CTC forced alignment"
    )
    cut.add_argument("--manifest", required=True, help="utterances to cut from (e.g. data/an4/train.jsonl)")
    cut.add_argument("--out", required=True, help="output manifest of the cuts (.jsonl): segments of the audio")
    cut.add_argument("--model", default=None, help="the aligning model folder (default: the bundled one)")
    cut.add_argument("--words", nargs="+", default=None, help="words to cut (default: zero, oh, one ... nine)")
    cut.add_argument("--margin", type=float, default=0.06, metavar="S", help="seconds added on each side")
    cut.set_defaults(func=_cmd_cut_words)

    numbers = corpora.add_parser(
        "numbers", help="connected-digit phone numbers built from one-word takes (e.g. the cuts of cut-words)"
    )
    numbers.add_argument("--takes", required=True, help="manifest of one-word takes with speakers")
    numbers.add_argument("--count", type=int, required=True, help="numbers to build")
    numbers.add_argument("--out", required=True, help="output folder: numbers.jsonl, the WAV files, sources.jsonl")
    numbers.add_argument("--prefix", default="number", help="file and utterance name prefix")
    numbers.add_argument("--seed", type=int, default=0)
    numbers.set_defaults(func=_cmd_numbers)

    shard = corpora.add_parser("shard", help="manifests -> WebDataset tar shards (FLAC + JSON per utterance)")
    shard.add_argument("--manifest", required=True, action="append", help="a manifest (repeat for more)")
    shard.add_argument("--out", required=True, help="output folder: shard-NNNNNN.tar and index.json")
    shard.add_argument("--max-count", type=int, default=1000, help="utterances per shard at most")
    shard.add_argument("--max-seconds", type=float, default=3600.0, help="audio seconds per shard at most")
    shard.set_defaults(func=_cmd_shard)

    stats = corpora.add_parser(
        "stats", help="hours, speakers, durations and words of a manifest (exit 1 if some audio is unreadable)"
    )
    stats.add_argument("manifest", help="a .jsonl manifest")
    stats.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
    stats.add_argument("--top", type=int, default=10, metavar="N", help="most frequent words to list")
    stats.add_argument("--bins", type=int, default=10, metavar="N", help="duration histogram bins")
    stats.set_defaults(func=_cmd_stats)
