"""Each FSDD speaker's long-term spectral slope over the voice band (docs/recognizer.md, "Another handset"):

    python scripts/speaker_slopes.py [--fsdd ../shared/data/fsdd/recordings]

Each speaker's recordings' long-term slope over 300-3400 Hz (gruasr.audio.telephony.long_term_slope: 32 ms frames
within 10 dB of each recording's loudest, in dB per octave, the quantity spectral_tilt changes), with the spectral
centroid of the whole recordings beside it.
"""

from __future__ import annotations

import argparse
import collections
from pathlib import Path

import numpy as np

from gruasr.audio import load_audio
from gruasr.audio.telephony import long_term_slope


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fsdd", type=Path, default=Path("../shared/data/fsdd/recordings"))
    args = parser.parse_args()
    files = sorted(args.fsdd.glob("*.wav"))
    if not files:
        raise SystemExit(f"no FSDD recordings (DIGIT_SPEAKER_TAKE.wav) in {args.fsdd}")
    recordings: dict[str, list[np.ndarray]] = collections.defaultdict(list)
    centroids: dict[str, list[float]] = collections.defaultdict(list)
    rate = 8000
    for path in files:
        audio = load_audio(path)
        rate, x = audio.sample_rate, audio.samples.mean(axis=0).astype(np.float64)
        whole = np.abs(np.fft.rfft(x * np.hanning(len(x)), 2048)) ** 2
        centroids[path.stem.split("_")[1]].append(float((np.fft.rfftfreq(2048, 1 / rate) * whole).sum() / whole.sum()))
        recordings[path.stem.split("_")[1]].append(x)
    print(f"{'speaker':10} {'slope, 300-3400 Hz':>20} {'centroid':>10}")
    for speaker, chunks in recordings.items():
        slope = long_term_slope(chunks, rate)
        print(f"{speaker:10} {slope:+14.1f} dB/oct {np.mean(centroids[speaker]):7.0f} Hz")


if __name__ == "__main__":
    main()
