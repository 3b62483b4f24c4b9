"""Reading and writing audio: round trips, raw PCM against known values, real corpora, and clear errors."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gruasr.audio import AN4_RAW, RawFormat, audio_info, load_audio, save_wav
from gruasr.audio.g711 import alaw_decode, lin2alaw, lin2ulaw, ulaw_decode
from gruasr.audio.io import MAX_SAMPLE_RATE
from gruasr.errors import AudioFormatError

from .helpers import amplitude_at, snr_db, tone

ENCODINGS = ["pcm8", "pcm16", "pcm24", "pcm32", "float", "ulaw", "alaw"]
#: the largest error of a save/load round trip for in-range floats: half a step of the format
HALF_STEP = {"pcm8": 0.5 / 128, "pcm16": 0.5 / 32768, "pcm24": 0.5 / 2**23, "pcm32": 6e-8, "float": 0.0}


def noise(n: int, channels: int = 1, seed: int = 0) -> np.ndarray:
    return np.clip(np.random.default_rng(seed).standard_normal((channels, n)) * 0.3, -1, 1).astype(np.float32)


# --- WAV, FLAC and OGG round trips


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_save_wav_round_trip(tmp_path, encoding):
    x = noise(4000, channels=2)
    x[0, :4] = [1.0, -1.0, 0.0, 0.5]  # full scale both ways, zero, and an exact half
    path = save_wav(tmp_path / f"{encoding}.wav", x, 8000, encoding)
    info = audio_info(path)
    assert (info.sample_rate, info.channels, info.frames, info.format) == (8000, 2, 4000, "WAV")
    y = load_audio(path).samples
    assert y.shape == x.shape and y.dtype == np.float32
    if encoding in ("ulaw", "alaw"):
        decode = ulaw_decode if encoding == "ulaw" else alaw_decode
        encode = lin2ulaw if encoding == "ulaw" else lin2alaw
        as_int16 = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)
        np.testing.assert_array_equal(y, decode(encode(as_int16)))
        assert 30 < snr_db(x, y) < 40
    else:
        ceiling = {"pcm8": 127 / 128, "pcm16": 32767 / 32768, "pcm24": 1 - 2**-23}.get(encoding, 1.0)
        expected = np.minimum(x, ceiling)  # +1.0 is one step beyond the largest PCM level
        assert np.abs(y - expected).max() <= HALF_STEP[encoding] + 1e-9
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed away


@pytest.mark.parametrize(("encoding", "bits"), [("pcm8", 8), ("pcm16", 16), ("pcm24", 24), ("pcm32", 32)])
def test_pcm_levels_survive_save_and_load_exactly(tmp_path, encoding, bits):
    """Audio read from a PCM file saves back unchanged, and other floats land on the nearest level without the
    half-step bias of libsndfile's own float conversion (which truncates toward minus infinity)."""
    full = 2 ** (bits - 1)
    levels = np.random.default_rng(1).integers(-full, full, 5000)
    levels[:3] = [-full, full - 1, 1]
    x = (levels / full).astype(np.float32 if bits <= 24 else np.float64)
    once = load_audio(save_wav(tmp_path / "once.wav", x, 16000, encoding)).samples[0]
    if bits <= 24:
        np.testing.assert_array_equal(once, x)
    twice = load_audio(save_wav(tmp_path / "twice.wav", once, 16000, encoding)).samples[0]
    np.testing.assert_array_equal(twice, once)
    between = np.random.default_rng(2).uniform(-0.9, 0.9, 20000)
    error = (load_audio(save_wav(tmp_path / "u.wav", between, 16000, encoding)).samples[0] - between) * full
    if bits <= 24:  # (a float32 sample cannot resolve a 32-bit step)
        assert np.abs(error).max() <= 0.5 + 1e-9 and abs(error.mean()) < 0.02


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_save_wav_writes_the_reference_g711_codes(tmp_path, law):
    """libsndfile's own encoder differs from G.711 at a few hundred inputs; save_wav must not."""
    everything = np.arange(-32768, 32768, dtype=np.int16)
    path = save_wav(tmp_path / f"{law}.wav", everything / 32768, 8000, law)
    blob = path.read_bytes()
    at = blob.index(b"data")
    size = struct.unpack("<I", blob[at + 4 : at + 8])[0]
    codes = np.frombuffer(blob[at + 8 : at + 8 + size], dtype=np.uint8)
    np.testing.assert_array_equal(codes, (lin2ulaw if law == "ulaw" else lin2alaw)(everything))


