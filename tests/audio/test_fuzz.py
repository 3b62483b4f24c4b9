"""Fuzzing the readers: whatever a file holds, audio_info/load_audio give audio or raise AudioFormatError, never
another exception, a crash, a hang or an allocation larger than the audio really present."""

from __future__ import annotations

import io
import os
import struct
import tracemalloc
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from gruasr.audio import RawFormat, audio_info, load_audio
from gruasr.audio.io import MAX_SAMPLE_RATE, MIN_SAMPLE_RATE, Audio
from gruasr.errors import AudioFormatError

#: a hang in a decoder fails the test instead of stalling the suite
pytestmark = pytest.mark.timeout(int(os.environ.get("GRUASR_FUZZ_TIMEOUT", "120")))
#: examples per fuzz test; a longer campaign: GRUASR_FUZZ_EXAMPLES=20000 GRUASR_FUZZ_TIMEOUT=3600 pytest ...
EXAMPLES = int(os.environ.get("GRUASR_FUZZ_EXAMPLES", "400"))
FUZZ = settings(max_examples=EXAMPLES, deadline=timedelta(seconds=5), database=None)
#: peak Python/numpy memory one read may take: a few of the 4 MB decode blocks, whatever a header claims
MAX_PEAK_BYTES = 32 * 2**20


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def read(path: Path, raw: RawFormat | None = None) -> Audio | None:
    """load_audio's result, or None when it refused with AudioFormatError; checks the contract either way."""
    tracemalloc.start()
    try:
        try:
            info = audio_info(path, raw)
        except AudioFormatError:
            info = None
        try:
            audio: Audio | None = load_audio(path, raw=raw)
        except AudioFormatError as err:
            assert str(path) in str(err)  # the message names the file
            audio = None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < MAX_PEAK_BYTES, f"{peak / 2**20:.0f} MiB allocated"
    if audio is not None:
        assert info is not None  # load_audio never reads what audio_info refuses
        assert audio.samples.dtype == np.float32 and audio.samples.ndim == 2
        assert audio.channels == info.channels and audio.sample_rate == info.sample_rate
        assert 0 < audio.samples.shape[1] <= info.frames
        assert np.all(np.isfinite(audio.samples))
        assert MIN_SAMPLE_RATE <= audio.sample_rate <= MAX_SAMPLE_RATE
    return audio


def write(directory: Path, name: str, blob: bytes) -> Path:
    path = directory / name
    path.write_bytes(blob)
    return path


def wav_header(
    fmt_tag: int = 1,
    channels: int = 1,
    rate: int = 8000,
    bits: int = 16,
    byte_rate: int | None = None,
    block_align: int | None = None,
    data_size: int | None = None,
    riff_size: int | None = None,
    data: bytes = b"",
    extension: bytes = b"",
) -> bytes:
    block = (channels * ((bits + 7) // 8)) & 0xFFFF if block_align is None else block_align
    byte_rate = (rate * block) & 0xFFFFFFFF if byte_rate is None else byte_rate
    fmt = struct.pack("<HHIIHH", fmt_tag, channels, rate, byte_rate, block, bits) + extension
    size = len(data) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body) if riff_size is None else riff_size) + body


def sound_bytes(fmt: str, subtype: str, channels: int = 1, frames: int = 400) -> bytes:
    """A valid file written by libsndfile, as bytes."""
    x = np.sin(np.arange(frames * channels) * 0.07).reshape(frames, channels) * 0.5
    buffer = io.BytesIO()
    sf.write(buffer, x, 8000, format=fmt, subtype=subtype)
    return buffer.getvalue()


MAGIC = [b"", b"RIFF", b"RIFF\x24\x00\x00\x00WAVEfmt ", b"RIFF\xff\xff\xff\xffWAVEdata", b"fLaC", b"OggS", b"FORM",
         b".snd", b"ID3\x03\x00\x00\x00", b"\xff\xfb\x90\x64", b"RF64"]  # fmt: skip


@FUZZ
@given(
    magic=st.sampled_from(MAGIC),
    body=st.binary(max_size=4096),
    suffix=st.sampled_from([".wav", ".flac", ".ogg", ".WAV", ""]),
)
def test_random_bytes(fuzz_dir, magic, body, suffix):
    read(write(fuzz_dir, f"random{suffix}", magic + body))


RAW_SPECS = ["u8", "s16le", "s24be", "f32le", "f64be", "ulaw"]


@FUZZ
@given(body=st.binary(min_size=1, max_size=2048), spec=st.sampled_from(RAW_SPECS), channels=st.integers(1, 3))
def test_random_bytes_as_raw(fuzz_dir, body, spec, channels):
    fmt = RawFormat.parse(spec, 8000, channels)
    audio = read(write(fuzz_dir, "random.raw", body), raw=fmt)
    whole = len(body) % (fmt.sample_width * channels) == 0
    finite = spec not in ("f32le", "f64be")  # random bytes may spell NaN in a float format
    assert (audio is not None) == whole or (not finite and audio is None)


