"""Make the sample phone call that ships with gruasr (src/gruasr/samples/call.wav): text-to-speech (espeak-ng)
through the project's own telephone channel, one speaker per channel (call leg), G.711 mu-law WAV at 8 kHz.

    python scripts/make_sample_call.py        # needs espeak-ng (Debian: apt-get install espeak-ng)

No corpus audio is used. The words come from AN4's vocabulary (what the default model knows). The reference
transcript per leg is written beside the audio (call.json), with each turn's start time.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from gruasr.audio import TelephoneChannel, load_audio, save_wav

OUT = Path(__file__).resolve().parents[1] / "src" / "gruasr" / "samples"
RATE = 8000
# (start seconds, leg, voice, text)
TURNS = [
    (0.4, 0, "en-us+f3", "help"),
    (1.6, 1, "en+m3", "area code four one two"),
    (4.2, 0, "en-us+f3", "repeat"),
    (5.3, 1, "en+m3", "four one two"),
    (7.4, 0, "en-us+f3", "enter code"),
    (9.0, 1, "en+m3", "five five five two six eight nine"),
    (12.6, 0, "en-us+f3", "yes"),
    (13.6, 1, "en+m3", "stop"),
]


def speak(text: str, voice: str, folder: Path) -> np.ndarray:
    wav = folder / "tts.wav"
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True)
    return load_audio(wav, sample_rate=RATE).channel(0)


def main() -> None:
    legs = [np.zeros(int(15.0 * RATE), dtype=np.float32) for _ in range(2)]
    lines = [TelephoneChannel(codec="ulaw", snr_db=35.0), TelephoneChannel(codec="ulaw", snr_db=30.0, packet_loss=0.01)]
    rng = np.random.default_rng(2026)
    reference: dict[str, list[dict[str, object]]] = {"0": [], "1": []}
    with tempfile.TemporaryDirectory() as tmp:
        for start, leg, voice, text in TURNS:
            speech = 0.5 * speak(text, voice, Path(tmp))
            at = int(start * RATE)
            legs[leg][at : at + len(speech)] += speech[: len(legs[leg]) - at]
            reference[str(leg)].append({"start": start, "text": text})
    out = np.stack([lines[i].apply(legs[i], RATE, rng) for i in range(2)])
    OUT.mkdir(parents=True, exist_ok=True)
    save_wav(OUT / "call.wav", out, RATE, encoding="ulaw")
    legs_text = {leg: " ".join(t["text"] for t in turns) for leg, turns in reference.items()}  # type: ignore[misc]
    (OUT / "call.json").write_text(json.dumps({"turns": reference, "text": legs_text}, indent=2) + "\n")
    print(f"wrote {OUT / 'call.wav'} ({out.shape[1] / RATE:.1f} s, {out.shape[0]} legs) and call.json")


if __name__ == "__main__":
    main()