def test_flac_and_ogg_written_by_soundfile(tmp_path):
    x = (tone(440.0, 16000, 1.0, 0.4)[None, :] * np.array([[1.0], [0.5]])).astype(np.float32)  # stereo
    levels = np.round(x * 32768) / 32768
    sf.write(str(tmp_path / "a.flac"), levels.T, 16000, subtype="PCM_16")
    flac = load_audio(tmp_path / "a.flac")
    assert audio_info(tmp_path / "a.flac").format == "FLAC"
    np.testing.assert_array_equal(flac.samples, levels)  # lossless
    for subtype in ("VORBIS", "OPUS"):
        path = tmp_path / f"a-{subtype}.ogg"
        sf.write(str(path), x.T, 16000, format="OGG", subtype=subtype)
        info = audio_info(path)
        assert (info.format, info.subtype, info.channels, info.sample_rate) == ("OGG", subtype, 2, 16000)
        ogg = load_audio(path)
        assert ogg.samples.shape == x.shape
        for channel, amplitude in ((0, 0.4), (1, 0.2)):
            assert amplitude_at(ogg.samples[channel], 440.0, 16000) == pytest.approx(amplitude, rel=0.05)


def test_stereo_gives_one_signal_per_channel(tmp_path):
    left, right = tone(300.0, 8000, 1.0, 0.5), tone(1200.0, 8000, 1.0, 0.25)
    path = save_wav(tmp_path / "call.wav", np.stack([left, right]), 8000, "pcm16")
    audio = load_audio(path)
    assert audio.channels == 2 and audio.samples.flags.c_contiguous
    assert amplitude_at(audio.channel(0), 300.0, 8000) == pytest.approx(0.5, rel=1e-3)
    assert amplitude_at(audio.channel(0), 1200.0, 8000) < 1e-4
    assert amplitude_at(audio.channel(1), 1200.0, 8000) == pytest.approx(0.25, rel=1e-3)
    assert amplitude_at(audio.channel(1), 300.0, 8000) < 1e-4
    with pytest.raises(AudioFormatError, match="channel 2"):
        audio.channel(2)
    # interleaved raw PCM, two legs
    raw = tmp_path / "call.raw"
    raw.write_bytes(np.array([[1, -1], [2, -2], [3, -3]], dtype="<i2").tobytes())
    legs = load_audio(raw, raw=RawFormat(8000, channels=2)).samples * 32768
    np.testing.assert_array_equal(legs, [[1, 2, 3], [-1, -2, -3]])


# --- headerless raw PCM


def _int_bytes(values: list[int], width: int, order: str) -> bytes:
    return b"".join(v.to_bytes(width, order, signed=True) for v in values)  # type: ignore[arg-type]


