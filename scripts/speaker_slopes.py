"""Each FSDD speaker's long-term spectral slope over the voice band (docs/recognizer.md, "Another handset"):

    python scripts/speaker_slopes.py [--fsdd ../shared/data/fsdd/recordings]

The power spectra (32 ms Hann frames) of every recording's frames within 10 dB of its loudest are summed per
speaker; the slope is a least-squares line through that spectrum in dB against log2(frequency) over 300-3400 Hz,
in dB per octave (the quantity gruasr.audio.telephony.spectral_tilt changes), with the spectral centroid of the
whole recordings beside it.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np

from gruasr.audio import load_audio

FRAME = 256  # samples: 32 ms at FSDD's 8 kHz


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fsdd", type=Path, default=Path("../shared/data/fsdd/recordings"))
    args = parser.parse_args()
    files = sorted(args.fsdd.glob("*.wav"))
    if not files:
        raise SystemExit(f"no FSDD recordings (DIGIT_SPEAKER_TAKE.wav) in {args.fsdd}")
    power: dict[str, np.ndarray] = collections.defaultdict(lambda: np.zeros(FRAME // 2 + 1))
    centroids: dict[str, list[float]] = collections.defaultdict(list)
    rate = 8000
    for path in files:
        speaker = path.stem.split("_")[1]
        audio = load_audio(path)
        rate, x = audio.sample_rate, audio.samples.mean(axis=0).astype(np.float64)
        whole = np.abs(np.fft.rfft(x * np.hanning(len(x)), 2048)) ** 2
        centroids[speaker].append(float((np.fft.rfftfreq(2048, 1 / rate) * whole).sum() / whole.sum()))
        x = x[: len(x) // FRAME * FRAME]
        if len(x) == 0:
            continue
        spectra = np.abs(np.fft.rfft(x.reshape(-1, FRAME) * np.hanning(FRAME), axis=1)) ** 2
        energy = spectra.sum(axis=1)
        power[speaker] += spectra[energy > 0.1 * energy.max()].sum(axis=0)
    freqs = np.fft.rfftfreq(FRAME, 1 / rate)
    band = (freqs >= 300) & (freqs <= 3400)
    print(f"{'speaker':10} {'slope, 300-3400 Hz':>20} {'centroid':>10}")
    for speaker, spectrum in power.items():
        slope = np.polyfit(np.log2(freqs[band] / 1000), 10 * np.log10(spectrum[band]), 1)[0]
        print(f"{speaker:10} {slope:+14.1f} dB/oct {np.mean(centroids[speaker]):7.0f} Hz")


if __name__ == "__main__":
    main()
