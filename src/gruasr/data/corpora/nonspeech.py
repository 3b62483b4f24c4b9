"""A generated corpus of speech-free audio with empty transcripts (`gruasr data nonspeech`).

A recognizer that never saw audio without speech labelled as empty invents words on silence, line noise, hold
music and touch tones. Recipes add this corpus to their training data (text "" -> the CTC target is all blank),
and the evaluation counts the words a model invents per minute of it ("invented words per minute").

Clips are drawn from the kinds of gruasr.audio.signals (silence, dither, white/pink/brown noise, hum, tones,
dial/ring-back/busy/SIT/fax tones, DTMF, music, and mixtures of two), plus, when a speech manifest is given,
crosstalk: another leg's speech heard faintly (-60..-42 dBFS RMS, band-limited) under a line's noise floor.
Crosstalk is for training only: the evaluation set is built from generated signals alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gruasr.audio.io import save_wav
from gruasr.audio.signals import KINDS, at_level, nonspeech, white_noise
from gruasr.audio.telephony import band_limit
from gruasr.data.corpora.check import track
from gruasr.data.manifest import Utterance, load_utterance, read_manifest, write_manifest
from gruasr.errors import ConfigError

#: every kind of generated signal, and "mix" (two kinds summed)
GENERATED = (*KINDS, "mix")


@dataclass(frozen=True)
class NonSpeechConfig:
    count: int = 600
    seed: int = 0
    sample_rate: int = 8000
    min_seconds: float = 0.5
    max_seconds: float = 8.0
    #: share of clips that are faint crosstalk from `crosstalk` speech (0 without a speech manifest)
    crosstalk_share: float = 0.15

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigError(f"count must be >= 1, got {self.count}")
        if not 0 < self.min_seconds <= self.max_seconds <= 60:
            raise ConfigError(f"need 0 < min_seconds <= max_seconds <= 60, got {self.min_seconds}, {self.max_seconds}")
        if not 0.0 <= self.crosstalk_share <= 1.0:
            raise ConfigError(f"crosstalk_share must be in [0, 1], got {self.crosstalk_share}")


def crosstalk(speech: np.ndarray, sample_rate: int, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """Speech (n,) as the other leg's bleed: band-limited, at -60..-42 dBFS, over a -75..-55 dBFS noise floor,
    cut or padded to `seconds`."""
    n = int(round(seconds * sample_rate))
    x = band_limit(speech, sample_rate) if len(speech) > 32 else np.asarray(speech, dtype=np.float32)
    x = at_level(x, rng.uniform(-60.0, -42.0))
    offset = int(rng.integers(0, max(1, n - len(x) + 1))) if len(x) < n else 0
    out = np.zeros(n, dtype=np.float32)
    part = x[:n]
    out[offset : offset + len(part)] = part
    return np.clip(out + white_noise(seconds, sample_rate, rng.uniform(-75.0, -55.0), rng), -1.0, 1.0)


def generate_clip(
    kind: str, seconds: float, config: NonSpeechConfig, rng: np.random.Generator, speech: Sequence[Utterance] = ()
) -> np.ndarray:
    if kind == "crosstalk":
        if not speech:
            raise ConfigError("crosstalk needs a speech manifest")
        utt = speech[int(rng.integers(len(speech)))]
        return crosstalk(load_utterance(utt, config.sample_rate), config.sample_rate, seconds, rng)
    return nonspeech(kind, seconds, config.sample_rate, rng)


def build_nonspeech(
    out: str | Path, name: str, config: NonSpeechConfig, speech_manifest: str | Path | None = None
) -> Path:
    """Write `config.count` clips under out/name/ and the manifest out/name.jsonl (text ""); returns its path.
    Kinds take turns (so every kind is present in any set of 15 or more clips); durations are uniform in
    [min_seconds, max_seconds]; the same config gives the same files."""
    out = Path(out)
    rng = np.random.default_rng(config.seed)
    speech = read_manifest(speech_manifest) if speech_manifest else []
    kinds = list(GENERATED)
    utts = []
    for i in track(range(config.count), config.count, f"non-speech {name}"):
        kind = "crosstalk" if speech and rng.random() < config.crosstalk_share else kinds[i % len(kinds)]
        seconds = float(np.round(rng.uniform(config.min_seconds, config.max_seconds), 2))
        samples = generate_clip(kind, seconds, config, rng, speech)
        path = save_wav(out / name / f"{name}-{i:05d}-{kind}.wav", samples, config.sample_rate)
        utts.append(
            Utterance(
                id=f"nonspeech-{name}-{i:05d}-{kind}",
                audio=str(path),
                text="",
                duration=len(samples) / config.sample_rate,
                speaker=kind,
            )
        )
    return write_manifest(out / f"{name}.jsonl", utts)
