"""Nothing in, nothing out: the bundled models, offline and streamed, say nothing on audio without speech.

The signals are generated with seeds the training set never used (it was built with seed 0; these use 1000+),
at the levels phone lines carry them; the streamed path runs the VAD endpointer exactly as `gruasr call` does.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from gruasr.audio.io import AN4_RAW, load_audio, save_wav
from gruasr.audio.signals import cadence, colored_noise, dtmf, silence, tone, white_noise
from gruasr.cli.main import main
from gruasr.recognizer import load_model
from gruasr.streaming import StreamingRecognizer

RATE = 8000


def signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1000)
    out = {"digital silence 3 s": silence(3.0, RATE)}
    for level in (-60, -50, -40, -30, -20):
        out[f"white noise {level} dBFS"] = white_noise(4.0, RATE, level, rng)
        out[f"pink noise {level} dBFS"] = colored_noise(4.0, RATE, level, rng, 1.0)
    out["1 kHz tone -15 dBFS"] = tone(3.0, RATE, (1000.0,), -15.0)
    out["dial tone"] = tone(4.0, RATE, (350.0, 440.0), -15.0)
    out["ring-back"] = cadence(6.5, RATE, (440.0, 480.0), 2.0, 4.0, -15.0)
    out["busy"] = cadence(4.0, RATE, (480.0, 620.0), 0.5, 0.5, -15.0)
    out["ring-back, joined in a pause"] = cadence(8.0, RATE, (440.0, 480.0), 2.0, 4.0, -15.0, phase=3.3)
    out["busy, joined in a pause"] = cadence(4.0, RATE, (480.0, 620.0), 0.5, 0.5, -15.0, phase=0.8)
    out["DTMF 0-9 * #"] = dtmf("0123456789*#", RATE, -12.0, tone_s=0.12, gap_s=0.1)
    out["DTMF 5551234, slow"] = dtmf("5551234", RATE, -10.0, tone_s=0.25, gap_s=0.25)
    return out


SIGNALS = signals()


@pytest.fixture(scope="module")
def offline():
    return load_model()


@pytest.fixture(scope="module")
def streaming():
    return StreamingRecognizer.load()


@pytest.mark.parametrize("name", list(SIGNALS))
def test_offline_recognition_of_non_speech_is_empty(offline, name):
    assert offline.transcribe(SIGNALS[name], RATE).text == ""


@pytest.mark.parametrize("name", list(SIGNALS))
def test_streamed_recognition_of_non_speech_is_empty(streaming, name):
    stream = streaming.stream(RATE)
    events = []
    x = SIGNALS[name]
    for i in range(0, len(x), 800):  # 100 ms chunks, as a phone gateway sends them
        events += stream.accept(x[i : i + 800])
    finals = [e for e in events + stream.finish() if e.type == "final"]
    assert [e.text for e in finals] == []


def test_a_stereo_call_with_one_silent_leg(tmp_path: Path, data_dir: Path, offline, streaming, capsys):
    """A real AN4 test utterance on the caller's leg, a muted agent's leg with only a line's idle noise: the
    silent leg's transcript is empty offline and streamed, and the speaking leg's is not."""
    speech = load_audio(sorted((data_dir / "an4" / "wav" / "an4test_clstk").glob("*/*.raw"))[3], raw=AN4_RAW,
                        sample_rate=RATE).channel(0)  # fmt: skip
    n = len(speech) + 2 * RATE
    caller = np.zeros(n, np.float32)
    caller[RATE : RATE + len(speech)] = speech
    muted = white_noise(n / RATE, RATE, -65.0, np.random.default_rng(1001))[:n]
    call = tmp_path / "call.wav"
    save_wav(call, np.stack([caller, muted]), RATE)

    assert main(["transcribe", "--json", str(call)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert rows[0]["text"] and rows[1]["text"] == "" and rows[1]["words"] == []

    assert main(["call", "--json", str(call)]) == 0
    turns = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    legs = {t["leg"] for t in turns}
    assert turns and legs == {"A"}, turns
