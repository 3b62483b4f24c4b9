"""Reading and writing audio: WAV (PCM 8/16/24/32-bit, float, G.711 mu-law/A-law), FLAC, OGG and headerless raw PCM.

Everything is decoded to float32 in [-1, 1], shaped (channels, samples): a stereo phone recording gives one
signal per call leg. Decoding goes through libsndfile (python-soundfile); headerless raw PCM is read with numpy
from an explicit `RawFormat` (rate, sample width, byte order), because a raw file says nothing about itself.

Every failure to read (missing, empty, truncated, corrupt, unsupported, absurdly large) raises AudioFormatError
naming the file and the reason; nothing else escapes, and nothing larger than `max_seconds` is allocated.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf

from gruasr.errors import AudioFormatError

#: the longest audio load_audio reads in one piece unless told otherwise (4 hours); longer calls are streamed
MAX_SECONDS = 4 * 3600.0
#: suffixes read as headerless PCM (they need a RawFormat)
RAW_SUFFIXES = (".raw", ".pcm", ".sw", ".ul", ".al")

Encoding = Literal["pcm", "ulaw", "alaw", "float"]


@dataclass(frozen=True)
class RawFormat:
    """How to read headerless audio: samples per second, bytes per sample, byte order, channels, encoding."""

    sample_rate: int
    sample_width: int = 2
    byte_order: Literal["little", "big"] = "little"
    channels: int = 1
    encoding: Encoding = "pcm"

    def __post_init__(self) -> None:
        if self.sample_rate <= 0:
            raise AudioFormatError(f"raw audio: sample_rate must be positive, got {self.sample_rate}")
        if self.channels <= 0:
            raise AudioFormatError(f"raw audio: channels must be positive, got {self.channels}")
        if self.byte_order not in ("little", "big"):
            raise AudioFormatError(f"raw audio: byte_order must be 'little' or 'big', got {self.byte_order!r}")
        allowed = {"pcm": (1, 2, 3, 4), "float": (4, 8), "ulaw": (1,), "alaw": (1,)}
        if self.encoding not in allowed:
            raise AudioFormatError(f"raw audio: unknown encoding {self.encoding!r}")
        if self.sample_width not in allowed[self.encoding]:
            raise AudioFormatError(
                f"raw audio: {self.encoding} needs sample_width in {allowed[self.encoding]}, got {self.sample_width}"
            )


    @classmethod
    def parse(cls, spec: str, sample_rate: int, channels: int = 1) -> RawFormat:
        """From a short spec as manifests store it: "s16le", "s16be", "s24le", "s32be", "u8", "f32le", "f64be",
        "ulaw", "alaw" (s = signed PCM, u8 = unsigned 8-bit PCM, f = float; le/be = byte order)."""
        spec = spec.strip().lower()
        if spec in ("ulaw", "alaw"):
            return cls(sample_rate, 1, "little", channels, spec)  # type: ignore[arg-type]
        if spec == "u8":
            return cls(sample_rate, 1, "little", channels, "pcm")
        kinds = {"s": "pcm", "f": "float"}
        if len(spec) >= 4 and spec[0] in kinds and spec[-2:] in ("le", "be") and spec[1:-2].isdigit():
            bits = int(spec[1:-2])
            order = "little" if spec.endswith("le") else "big"
            if bits % 8 == 0 and not (spec[0] == "s" and bits == 8):
                return cls(sample_rate, bits // 8, order, channels, kinds[spec[0]])  # type: ignore[arg-type]
        raise AudioFormatError(f"unknown raw audio encoding {spec!r} (e.g. s16le, s16be, s24le, u8, f32le, ulaw)")

    @property
    def spec(self) -> str:
        """The short spec `parse` reads back."""
        if self.encoding in ("ulaw", "alaw"):
            return self.encoding
        if self.encoding == "pcm" and self.sample_width == 1:
            return "u8"
        kind = "s" if self.encoding == "pcm" else "f"
        return f"{kind}{8 * self.sample_width}{'le' if self.byte_order == 'little' else 'be'}"


#: CMU AN4 as distributed: 16 kHz, 16-bit, big-endian, mono
AN4_RAW = RawFormat(sample_rate=16000, sample_width=2, byte_order="big")


@dataclass(frozen=True)
class AudioInfo:
    """What a file holds, read from its header: rate (Hz), channels, frames (samples per channel)."""

    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate


@dataclass(frozen=True)
class Audio:
    """Decoded audio: samples float32 (channels, n) in [-1, 1] at sample_rate Hz."""

    samples: np.ndarray
    sample_rate: int

    @property
    def channels(self) -> int:
        return int(self.samples.shape[0])

    @property
    def duration(self) -> float:
        return self.samples.shape[1] / self.sample_rate

    def channel(self, index: int) -> np.ndarray:
        """One channel (call leg) as a 1-D float32 array."""
        if not 0 <= index < self.channels:
            raise AudioFormatError(f"channel {index} requested from audio with {self.channels} channel(s)")
        return self.samples[index]


def _check_file(path: Path) -> int:
    if not path.exists():
        raise AudioFormatError(f"{path}: no such file")
    if not path.is_file():
        raise AudioFormatError(f"{path}: not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise AudioFormatError(f"{path}: empty file")
    return size


def is_raw(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in RAW_SUFFIXES


def _raw_info(path: Path, raw: RawFormat) -> AudioInfo:
    size = _check_file(path)
    frame_bytes = raw.sample_width * raw.channels
    if size % frame_bytes:
        raise AudioFormatError(f"{path}: {size} bytes is not a whole number of {frame_bytes}-byte frames")
    return AudioInfo(raw.sample_rate, raw.channels, size // frame_bytes, "RAW", f"{raw.encoding}{8 * raw.sample_width}")


def audio_info(path: str | os.PathLike[str], raw: RawFormat | None = None) -> AudioInfo:
    """Read a file's header (no samples). Raw PCM needs `raw`; other formats are recognised by content."""
    path = Path(path)
    if raw is not None or is_raw(path):
        if raw is None:
            raise AudioFormatError(f"{path}: headerless raw audio needs a RawFormat (rate, width, byte order)")
        return _raw_info(path, raw)
    _check_file(path)
    try:
        info = sf.info(str(path))
    except Exception as err:  # libsndfile reports corrupt input with several exception types
        raise AudioFormatError(f"{path}: not readable audio ({_reason(err)})") from None
    if info.samplerate <= 0 or info.channels <= 0:
        raise AudioFormatError(f"{path}: header declares {info.samplerate} Hz and {info.channels} channels")
    if info.frames <= 0:
        raise AudioFormatError(f"{path}: no audio samples")
    return AudioInfo(int(info.samplerate), int(info.channels), int(info.frames), info.format, info.subtype)