RAW_CASES = [  # (format, file bytes, expected floats), bytes written out by hand
    (RawFormat(8000, 1), bytes([128, 192, 64, 0, 255]), [0.0, 0.5, -0.5, -1.0, 127 / 128]),
    *[
        (
            RawFormat(8000, w, order),
            _int_bytes([0, 1 << (8 * w - 2), -(1 << (8 * w - 1)), 1], w, order),
            [0.0, 0.5, -1.0, 2.0 ** (1 - 8 * w)],
        )
        for w in (2, 3, 4)
        for order in ("little", "big")
    ],
    (RawFormat(8000, 4, "little", encoding="float"), struct.pack("<3f", 0.25, -0.75, 1.0), [0.25, -0.75, 1.0]),
    (RawFormat(8000, 4, "big", encoding="float"), struct.pack(">3f", 0.25, -0.75, 1.0), [0.25, -0.75, 1.0]),
    (RawFormat(8000, 8, "little", encoding="float"), struct.pack("<2d", 0.125, -0.5), [0.125, -0.5]),
    (RawFormat(8000, 8, "big", encoding="float"), struct.pack(">2d", 0.125, -0.5), [0.125, -0.5]),
    (RawFormat(8000, 1, encoding="ulaw"), bytes([0xFF, 0x7F, 0x80, 0x00, 0xFE]), [0, 0, 32124, -32124, 8]),
    (RawFormat(8000, 1, encoding="alaw"), bytes([0xD5, 0x55, 0xAA, 0x2A]), [8, -8, 32256, -32256]),
]


@pytest.mark.parametrize(("fmt", "data", "expected"), RAW_CASES, ids=[case[0].spec for case in RAW_CASES])
def test_raw_pcm_known_values(tmp_path, fmt, data, expected):
    path = tmp_path / "x.raw"
    path.write_bytes(data)
    want = np.array(expected, dtype=np.float64)
    if fmt.encoding in ("ulaw", "alaw"):
        want = want / 32768  # the tables' 16-bit levels
    audio = load_audio(path, raw=fmt)
    assert audio.sample_rate == 8000 and audio.samples.dtype == np.float32
    np.testing.assert_array_equal(audio.samples[0], want.astype(np.float32))
    assert audio_info(path, fmt).frames == len(expected)


SPECS = ["u8", "s16le", "s16be", "s24le", "s24be", "s32le", "s32be", "f32le", "f32be", "f64le", "f64be", "ulaw", "alaw"]


@pytest.mark.parametrize("spec", SPECS)
def test_raw_format_parse_and_spec_round_trip(spec):
    fmt = RawFormat.parse(spec, 8000, channels=2)
    assert fmt.spec == spec
    assert RawFormat.parse(fmt.spec, fmt.sample_rate, fmt.channels) == fmt
    assert RawFormat.parse(f"  {spec.upper()} ", 8000, 2) == fmt


def test_raw_format_details():
    assert RawFormat.parse("s16be", 16000) == AN4_RAW
    assert RawFormat(8000, 1, "big").spec == "u8" and RawFormat(8000, 1, "big") == RawFormat(8000, 1)
    for bad in ["s8le", "s16", "x16le", "f16le", "s40le", "", "s16ee", "mp3"]:
        with pytest.raises(AudioFormatError):
            RawFormat.parse(bad, 8000)
    for kwargs in [
        {"sample_rate": 0},
        {"sample_rate": 16000.0},
        {"sample_rate": MAX_SAMPLE_RATE + 1},
        {"sample_rate": 8000, "channels": 0},
        {"sample_rate": 8000, "sample_width": 5},
        {"sample_rate": 8000, "byte_order": "middle"},
        {"sample_rate": 8000, "encoding": "ulaw", "sample_width": 2},
        {"sample_rate": 8000, "encoding": "opus"},
    ]:
        with pytest.raises(AudioFormatError):
            RawFormat(**kwargs)  # type: ignore[arg-type]


# --- the real corpora


def test_every_an4_file_loads(an4_files):
    assert len(an4_files) == 1078  # 948 train + 130 test
    durations = []
    for path in an4_files:
        audio = load_audio(path, raw=AN4_RAW)
        assert audio.sample_rate == 16000 and audio.channels == 1
        assert np.abs(audio.samples).max() > 0.01
        durations.append(audio.duration)
    assert min(durations) > 0.5 and max(durations) < 10
    assert sum(durations) / 3600 == pytest.approx(0.81, abs=0.03)