WAV_SUBTYPES = ["PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "ULAW", "ALAW"]


@FUZZ
@given(subtype=st.sampled_from(WAV_SUBTYPES), channels=st.integers(1, 3), frames=st.integers(1, 300), data=st.data())
def test_truncated_wav(fuzz_dir, subtype, channels, frames, data):
    blob = sound_bytes("WAV", subtype, channels, frames)
    data_at = blob.index(b"data")
    data_end = data_at + 8 + struct.unpack("<I", blob[data_at + 4 : data_at + 8])[0]
    cut = data.draw(st.integers(0, len(blob) - 1), label="cut")
    audio = read(write(fuzz_dir, "cut.wav", blob[:cut]))
    if cut < data_end:
        assert audio is None  # every cut short of the declared data is refused
    else:  # only a pad byte after the data went missing
        assert audio is not None and audio.samples.shape == (channels, frames)


SIZES = st.one_of(st.sampled_from([0, 1, 2, 199, 200, 201, 2**31 - 1, 2**31, 2**32 - 2, 2**32 - 1]),
                  st.integers(0, 2**32 - 1))  # fmt: skip


@FUZZ
@given(riff_size=SIZES, data_size=SIZES)
def test_absurd_chunk_sizes(fuzz_dir, riff_size, data_size):
    samples = np.arange(100, dtype="<i2")
    blob = wav_header(data=samples.tobytes(), data_size=data_size, riff_size=riff_size)
    audio = read(write(fuzz_dir, "sizes.wav", blob))
    if data_size == 0xFFFFFFFF:  # "to the end of the file"
        assert audio is not None
        np.testing.assert_array_equal(audio.samples[0] * 32768, samples)
    elif data_size == 0:  # the other placeholder: libsndfile reads to the end or nothing, depending on the RIFF size
        if audio is not None:
            np.testing.assert_array_equal(audio.samples[0] * 32768, samples)
    elif data_size > 200 or data_size < 2:
        assert audio is None  # truncated, or nothing
    else:
        assert audio is not None
        np.testing.assert_array_equal(audio.samples[0] * 32768, samples[: data_size // 2])


def edges(*values: int) -> st.SearchStrategy[int]:
    return st.sampled_from(values)


@FUZZ
@given(
    fmt_tag=st.one_of(edges(0, 1, 2, 3, 6, 7, 0x11, 0xFFFE), st.integers(0, 0xFFFF)),
    channels=st.one_of(edges(0, 1, 2, 8, 1024, 1025, 0xFFFF), st.integers(0, 0xFFFF)),
    rate=st.one_of(
        edges(0, 1, 999, 1000, 8000, 768000, 768001, 2**31 - 1, 2**31, 2**32 - 1), st.integers(0, 2**32 - 1)
    ),
    bits=st.one_of(edges(0, 1, 4, 7, 8, 12, 16, 20, 24, 32, 33, 64, 0xFFFF), st.integers(0, 0xFFFF)),
    byte_rate=st.one_of(st.none(), st.integers(0, 2**32 - 1)),
    block_align=st.one_of(st.none(), st.integers(0, 0xFFFF)),
    extension=st.one_of(st.just(b""), st.binary(min_size=2, max_size=40)),
    data=st.binary(max_size=2048),
)
def test_wrong_fmt_fields(fuzz_dir, fmt_tag, channels, rate, bits, byte_rate, block_align, extension, data):
    blob = wav_header(fmt_tag, channels, rate, bits, byte_rate, block_align, data=data, extension=extension)
    audio = read(write(fuzz_dir, "fmt.wav", blob))
    if channels == 0 or not MIN_SAMPLE_RATE <= rate <= MAX_SAMPLE_RATE or not data:
        assert audio is None


VALID = {
    "flac": sound_bytes("FLAC", "PCM_16", channels=2, frames=4000),
    "ogg": sound_bytes("OGG", "VORBIS", channels=1, frames=4000),
    "wav": sound_bytes("WAV", "PCM_16", channels=2, frames=400),
}


@FUZZ
@given(kind=st.sampled_from(sorted(VALID)), data=st.data())
def test_mutated_files(fuzz_dir, kind, data):
    """A valid file with a few bytes changed (most in the headers) and maybe cut short."""
    blob = bytearray(VALID[kind])
    positions = st.one_of(st.integers(0, 63), st.integers(0, len(blob) - 1))
    for at, value in data.draw(st.lists(st.tuples(positions, st.integers(1, 255)), min_size=1, max_size=6)):
        blob[at] ^= value
    cut = data.draw(st.one_of(st.just(len(blob)), st.integers(1, len(blob))), label="cut")
    read(write(fuzz_dir, f"mutated.{kind}", bytes(blob[:cut])))


@FUZZ
@given(
    rate=st.integers(0, 2**20 - 1),
    channels=st.integers(1, 8),
    bits=st.integers(1, 32),
    total=st.one_of(edges(0, 1, 4000, 2**36 - 1), st.integers(0, 2**36 - 1)),
    cut=st.one_of(st.none(), st.integers(42, 2000)),
)
def test_flac_streaminfo_claims(fuzz_dir, rate, channels, bits, total, cut):
    """FLAC's header gives rate, channels, bits and total samples; a lie must cost no memory."""
    blob = bytearray(VALID["flac"])
    packed = (rate << 44) | ((channels - 1) << 41) | ((bits - 1) << 36) | total
    blob[18:26] = packed.to_bytes(8, "big")  # after 'fLaC', the block header and the block/frame size fields
    read(write(fuzz_dir, "claims.flac", bytes(blob[:cut])))


def test_a_small_file_claiming_hours_allocates_nothing(tmp_path):
    """47 minutes of 48 kHz stereo (1 GiB as float32) declared by a small file: refused without allocating what the
    header declares (reading in one piece, as load_audio once did, allocates the whole GiB first)."""
    blob = bytearray(VALID["flac"])
    packed = (48000 << 44) | (1 << 41) | (15 << 36) | (48000 * 2800)
    blob[18:26] = packed.to_bytes(8, "big")
    path = write(tmp_path, "hours.flac", bytes(blob))  # the frames of half a second follow
    assert audio_info(path).duration == pytest.approx(2800.0)
    assert read(path) is None
