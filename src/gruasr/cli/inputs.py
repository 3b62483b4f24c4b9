"""Input audio for the recognition commands: `--raw RATE:WIDTH:ENDIAN[:CHANNELS]` for headerless files, and the
check every input file gets before a model is loaded (exists, readable, a header that decodes)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from gruasr.audio.io import RawFormat, audio_info
from gruasr.errors import AudioFormatError

ORDERS = {"le": "little", "little": "little", "be": "big", "big": "big"}


def parse_raw(spec: str) -> RawFormat:
    """Parse "16000:2:be" into RawFormat(16000 Hz, 2-byte signed PCM, big-endian); an optional 4th field gives the
    channel count ("8000:2:le:2"). A width of 1 is unsigned 8-bit PCM; its byte order is ignored."""
    parts = spec.split(":")
    if len(parts) not in (3, 4) or parts[2].lower() not in ORDERS:
        raise argparse.ArgumentTypeError(
            f"expected RATE:WIDTH:ENDIAN[:CHANNELS], e.g. 16000:2:be or 8000:2:le, got {spec!r}"
        )
    try:
        numbers = [int(p) for p in (parts[0], parts[1], *parts[3:])]
    except ValueError:
        raise argparse.ArgumentTypeError(f"RATE, WIDTH and CHANNELS must be integers, got {spec!r}") from None
    channels = numbers[2] if len(numbers) > 2 else 1
    try:
        return RawFormat(numbers[0], numbers[1], ORDERS[parts[2].lower()], channels)  # type: ignore[arg-type]
    except AudioFormatError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def add_raw_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--raw", type=parse_raw, metavar="RATE:WIDTH:ENDIAN",
        help="read the input as headerless PCM, e.g. 16000:2:be (16 kHz, 16-bit, big-endian); :CHANNELS may follow",
    )  # fmt: skip


def check_audio_files(command: str, paths: Sequence[str], raw: RawFormat | None) -> list[str]:
    """The paths that exist, can be read and have a header that decodes (or fit `raw`); each bad one is reported
    on stderr as one line, `gruasr COMMAND: error: PATH: why`."""
    good = []
    for path in paths:
        try:
            audio_info(path, raw)
            with Path(path).open("rb") as f:
                f.read(1)
        except AudioFormatError as err:
            print(f"gruasr {command}: error: {err}", file=sys.stderr)
        except OSError as err:
            print(f"gruasr {command}: error: {path}: cannot read ({err.strerror})", file=sys.stderr)
        else:
            good.append(path)
    return good