def test_an4_is_big_endian(an4_files):
    """Read as big-endian, half of every file's samples lie within 2% of full scale (speech is mostly quiet;
    measured: median |x| <= 0.019); the other byte order lifts the noisy low byte to the top (median >= 0.047)."""
    for path in an4_files:
        right = load_audio(path, raw=AN4_RAW).samples[0]
        wrong = load_audio(path, raw=RawFormat(16000, 2, "little")).samples[0]
        assert np.median(np.abs(right)) < 0.03 < np.median(np.abs(wrong)), path.name


def test_every_fsdd_file_loads(fsdd_files):
    assert len(fsdd_files) == 3000
    for path in fsdd_files:
        info = audio_info(path)
        assert (info.sample_rate, info.channels, info.subtype) == (8000, 1, "PCM_16")
        assert 0.1 < info.duration < 3.0
    audio = load_audio(fsdd_files[0])
    raw = np.frombuffer(fsdd_files[0].read_bytes()[44:], dtype="<i2")  # the canonical 44-byte header
    np.testing.assert_array_equal(audio.samples[0], raw / np.float32(32768))


def test_segments(tmp_path, fsdd_files, an4_files):
    path = fsdd_files[7]
    full = load_audio(path).samples
    part = load_audio(path, start=0.1, duration=0.05).samples
    np.testing.assert_array_equal(part, full[:, 800:1200])
    np.testing.assert_array_equal(load_audio(path, start=0.1).samples, full[:, 800:])
    tail = load_audio(path, start=0.1, duration=100.0).samples  # a segment past the end stops at the end
    np.testing.assert_array_equal(tail, full[:, 800:])
    raw_full = load_audio(an4_files[3], raw=AN4_RAW).samples
    raw_part = load_audio(an4_files[3], raw=AN4_RAW, start=0.25, duration=0.5).samples
    np.testing.assert_array_equal(raw_part, raw_full[:, 4000:12000])


def test_resampling_on_load(fsdd_files, an4_files):
    up = load_audio(fsdd_files[0], sample_rate=16000)
    native = load_audio(fsdd_files[0])
    assert up.sample_rate == 16000 and abs(up.samples.shape[1] - 2 * native.samples.shape[1]) <= 1
    down = load_audio(an4_files[0], raw=AN4_RAW, sample_rate=8000)
    full = load_audio(an4_files[0], raw=AN4_RAW)
    assert down.sample_rate == 8000 and abs(down.samples.shape[1] - full.samples.shape[1] / 2) <= 1
    # the segment is cut at the file's rate, then resampled
    seg = load_audio(fsdd_files[0], start=0.05, duration=0.2, sample_rate=16000)
    assert seg.samples.shape == (1, 3200)


# --- errors


def _wav_bytes(frames: int = 100, data_size: int | None = None) -> bytes:
    data = np.arange(frames, dtype="<i2").tobytes()
    size = len(data) if data_size is None else data_size
    fmt = struct.pack("<HHIIHH", 1, 1, 8000, 16000, 2, 16)
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", size) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def test_streamed_wav_with_placeholder_sizes_loads(tmp_path):
    """Recorders writing to a pipe leave 0xFFFFFFFF as the data size: that means "to the end of the file"."""
    path = tmp_path / "streamed.wav"
    path.write_bytes(_wav_bytes(100, data_size=0xFFFFFFFF))
    np.testing.assert_array_equal(load_audio(path).samples[0] * 32768, np.arange(100))


