"""Pack what a GPU machine needs to train and test gruasr into one git-ignored folder (at most 60 MiB), for
`benchmarks/gpu_check.sh` on a machine that reaches nothing outside itself.

    python scripts/gpu_kit.py --data ../shared/data --out gpu-kit [--wheels] [--limit N]

- gpu-kit/an4/{train,dev,test}.jsonl with an4/audio/*.flac: AN4 at 8 kHz (resampled from its 16 kHz raw files),
  16-bit FLAC, manifests relative to their folder;
- gpu-kit/fsdd/recordings/*.flac: FSDD's 3,000 takes, as they are (8 kHz), FLAC; `gruasr data fsdd` reads
  them there, so the phone numbers are generated on the GPU machine instead of travelling (they are 3x the
  digits' audio), and so are the non-speech clips (`gruasr data nonspeech`);
- with --wheels, gpu-kit/wheels/: Python 3.12 manylinux wheels of the packages gruasr needs that the GPU image
  lacks (docs of the device: its torch, numpy, safetensors, rich, tensorboard ... are there), fetched from the
  package index with `pip download --no-deps`.

--limit N keeps the first N utterances of each AN4 set, and FSDD's takes 0, 5, 10 and 11 only (for tests).
The folder travels with `run`'s `carry` (name `gpu-kit`); the kit's size is printed and checked.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import soundfile as sf

from gruasr.data.corpora.an4 import import_an4
from gruasr.data.manifest import load_utterance, read_manifest, write_manifest

RATE = 8000
LIMIT_MIB = 60
#: what gruasr's training, tests and benchmarks import that the GPU image does not hold (pinned as in pyproject)
WHEELS = ["soundfile==0.14.0", "soxr==1.1.0", "webrtcvad-wheels==2.0.14.post1", "kaldialign==0.12.0",
          "rapidfuzz==3.14.6", "cffi==2.0.0", "pycparser==2.23", "cryptography==50.0.2"]  # fmt: skip


def pack_an4(src: Path, out: Path, limit: int) -> int:
    """AN4 train/dev/test as 8 kHz FLAC under out/an4; returns the number of files."""
    count = 0
    with tempfile.TemporaryDirectory() as tmp:
        import_an4(src, tmp)
        for split in ("train", "dev", "test"):
            utts = read_manifest(Path(tmp) / f"{split}.jsonl")[: limit or None]
            packed = []
            for utt in utts:
                target = out / "an4" / "audio" / f"{utt.id}.flac"
                target.parent.mkdir(parents=True, exist_ok=True)
                sf.write(target, load_utterance(utt, RATE), RATE, subtype="PCM_16", format="FLAC")
                packed.append(
                    replace(utt, audio=str(target), start=None, channel=None, sample_rate=None, encoding=None)
                )
                count += 1
            write_manifest(out / "an4" / f"{split}.jsonl", packed)
    return count


def pack_fsdd(src: Path, out: Path, limit: int) -> int:
    """FSDD's recordings as FLAC under out/fsdd/recordings (names kept, .flac); returns the number of files."""
    folder = src / "recordings" if (src / "recordings").is_dir() else src
    target = out / "fsdd" / "recordings"
    target.mkdir(parents=True, exist_ok=True)
    files = sorted(folder.glob("*.wav"))
    if limit:  # takes 0 (test), 5 (dev), 10 and 11 (train) of every digit and speaker: every split keeps some
        files = [f for f in files if int(f.stem.rsplit("_", 1)[1]) in (0, 5, 10, 11)]
    for path in files:
        data, rate = sf.read(path, dtype="int16")
        sf.write(target / f"{path.stem}.flac", data, rate, subtype="PCM_16", format="FLAC")
    return len(files)


def download_wheels(out: Path) -> None:
    wheels = out / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    platforms = [f"--platform=manylinux_2_{n}_x86_64" for n in (17, 27, 28, 31, 34)] + [
        "--platform=manylinux2014_x86_64"
    ]
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                    "--python-version=3.12", "--implementation=cp", *platforms, "-d", str(wheels), *WHEELS],
                   check=True)  # fmt: skip


def size_mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the folder holding an4/, fsdd/")
    parser.add_argument("--out", type=Path, default=Path("gpu-kit"))
    parser.add_argument("--wheels", action="store_true", help="also fetch the Python 3.12 wheels the GPU image lacks")
    parser.add_argument("--limit", type=int, default=0, help="utterances per set (0: all); for tests")
    args = parser.parse_args()
    if args.out.exists():
        shutil.rmtree(args.out)
    an4 = pack_an4(args.data / "an4", args.out, args.limit)
    fsdd = pack_fsdd(args.data / "fsdd", args.out, args.limit)
    if args.wheels:
        download_wheels(args.out)
    size = size_mib(args.out)
    print(f"{args.out}: {an4} AN4 files, {fsdd} FSDD files, {size:.1f} MiB")
    if size > LIMIT_MIB:
        sys.exit(f"the kit is {size:.1f} MiB, over the {LIMIT_MIB} MiB a device run can carry")


if __name__ == "__main__":
    main()
