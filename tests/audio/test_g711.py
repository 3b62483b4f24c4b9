"""G.711 mu-law and A-law against the standard's tables.

Oracle: the stdlib `audioop` module (Python <= 3.12; its G.711 is the CCITT reference code) or the audioop-lts
package that carries it on Python >= 3.13; plus a few values of the ITU-T G.711 tables written out here, and
libsndfile's decoder.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from gruasr.audio import load_audio
from gruasr.audio.g711 import (
    alaw2lin,
    alaw_decode,
    alaw_encode,
    lin2alaw,
    lin2ulaw,
    ulaw2lin,
    ulaw_decode,
    ulaw_encode,
)

from .helpers import snr_db, tone

with warnings.catch_warnings():  # deprecated since 3.11, removed in 3.13 (then audioop-lts provides it)
    warnings.simplefilter("ignore", DeprecationWarning)
    import audioop

ALL_INT16 = np.arange(-32768, 32768, dtype=np.int16)
ALL_CODES = np.arange(256, dtype=np.uint8)
LAWS = {
    "ulaw": (lin2ulaw, ulaw2lin, audioop.lin2ulaw, audioop.ulaw2lin),
    "alaw": (lin2alaw, alaw2lin, audioop.lin2alaw, audioop.alaw2lin),
}


@pytest.mark.parametrize("law", LAWS)
def test_every_int16_input_encodes_as_the_reference(law):
    encode, _, ref_encode, _ = LAWS[law]
    ours = encode(ALL_INT16)
    ref = np.frombuffer(ref_encode(ALL_INT16.tobytes(), 2), dtype=np.uint8)
    assert ours.dtype == np.uint8
    mismatch = np.flatnonzero(ours != ref)
    assert mismatch.size == 0, f"{mismatch.size} inputs differ, e.g. {ALL_INT16[mismatch[:5]]}"


@pytest.mark.parametrize("law", LAWS)
def test_every_code_decodes_as_the_reference(law):
    _, decode, _, ref_decode = LAWS[law]
    ours = decode(ALL_CODES)
    ref = np.frombuffer(ref_decode(ALL_CODES.tobytes(), 2), dtype=np.int16)
    assert ours.dtype == np.int16
    np.testing.assert_array_equal(ours, ref)


def test_values_from_the_g711_tables():
    # mu-law: 0xFF and 0x7F are +0 and -0, 0x80/0x00 the largest magnitudes (8031 on the 14-bit scale * 4)
    assert list(ulaw2lin(np.array([0xFF, 0x7F, 0x80, 0x00, 0xFE]))) == [0, 0, 32124, -32124, 8]
    assert list(lin2ulaw(np.array([0, 32767, -32768, 8]))) == [0xFF, 0x80, 0x00, 0xFE]
    # A-law: even bits inverted (XOR 0x55); 0xD5/0x55 the smallest magnitudes, 0xAA/0x2A the largest (4032 * 8)
    assert list(alaw2lin(np.array([0xD5, 0x55, 0xAA, 0x2A]))) == [8, -8, 32256, -32256]
    assert list(lin2alaw(np.array([0, -1, 32767, -32768]))) == [0xD5, 0x55, 0xAA, 0x2A]


@pytest.mark.parametrize("law", LAWS)
def test_decoding_is_odd_and_encoding_monotonic(law):
    encode, decode, _, _ = LAWS[law]
    levels = decode(encode(ALL_INT16)).astype(np.int32)
    assert np.all(np.diff(levels) >= 0)  # a quantizer never reorders inputs
    assert len(np.unique(levels)) == (255 if law == "ulaw" else 256)  # mu-law has two zeros
    # the top bit is the sign: flipping it negates the level
    np.testing.assert_array_equal(decode(ALL_CODES ^ 0x80).astype(np.int32), -decode(ALL_CODES).astype(np.int32))


def _g711_wav(path: Path, codes: np.ndarray, format_tag: int) -> Path:
    """A WAV file holding these 8-bit G.711 codes, its header written by hand (not by the code under test)."""
    fmt = struct.pack("<HHIIHHH", format_tag, 1, 8000, 8000, 1, 8, 0)
    fact = b"fact" + struct.pack("<II", 4, len(codes))
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + fact
    body += b"data" + struct.pack("<I", len(codes)) + codes.tobytes()
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


@pytest.mark.parametrize(("law", "tag"), [("ulaw", 7), ("alaw", 6)])
def test_libsndfile_decodes_g711_wav_like_the_reference(tmp_path, law, tag):
    _, decode, _, _ = LAWS[law]
    path = _g711_wav(tmp_path / f"{law}.wav", ALL_CODES, tag)
    assert sf.info(str(path)).subtype == law.upper()
    as_int16, rate = sf.read(str(path), dtype="int16")
    assert rate == 8000
    np.testing.assert_array_equal(as_int16, decode(ALL_CODES))
    audio = load_audio(path)
    float_decode = ulaw_decode if law == "ulaw" else alaw_decode
    np.testing.assert_array_equal(audio.samples[0], float_decode(ALL_CODES))


def test_float_helpers():
    x = np.array([0.0, 0.25, -0.25, 0.999, -1.0, 1.0, 1.5, -1.5, 3e-5, -3e-5])
    as_int16 = np.clip(np.round(x * 32768), -32768, 32767).astype(np.int16)
    np.testing.assert_array_equal(ulaw_encode(x), lin2ulaw(as_int16))
    np.testing.assert_array_equal(alaw_encode(x), lin2alaw(as_int16))
    np.testing.assert_array_equal(ulaw_encode(as_int16), lin2ulaw(as_int16))  # integers are taken as int16
    np.testing.assert_array_equal(ulaw_decode(ALL_CODES), ulaw2lin(ALL_CODES) / np.float32(32768))
    np.testing.assert_array_equal(alaw_decode(ALL_CODES), alaw2lin(ALL_CODES) / np.float32(32768))
    assert ulaw_decode(ALL_CODES).dtype == np.float32 and alaw_decode(ALL_CODES).dtype == np.float32
    assert np.abs(ulaw_decode(ALL_CODES)).max() <= 1.0 and np.abs(alaw_decode(ALL_CODES)).max() <= 1.0
    # beyond full scale clips to the largest code
    assert ulaw_encode(np.array([1.5]))[0] == ulaw_encode(np.array([1.0]))[0] == 0x80


@pytest.mark.parametrize("law", ["ulaw", "alaw"])
def test_sine_snr_stays_flat_over_40_db_of_level(law):
    """Companding's point: ~34-39 dB SNR for a tone from full scale down to -40 dBFS, where 8-bit linear PCM
    falls from ~50 dB to ~11 dB (measured: mu-law 38.3 dB at 0 dBFS, 34.0 dB at -40 dBFS)."""
    encode, decode = (ulaw_encode, ulaw_decode) if law == "ulaw" else (alaw_encode, alaw_decode)
    for level in (0, -3, -6, -10, -20, -30, -40):
        x = tone(1004.0, 8000, 1.0, amplitude=10 ** (level / 20))  # 1004 Hz: the usual G.711/G.712 test tone
        assert 33.5 < snr_db(x, decode(encode(x))) < 39.5, level
    quiet = tone(1004.0, 8000, 1.0, amplitude=0.01)
    assert snr_db(quiet, np.round(quiet * 128) / 128) < 15  # what 8 bits without companding give at -40 dBFS


def test_speech_round_trip_snr(fsdd_files):
    """Real speech at speech levels (-30..-15 dBFS RMS): mu-law SNR ~35-38 dB (measured: 37.2 dB over 155 FSDD
    takes, 36.5-37.8 dB per take), A-law 37.5 dB; companding beats 8-bit linear PCM by ~7.4 dB per take."""
    speech = []
    for path in fsdd_files[::10]:
        x = load_audio(path).samples[0].astype(np.float64)
        if np.all(x * 128 == np.round(x * 128)):
            continue  # 8-bit audio in a 16-bit file (all of FSDD's "nicolas" takes): no linear 8-bit baseline
        if -30 <= 10 * np.log10(np.mean(x**2)) <= -15:
            speech.append(x)
    assert len(speech) >= 100
    x = np.concatenate(speech)
    mu = snr_db(x, ulaw_decode(ulaw_encode(x)))
    a = snr_db(x, alaw_decode(alaw_encode(x)))
    assert 35.0 < mu < 38.5, mu
    assert 34.0 < a < 38.5, a
    per_file = np.array([snr_db(s, ulaw_decode(ulaw_encode(s))) for s in speech])
    assert per_file.min() > 34.5 and per_file.max() < 39.5
    linear8 = np.array([snr_db(s, np.round(s * 128) / 128) for s in speech])
    assert np.median(per_file - linear8) > 4.0
