"""Reading and writing audio: WAV (PCM 8/16/24/32-bit, float, G.711 mu-law/A-law), FLAC, OGG and headerless raw PCM.

Everything is decoded to float32 in [-1, 1], shaped (channels, samples): a stereo phone recording gives one
signal per call leg. Decoding goes through libsndfile (python-soundfile); headerless raw PCM is read with numpy
from an explicit `RawFormat` (rate, sample width, byte order), because a raw file says nothing about itself.

Every failure to read (missing, empty, truncated, corrupt, unsupported, implausible, too long) raises AudioFormatError
naming the file and the reason; nothing else escapes. Memory follows the audio decoded, never a header's claims.
"""

from __future__ import annotations

import math
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
#: sample rates (Hz) outside this range are refused as implausible: a corrupt header could otherwise ask the
#: resampler for a 2 GHz -> 8 kHz filter, or turn a few frames at 1 Hz into hours of audio
MIN_SAMPLE_RATE = 1000
MAX_SAMPLE_RATE = 768_000
#: frames decoded per block: memory follows the audio actually in the file, never a length its header claims
_BLOCK_VALUES = 1 << 20

Encoding = Literal["pcm", "ulaw", "alaw", "float"]


def _check_rate(rate: object, what: str) -> None:
    if isinstance(rate, bool) or not isinstance(rate, (int, np.integer)):
        raise AudioFormatError(f"{what}: sample rate must be an integer number of Hz, got {rate!r}")
    if not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE:
        raise AudioFormatError(
            f"{what}: sample rate {rate} Hz is outside the plausible {MIN_SAMPLE_RATE}..{MAX_SAMPLE_RATE} Hz"
        )


