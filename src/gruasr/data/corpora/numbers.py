"""Connected-digit "phone numbers" built from isolated digit recordings (FSDD), like a caller reading a number.

Each number: one speaker (drawn uniformly), 3-11 digits (count and digits drawn uniformly), each digit one of
that speaker's takes of the digit, a pause of 50-400 ms between digits and 100-300 ms at both ends. Pauses are
very low Gaussian noise (rms 1e-4, about -80 dBFS, a few 16-bit steps) rather than digital zeros, which no
real line carries and which make log features -inf-like. The takes' samples are copied unchanged, so a number's
audio holds each source take bit for bit (the tests check this against sources.jsonl).

Everything random comes from the numpy Generator passed in, so the same seed gives the same files.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gruasr.audio.io import save_wav
from gruasr.data.corpora.check import track
from gruasr.data.manifest import Utterance, load_utterance
from gruasr.errors import ConfigError


@dataclass(frozen=True)
class NumberConfig:
    """Shape of a synthesized number: digits per number, pause between digits and silence at the ends (seconds),
    rms of the noise that fills pauses, output sample rate (Hz)."""

    min_digits: int = 3
    max_digits: int = 11
    min_pause: float = 0.05
    max_pause: float = 0.4
    min_edge: float = 0.1
    max_edge: float = 0.3
    noise_rms: float = 1e-4
    sample_rate: int = 8000

    def __post_init__(self) -> None:
        if not 1 <= self.min_digits <= self.max_digits:
            raise ConfigError(f"digits per number: need 1 <= min <= max, got {self.min_digits}..{self.max_digits}")
        for name, lo, hi in (("pause", self.min_pause, self.max_pause), ("edge", self.min_edge, self.max_edge)):
            if not 0 <= lo <= hi:
                raise ConfigError(f"{name} seconds: need 0 <= min <= max, got {lo}..{hi}")
        if not 0 <= self.noise_rms < 0.1:
            raise ConfigError(f"noise_rms must be in [0, 0.1), got {self.noise_rms}")
        if self.sample_rate <= 0:
            raise ConfigError(f"sample_rate must be positive, got {self.sample_rate}")


@dataclass(frozen=True)
class Piece:
    """Where one source take sits inside a number (seconds)."""

    source: str
    start: float
    duration: float


def _pools(takes: Sequence[Utterance]) -> dict[str, dict[str, list[Utterance]]]:
    """speaker -> word -> takes, every list sorted by id so the draw does not depend on input order."""
    pools: dict[str, dict[str, list[Utterance]]] = defaultdict(lambda: defaultdict(list))
    for take in takes:
        if take.speaker is None or len(take.text.split()) != 1:
            raise ConfigError(f"take {take.id}: needs a speaker and a one-word text, got {take.text!r}")
        pools[take.speaker][take.text].append(take)
    for words in pools.values():
        for group in words.values():
            group.sort(key=lambda u: u.id)
    return pools


def synthesize_numbers(
    takes: Sequence[Utterance],
    count: int,
    rng: np.random.Generator,
    out_dir: Path,
    prefix: str,
    config: NumberConfig | None = None,
) -> list[tuple[Utterance, list[Piece]]]:
    """Write `count` numbers as 16-bit WAV files `out_dir/<prefix>-NNNNN.wav` (older files of that pattern are
    removed first) and `out_dir/sources.jsonl` (which take sits where); return the utterances and pieces."""
    config = config or NumberConfig()
    if count < 0:
        raise ConfigError(f"number count must be >= 0, got {count}")
    pools = _pools(takes)
    if count and not pools:
        raise ConfigError(f"{prefix}: no takes to build numbers from")
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob(f"{prefix}-*.wav"):
        old.unlink()
    cache: dict[str, np.ndarray] = {}
    speakers = sorted(pools)
    sr = config.sample_rate
    made: list[tuple[Utterance, list[Piece]]] = []

    def seconds(lo: float, hi: float) -> int:
        return int(round(rng.uniform(lo, hi) * sr))

    def silence(n: int) -> np.ndarray:
        return (rng.standard_normal(n) * config.noise_rms).astype(np.float32)

    for index in track(range(count), count, f"numbers {prefix}"):
        speaker = speakers[int(rng.integers(len(speakers)))]
        words = sorted(pools[speaker])
        n_digits = int(rng.integers(config.min_digits, config.max_digits + 1))
        chosen = [words[int(rng.integers(len(words)))] for _ in range(n_digits)]
        parts = [silence(seconds(config.min_edge, config.max_edge))]
        offset = len(parts[0])
        pieces = []
        for j, word in enumerate(chosen):
            group = pools[speaker][word]
            take = group[int(rng.integers(len(group)))]
            if take.id not in cache:
                cache[take.id] = load_utterance(take, sample_rate=sr)
            samples = cache[take.id]
            pieces.append(Piece(take.id, offset / sr, len(samples) / sr))
            parts.append(samples)
            offset += len(samples)
            gap = silence(seconds(config.min_pause, config.max_pause) if j < n_digits - 1 else 0)
            parts.append(gap)
            offset += len(gap)
        parts.append(silence(seconds(config.min_edge, config.max_edge)))
        audio = np.concatenate(parts)
        utt_id = f"{prefix}-{index:05d}"
        path = save_wav(out_dir / f"{utt_id}.wav", audio, sr, "pcm16")
        utt = Utterance(utt_id, str(path.resolve()), " ".join(chosen), duration=len(audio) / sr, speaker=speaker)
        made.append((utt, pieces))
    with (out_dir / "sources.jsonl").open("w", encoding="utf-8") as f:
        for utt, pieces in made:
            placed = [{"source": p.source, "start": p.start, "duration": p.duration} for p in pieces]
            f.write(json.dumps({"id": utt.id, "speaker": utt.speaker, "words": placed}) + "\n")
    return made
