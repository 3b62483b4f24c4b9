"""What a manifest holds: hours, utterances, speakers, durations (with a histogram) and words.

Durations come from each line's "duration" field, or, when absent, from the audio file's header (minus the
line's "start"). Files whose header cannot be read are counted and listed as unreadable, not fatal.
"""

from __future__ import annotations

import os
import statistics
from collections import Counter
from dataclasses import asdict, dataclass, field

from gruasr.audio.io import audio_info
from gruasr.data.corpora.check import track
from gruasr.data.manifest import read_manifest
from gruasr.errors import ConfigError, GruAsrError

BAR_WIDTH = 40


@dataclass(frozen=True)
class Bin:
    lo: float
    hi: float
    count: int


@dataclass
class ManifestStats:
    """Summary of one manifest; durations in seconds."""

    manifest: str
    utterances: int
    seconds: float
    speakers: int
    without_speaker: int
    min_duration: float | None
    mean_duration: float | None
    median_duration: float | None
    max_duration: float | None
    histogram: list[Bin]
    words: int
    vocabulary: int
    top_words: list[tuple[str, int]]
    durations_from_headers: int
    unreadable: list[tuple[str, str]] = field(default_factory=list)

    @property
    def hours(self) -> float:
        return self.seconds / 3600.0

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["hours"] = self.hours
        data["top_words"] = [{"word": w, "count": c} for w, c in self.top_words]
        data["unreadable"] = [{"id": i, "reason": r} for i, r in self.unreadable]
        return data


def histogram(values: list[float], bins: int) -> list[Bin]:
    """`bins` equal-width bins from min to max (the last one closed); one bin when all values are equal."""
    if bins < 1:
        raise ConfigError(f"histogram bins must be >= 1, got {bins}")
    if not values:
        return []
    lo, hi = min(values), max(values)
    if hi == lo:
        return [Bin(lo, hi, len(values))]
    width = (hi - lo) / bins
    counts = [0] * bins
    for v in values:
        counts[min(int((v - lo) / width), bins - 1)] += 1
    return [Bin(lo + i * width, lo + (i + 1) * width, c) for i, c in enumerate(counts)]


def manifest_stats(path: str | os.PathLike[str], top: int = 10, bins: int = 10) -> ManifestStats:
    """Read a manifest (ConfigError if it is missing or malformed) and summarise it."""
    if top < 0:
        raise ConfigError(f"top must be >= 0, got {top}")
    utts = read_manifest(path)
    durations: list[float] = []
    unreadable: list[tuple[str, str]] = []
    from_headers = 0
    for utt in track(utts, len(utts), "reading durations"):
        if utt.duration is not None:
            durations.append(utt.duration)
            continue
        try:
            info = audio_info(utt.audio, utt.raw_format)
        except GruAsrError as err:
            unreadable.append((utt.id, str(err)))
            continue
        durations.append(max(info.duration - (utt.start or 0.0), 0.0))
        from_headers += 1
    words = Counter(word for utt in utts for word in utt.text.split())
    speakers = {utt.speaker for utt in utts if utt.speaker is not None}
    return ManifestStats(
        manifest=str(path),
        utterances=len(utts),
        seconds=sum(durations),
        speakers=len(speakers),
        without_speaker=sum(utt.speaker is None for utt in utts),
        min_duration=min(durations) if durations else None,
        mean_duration=statistics.fmean(durations) if durations else None,
        median_duration=statistics.median(durations) if durations else None,
        max_duration=max(durations) if durations else None,
        histogram=histogram(durations, bins),
        words=sum(words.values()),
        vocabulary=len(words),
        top_words=sorted(words.items(), key=lambda wc: (-wc[1], wc[0]))[:top],
        durations_from_headers=from_headers,
        unreadable=unreadable,
    )


def format_stats(stats: ManifestStats) -> str:
    """Human-readable summary with a text histogram."""
    lines = [
        f"manifest      {stats.manifest}",
        f"utterances    {stats.utterances:,}",
        f"hours         {stats.hours:.3f} ({stats.seconds:,.1f} s)",
        f"speakers      {stats.speakers:,}",
    ]
    if stats.without_speaker:
        lines[-1] += f" ({stats.without_speaker:,} utterances without one)"
    if stats.min_duration is not None:
        lines.append(
            f"duration (s)  min {stats.min_duration:.2f}  mean {stats.mean_duration:.2f}  "
            f"median {stats.median_duration:.2f}  max {stats.max_duration:.2f}"
        )
    if stats.durations_from_headers:
        lines.append(f"              ({stats.durations_from_headers:,} durations read from audio headers)")
    if stats.histogram:
        lines.append("histogram (s)")
        peak = max(b.count for b in stats.histogram)
        for b in stats.histogram:
            bar = "█" * round(BAR_WIDTH * b.count / peak) if peak else ""
            lines.append(f"  {b.lo:7.2f} - {b.hi:7.2f}  {bar:<{BAR_WIDTH}} {b.count:,}")
    lines.append(f"words         {stats.words:,} (vocabulary {stats.vocabulary:,})")
    if stats.top_words:
        lines.append("top words     " + ", ".join(f"{w} {c:,}" for w, c in stats.top_words))
    if stats.unreadable:
        lines.append(f"unreadable    {len(stats.unreadable):,} (no duration field and no readable header)")
        lines += [f"  {utt_id}: {reason}" for utt_id, reason in stats.unreadable[:20]]
        if len(stats.unreadable) > 20:
            lines.append(f"  ... and {len(stats.unreadable) - 20:,} more")
    return "\n".join(lines)