@dataclass(frozen=True)
class RawFormat:
    """How to read headerless audio: samples per second, bytes per sample, byte order, channels, encoding."""

    sample_rate: int
    sample_width: int = 2
    byte_order: Literal["little", "big"] = "little"
    channels: int = 1
    encoding: Encoding = "pcm"

    def __post_init__(self) -> None:
        for name in ("sample_rate", "sample_width", "channels"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise AudioFormatError(f"raw audio: {name} must be an integer, got {value!r}")
            object.__setattr__(self, name, int(value))
        _check_rate(self.sample_rate, "raw audio")
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
        if self.sample_width == 1:  # one byte has no byte order: keep one canonical value, so parse(spec) == self
            object.__setattr__(self, "byte_order", "little")

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


def _wav_truncation(path: Path, size: int) -> str | None:
    """Why a RIFF/WAVE file is cut short, or None. libsndfile silently reads whatever part of the 'data' chunk is
    present; a partial upload or copy should fail loudly instead. A declared size of 0 or 0xFFFFFFFF is the
    placeholder recorders leave when they write to a pipe, so it means "to the end of the file", not truncation."""
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        offset = 12
        for _ in range(1024):  # bounded: a corrupt chunk list cannot keep us walking
            f.seek(offset)
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            declared = int.from_bytes(chunk[4:], "little")
            if chunk[:4] == b"data":
                present = size - offset - 8
                if declared not in (0, 0xFFFFFFFF) and declared > present:
                    return f"truncated: the data chunk declares {declared} bytes, the file holds {present}"
                return None
            offset += 8 + declared + (declared & 1)  # chunks are padded to an even size
    return None


def audio_info(path: str | os.PathLike[str], raw: RawFormat | None = None) -> AudioInfo:
    """Read a file's header (no samples). Raw PCM needs `raw`; other formats are recognised by content.
    Raises AudioFormatError for anything unreadable, an implausible rate, no samples, or a truncated WAV."""
    path = Path(path)
    if raw is not None or is_raw(path):
        if raw is None:
            raise AudioFormatError(f"{path}: headerless raw audio needs a RawFormat (rate, width, byte order)")
        return _raw_info(path, raw)
    size = _check_file(path)
    try:
        info = sf.info(str(path))
        truncation = _wav_truncation(path, size)
    except Exception as err:  # libsndfile reports corrupt input with several exception types
        raise AudioFormatError(f"{path}: not readable audio ({_reason(err)})") from None
    if info.channels <= 0:
        raise AudioFormatError(f"{path}: header declares {info.channels} channels")
    _check_rate(info.samplerate, str(path))
    if truncation:
        raise AudioFormatError(f"{path}: {truncation}")
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
        with np.errstate(over="ignore"):  # a float64 beyond float32's range becomes inf, refused by the caller
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


def _seconds(path: Path, name: str, value: object, allow_zero: bool) -> float:
    number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    seconds = float(value) if number else math.nan  # type: ignore[arg-type]
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        sign = ">=" if allow_zero else ">"
        raise AudioFormatError(f"{path}: bad segment: {name} must be finite seconds {sign} 0, got {value!r}")
    return seconds


def _read_raw(path: Path, raw: RawFormat, first: int, count: int) -> np.ndarray:
    """Frames [first, first + count) of a headerless file -> float32 (channels, n)."""
    width = raw.sample_width * raw.channels
    with path.open("rb") as f:
        f.seek(first * width)
        data = f.read(count * width)
    return _decode_raw(data[: len(data) - len(data) % width], raw).T


def _read_sndfile(path: Path, info: AudioInfo, first: int, count: int) -> np.ndarray:
    """Decode frames [first, first + count) in blocks -> float32 (channels, n). The list of blocks grows with
    the audio really decoded, so a header that claims hours of audio in a few bytes allocates nothing."""
    blocks: list[np.ndarray] = [np.zeros((info.channels, 0), np.float32)]
    got = 0
    try:
        with sf.SoundFile(str(path)) as f:
            if first:
                f.seek(first)
            while got < count:
                chunk = f.read(min(_BLOCK_VALUES // info.channels + 1, count - got), dtype="float32", always_2d=True)
                if chunk.shape[0] == 0:
                    break
                blocks.append(chunk.T)  # (channels, n)
                got += chunk.shape[0]
    except Exception as err:
        raise AudioFormatError(f"{path}: cannot decode ({_reason(err)})") from None
    if got < count and info.format != "MP3":  # libsndfile only estimates an MP3's length
        raise AudioFormatError(f"{path}: truncated or corrupt: {count} frames expected from {first}, {got} decoded")
    return np.concatenate(blocks, axis=1)


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
    start = _seconds(path, "start", start, allow_zero=True)
    if duration is not None:
        duration = _seconds(path, "duration", duration, allow_zero=False)
    if not max_seconds > 0:
        raise AudioFormatError(f"{path}: max_seconds must be > 0, got {max_seconds!r}")
    if sample_rate is not None:
        _check_rate(sample_rate, f"{path}: requested")
    info = audio_info(path, raw)
    first = int(round(start * info.sample_rate))
    if first >= info.frames:
        raise AudioFormatError(f"{path}: segment starts at {start:.3f} s, beyond the audio's {info.duration:.3f} s")
    count = (
        info.frames - first if duration is None else min(int(round(duration * info.sample_rate)), info.frames - first)
    )
    if count <= 0:
        raise AudioFormatError(f"{path}: segment of {duration} s is shorter than one sample at {info.sample_rate} Hz")
    if count / info.sample_rate > max_seconds:
        raise AudioFormatError(
            f"{path}: {count / info.sample_rate:.0f} s of audio is over the {max_seconds:.0f} s limit for one read"
        )
    samples = _read_raw(path, raw, first, count) if raw is not None else _read_sndfile(path, info, first, count)
    if samples.shape[1] == 0:
        raise AudioFormatError(f"{path}: no audio samples could be decoded")
    if not np.all(np.isfinite(samples)):
        raise AudioFormatError(f"{path}: contains NaN or infinite samples")
    samples = np.ascontiguousarray(samples, dtype=np.float32)  # (channels, n)
    rate = info.sample_rate
    if sample_rate is not None and sample_rate != rate:
        from gruasr.audio.resample import resample

        samples = resample(samples, rate, int(sample_rate))
        rate = int(sample_rate)
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


_PCM_BITS = {"pcm8": 8, "pcm16": 16, "pcm24": 24, "pcm32": 32}


def _wav_values(data: np.ndarray, encoding: str) -> np.ndarray:
    """Float samples in [-1, 1] -> the values to hand libsndfile, so that load_audio reads back the nearest level.
    Given floats, libsndfile scales them to 32 bits and drops the low bits: it truncates toward minus infinity,
    an error of up to one step and a DC bias of half a step; integers it writes as they are. Its G.711 encoder
    rounds differently from the reference at some decision levels (~380 of the 65536 inputs for mu-law); handed
    a code's own level, it writes that code, so ulaw/alaw files hold the ITU-T G.711 reference codes."""
    from gruasr.audio.g711 import alaw2lin, alaw_encode, ulaw2lin, ulaw_encode

    if encoding in ("ulaw", "alaw"):
        return ulaw2lin(ulaw_encode(data)) if encoding == "ulaw" else alaw2lin(alaw_encode(data))
    if encoding == "float":
        return data.astype(np.float32)
    bits = _PCM_BITS[encoding]
    full = 2.0 ** (bits - 1)
    levels = np.clip(np.round(data * full), -full, full - 1)
    if bits <= 16:  # libsndfile writes the top byte of a short as PCM_U8
        return (levels * 2.0 ** (16 - bits)).astype(np.int16)
    return (levels * 2.0 ** (32 - bits)).astype(np.int32)  # and the top 3 bytes of an int as PCM_24


def save_wav(
    path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int, encoding: WavEncoding = "pcm16"
) -> Path:
    """Write float samples (n,) or (channels, n) in [-1, 1] (values outside are clipped) as a WAV file, written
    atomically (temp file + rename). PCM samples are rounded to the nearest level, so audio read with load_audio
    saves back bit-exactly; ulaw/alaw files hold the ITU-T G.711 reference codes (gruasr.audio.g711)."""
    path = Path(path)
    if encoding not in _SUBTYPES:
        raise AudioFormatError(f"save_wav: encoding must be one of {list(_SUBTYPES)}, got {encoding!r}")
    _check_rate(sample_rate, f"save_wav {path}")
    try:
        data = np.asarray(samples, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise AudioFormatError(f"save_wav: samples are not numbers ({err})") from None
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2 or data.shape[1] == 0:
        raise AudioFormatError(f"save_wav expects samples (n,) or (channels, n), got shape {np.shape(samples)}")
    if not np.all(np.isfinite(data)):
        raise AudioFormatError("save_wav: samples contain NaN or infinite values")
    frames = _wav_values(np.clip(data, -1.0, 1.0), encoding)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(str(tmp), frames.T, int(sample_rate), subtype=_SUBTYPES[encoding], format="WAV")
        os.replace(tmp, path)
    except Exception as err:
        tmp.unlink(missing_ok=True)
        raise AudioFormatError(f"save_wav {path}: cannot write ({_reason(err)})") from None
    return path
