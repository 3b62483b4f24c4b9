"""Transcripts as subtitles: SubRip (SRT) and WebVTT cues, one per turn, for `gruasr call` and the server's REST
endpoint (OpenAI's `response_format=srt|vtt`).

SRT: a numbered cue, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, the text, a blank line. WebVTT (W3C): a `WEBVTT` header, cues
with `.` before the milliseconds, the speaker as a voice span `<v A>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gruasr.errors import ConfigError


@dataclass(frozen=True)
class Cue:
    start: float  # seconds
    end: float
    text: str
    speaker: str | None = None  # a call leg ("A", "B", ...) or None


def timestamp(seconds: float, sep: str) -> str:
    """Seconds as HH:MM:SS<sep>mmm (sep "," for SRT, "." for WebVTT and plain transcripts)."""
    ms = int(round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def subtitles(cues: Iterable[Cue], fmt: str) -> str:
    """The cues as an SRT or WebVTT document (fmt "srt" or "vtt"), ending in a newline when not empty."""
    if fmt not in ("srt", "vtt"):
        raise ConfigError(f"subtitle format must be 'srt' or 'vtt', got {fmt!r}")
    sep = "," if fmt == "srt" else "."
    lines = ["WEBVTT", ""] if fmt == "vtt" else []
    for n, cue in enumerate(cues, 1):
        if fmt == "srt":
            lines.append(str(n))
        lines.append(f"{timestamp(cue.start, sep)} --> {timestamp(cue.end, sep)}")
        if cue.speaker is None:
            lines.append(cue.text)
        else:
            lines.append(f"{cue.speaker}: {cue.text}" if fmt == "srt" else f"<v {cue.speaker}>{cue.text}")
        lines.append("")
    return "\n".join(lines) + ("\n" if lines else "")