@pytest.mark.parametrize(
    ("name", "content", "kwargs", "message"),
    [
        ("missing.wav", None, {}, "no such file"),
        ("empty.wav", b"", {}, "empty"),
        ("header-cut.wav", _wav_bytes()[:30], {}, "not readable"),
        ("data-cut.wav", _wav_bytes()[:150], {}, "truncated"),
        ("garbage.wav", bytes(range(256)) * 8, {}, "not readable"),
        ("garbage.flac", b"fLaC" + bytes(500), {}, "not readable"),
        ("odd.raw", b"\x00\x01\x02", {"raw": AN4_RAW}, "whole number"),
        ("noformat.raw", b"\x00\x01", {}, "RawFormat"),
        ("long.wav", _wav_bytes(8000), {"max_seconds": 0.5}, "limit"),
        ("seg.wav", _wav_bytes(), {"start": -1.0}, "segment"),
        ("seg.wav", _wav_bytes(), {"start": float("nan")}, "segment"),
        ("seg.wav", _wav_bytes(), {"duration": 0.0}, "segment"),
        ("seg.wav", _wav_bytes(), {"duration": float("inf")}, "segment"),
        ("seg.wav", _wav_bytes(), {"start": "1"}, "segment"),
        ("seg.wav", _wav_bytes(), {"start": 5.0}, "beyond"),
        ("seg.wav", _wav_bytes(), {"duration": 1e-6}, "shorter than one sample"),
        ("rate.wav", _wav_bytes(), {"sample_rate": 0}, "sample rate"),
    ],
)
def test_clear_errors(tmp_path, name, content, kwargs, message):
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(AudioFormatError, match=message) as info:
        load_audio(path, **kwargs)
    assert str(path) in str(info.value)  # names the file


def test_directory_and_info_errors(tmp_path):
    with pytest.raises(AudioFormatError, match="not a regular file"):
        load_audio(tmp_path)
    (tmp_path / "cut.wav").write_bytes(_wav_bytes()[:100])
    with pytest.raises(AudioFormatError, match="truncated"):
        audio_info(tmp_path / "cut.wav")
    blob = bytearray(_wav_bytes())
    blob[24:28] = struct.pack("<I", 1_000_000)  # an implausible rate (1 MHz)
    (tmp_path / "fast.wav").write_bytes(bytes(blob))
    with pytest.raises(AudioFormatError, match="plausible"):
        audio_info(tmp_path / "fast.wav")
    float_wav = tmp_path / "nan.wav"
    sf.write(str(float_wav), np.array([0.0, np.nan, 0.5], np.float32), 8000, subtype="FLOAT")
    with pytest.raises(AudioFormatError, match="NaN"):
        load_audio(float_wav)


def test_save_wav_errors(tmp_path):
    target = tmp_path / "out.wav"
    for samples, rate, encoding, message in [
        (np.array([0.0, np.nan]), 8000, "pcm16", "NaN"),
        (np.zeros((2, 2, 2)), 8000, "pcm16", "shape"),
        (np.zeros(0), 8000, "pcm16", "shape"),
        (np.zeros(10), 0, "pcm16", "sample rate"),
        (np.zeros(10), 8000.5, "pcm16", "sample rate"),
        (np.zeros(10), 8000, "mp3", "encoding"),
        (["a", "b"], 8000, "pcm16", "not numbers"),
    ]:
        with pytest.raises(AudioFormatError, match=message):
            save_wav(target, samples, rate, encoding)
    assert not list(tmp_path.iterdir())  # nothing half-written left behind
    (tmp_path / "taken").mkdir()
    with pytest.raises(AudioFormatError, match="cannot write"):
        save_wav(tmp_path / "taken", np.zeros(10), 8000)
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_loud_and_out_of_range_samples_are_clipped_on_save(tmp_path):
    y = load_audio(save_wav(tmp_path / "loud.wav", np.array([2.0, -3.0, 0.25]), 8000, "float")).samples[0]
    np.testing.assert_array_equal(y, [1.0, -1.0, 0.25])


def test_path_types(tmp_path, fsdd_files):
    assert load_audio(str(fsdd_files[0])).samples.shape == load_audio(Path(fsdd_files[0])).samples.shape