def _reason(err: Exception) -> str:
    text = str(err).strip().splitlines()
    return text[-1] if text else type(err).__name__


def _decode_raw(data: bytes, raw: RawFormat) -> np.ndarray:
    """Raw bytes -> float32 (n, channels)."""
    from gruasr.audio.g711 import alaw_decode, ulaw_decode

    if raw.encoding in ("ulaw", "alaw"):
        codes = np.frombuffer(data, dtype=np.uint8)
        out = ulaw_decode(codes) if raw.encoding == "ulaw" else alaw_decode(codes)
    elif raw.encoding == "float":
        order = "<" if raw.byte_order == "little" else ">"
        out = np.frombuffer(data, dtype=f"{order}f{raw.sample_width}").astype(np.float32)
    elif raw.sample_width == 1:  # 8-bit PCM is unsigned, centred on 128
        out = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128.0) / 128.0
    elif raw.sample_width == 3:
        b = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        lo, mid, hi = (b[:, 0], b[:, 1], b[:, 2]) if raw.byte_order == "little" else (b[:, 2], b[:, 1], b[:, 0])
        value = lo | (mid << 8) | (hi << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)
        out = value.astype(np.float32) / float(1 << 23)
    else:
        order = "<" if raw.byte_order == "little" else ">"
        ints = np.frombuffer(data, dtype=f"{order}i{raw.sample_width}")
        out = (ints.astype(np.float64) / float(1 << (8 * raw.sample_width - 1))).astype(np.float32)
    return out.reshape(-1, raw.channels)


def load_audio(
    path: str | os.PathLike[str],
    *,
    raw: RawFormat | None = None,
    sample_rate: int | None = None,
    start: float = 0.0,
    duration: float | None = None,
    max_seconds: float = MAX_SECONDS,
) -> Audio:
    """Decode a file to float32 (channels, n); optionally a segment [start, start + duration) in seconds, and
    resampled to `sample_rate` Hz. Raises AudioFormatError for anything unreadable or longer than max_seconds."""
    path = Path(path)
    info = audio_info(path, raw)
    if start < 0 or (duration is not None and duration <= 0):
        raise AudioFormatError(f"{path}: bad segment start={start} duration={duration}")
    first = int(round(start * info.sample_rate))
    count = info.frames - first if duration is None else int(round(duration * info.sample_rate))
    if first >= info.frames or count <= 0:
        raise AudioFormatError(f"{path}: segment starts at {start:.3f} s, beyond the audio's {info.duration:.3f} s")
    count = min(count, info.frames - first)
    if count / info.sample_rate > max_seconds:
        raise AudioFormatError(
            f"{path}: {count / info.sample_rate:.0f} s of audio is over the {max_seconds:.0f} s limit for one read"
        )
    if raw is not None:  # (a raw suffix without a RawFormat was refused by audio_info)
        width = raw.sample_width * raw.channels
        with path.open("rb") as f:
            f.seek(first * width)
            data = f.read(count * width)
        frames = _decode_raw(data, raw)
    else:
        try:
            frames = sf.read(str(path), start=first, frames=count, dtype="float32", always_2d=True)[0]
        except Exception as err:
            raise AudioFormatError(f"{path}: cannot decode ({_reason(err)})") from None
    if frames.shape[0] == 0:
        raise AudioFormatError(f"{path}: no audio samples could be decoded")
    if not np.all(np.isfinite(frames)):
        raise AudioFormatError(f"{path}: contains NaN or infinite samples")
    samples = np.ascontiguousarray(frames.T, dtype=np.float32)  # (channels, n)
    rate = info.sample_rate
    if sample_rate is not None and sample_rate != rate:
        from gruasr.audio.resample import resample

        samples = resample(samples, rate, sample_rate)
        rate = sample_rate
    return Audio(samples, rate)


WavEncoding = Literal["pcm16", "pcm24", "pcm32", "pcm8", "float", "ulaw", "alaw"]
_SUBTYPES = {
    "pcm16": "PCM_16",
    "pcm24": "PCM_24",
    "pcm32": "PCM_32",
    "pcm8": "PCM_U8",
    "float": "FLOAT",
    "ulaw": "ULAW",
    "alaw": "ALAW",
}


def save_wav(
    path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int, encoding: WavEncoding = "pcm16"
) -> Path:
    """Write float samples (n,) or (channels, n) in [-1, 1] as a WAV file; written atomically (temp + rename)."""
    path = Path(path)
    data = np.asarray(samples, dtype=np.float32)
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2 or data.shape[1] == 0:
        raise AudioFormatError(f"save_wav expects samples (n,) or (channels, n), got shape {np.shape(samples)}")
    if encoding not in _SUBTYPES:
        raise AudioFormatError(f"save_wav: encoding must be one of {list(_SUBTYPES)}, got {encoding!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    sf.write(str(tmp), np.clip(data, -1.0, 1.0).T, sample_rate, subtype=_SUBTYPES[encoding], format="WAV")
    os.replace(tmp, path)
    return path
