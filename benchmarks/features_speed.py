"""Feature extraction speed: seconds of audio turned into 80-bin log-mel features per second of wall time.

    python benchmarks/features_speed.py [--quick] [--data DIR] [--threads 1] [--device cpu]
                                        [--out bench-results/features_speed.json]

Compared in one run, on the same utterances (8 kHz, 25 ms frames every 10 ms, 80 mel bins, no dither):
  gruasr Fbank               this project's Kaldi-compatible torch implementation, one call per utterance
  gruasr Fbank, one signal   the same on all utterances joined (no per-call overhead)
  gruasr StreamingFbank      the same fed in 100 ms chunks, as a live call would be
  kaldi-native-fbank         the C++ reference (OnlineFbank), including copying its frames out to numpy
  torch.stft + mel           a plain torch pipeline written here (hann window, |STFT|^2, HTK-style mel matrix,
                             log): not Kaldi-compatible, the floor of what torch alone costs
Audio: FSDD and AN4 (resampled to 8 kHz) from --data or $GRUASR_DATA when given, else synthetic chirps in noise.
Times are medians over --repeat runs after a warm-up run; speed is audio seconds / wall seconds ("x real time").
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from gruasr.environment import device_name
from gruasr.features import Fbank, FbankConfig, StreamingFbank
from gruasr.timing import median_seconds

RATE = 8000
CONFIG = FbankConfig(sample_rate=RATE, num_mel_bins=80)


def load_real(data: Path, fsdd: int, an4: int) -> list[np.ndarray]:
    """`fsdd` FSDD takes and `an4` AN4 utterances (resampled to 8 kHz), spread over the sorted file lists."""
    from gruasr.audio.io import AN4_RAW, load_audio

    def spread(paths: list[Path], count: int) -> list[Path]:
        return paths[:: max(1, len(paths) // count)][:count] if count else []

    wavs = spread(sorted((data / "fsdd" / "recordings").glob("*.wav")), fsdd)
    raws = spread(sorted((data / "an4" / "wav" / "an4_clstk").glob("*/*.raw")), an4)
    if not wavs and not raws:
        raise SystemExit(f"no FSDD or AN4 audio under {data}")
    audio = [load_audio(p, sample_rate=RATE).samples[0] for p in wavs]
    audio += [load_audio(p, raw=AN4_RAW, sample_rate=RATE).samples[0] for p in raws]
    return audio


def synthetic(count: int, seconds: float) -> list[np.ndarray]:
    """Chirps from 200 to 3000 Hz in a little noise, count utterances of about `seconds` each."""
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        n = int(RATE * seconds * rng.uniform(0.5, 1.5))
        t = np.arange(n) / RATE
        freq = 200 + 2800 * t / t[-1]
        x = 0.3 * np.sin(2 * np.pi * np.cumsum(freq) / RATE) + 0.01 * rng.standard_normal(n)
        out.append(x.astype(np.float32))
    return out


def htk_mel_matrix(n_fft: int, num_bins: int, low: float, high: float) -> torch.Tensor:
    """Triangular filters (n_fft/2 + 1, num_bins), equally spaced on the HTK mel scale, peak 1."""
    mel = lambda f: 2595.0 * np.log10(1.0 + f / 700.0)  # noqa: E731
    hz = lambda m: 700.0 * (10.0 ** (m / 2595.0) - 1.0)  # noqa: E731
    edges = hz(np.linspace(mel(low), mel(high), num_bins + 2))
    freqs = np.linspace(0, RATE / 2, n_fft // 2 + 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    up, down = (freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)
    return torch.from_numpy(np.maximum(0.0, np.minimum(up, down)).T.astype(np.float32))


def make_plain_torch(device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    n_fft, win, hop = CONFIG.padded_window_size, CONFIG.window_size, CONFIG.window_shift
    window = torch.hann_window(win, device=device)
    mel = htk_mel_matrix(n_fft, CONFIG.num_mel_bins, CONFIG.low_freq, RATE / 2).to(device)

    def plain(x: torch.Tensor) -> torch.Tensor:
        spec = torch.stft(x * 32768, n_fft, hop, win, window, center=False, return_complex=True)  # (K, T)
        return (spec.abs().square().T @ mel).clamp_min(1e-7).log()  # (T, M)

    return plain


def knf_fbank(x: np.ndarray) -> np.ndarray:
    import kaldi_native_fbank as knf

    opts = knf.FbankOptions()
    opts.frame_opts.samp_freq = RATE
    opts.frame_opts.dither = 0.0
    opts.mel_opts.num_bins = CONFIG.num_mel_bins
    opts.mel_opts.low_freq = CONFIG.low_freq
    fb = knf.OnlineFbank(opts)
    fb.accept_waveform(RATE, x * 32768.0)
    fb.input_finished()
    return np.stack([fb.get_frame(i) for i in range(fb.num_frames_ready)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=os.environ.get("GRUASR_DATA"), help="folder with fsdd/, an4/")
    parser.add_argument("--device", default="cpu", help="device of the torch implementations")
    parser.add_argument("--quick", action="store_true", help="a few utterances, one repeat (a smoke run)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/features_speed.json"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    repeat = 1 if args.quick else args.repeat
    console = Console(stderr=True)

    real = args.data is not None and Path(args.data).is_dir()
    if real:
        audio = load_real(Path(args.data), 8 if args.quick else 200, 2 if args.quick else 40)
    else:
        audio = synthetic(6 if args.quick else 100, 1.0 if args.quick else 2.0)
    seconds = sum(len(x) for x in audio) / RATE
    console.print(f"[dim]{len(audio)} utterances, {seconds:.1f} s of {'real' if real else 'synthetic'} audio[/dim]")

    tensors = [torch.from_numpy(x).to(device) for x in audio]
    joined = torch.cat(tensors)
    fbank = Fbank(CONFIG).to(device)
    plain = make_plain_torch(device)

    def streaming() -> None:
        chunk = RATE // 10
        for x in tensors:
            s = StreamingFbank(fbank)
            for i in range(0, x.shape[0], chunk):
                s.accept(x[i : i + chunk])
            s.finalize()

    variants: list[tuple[str, Callable[[], object], str]] = [
        ("gruasr Fbank", lambda: [fbank(x) for x in tensors], str(device)),
        ("gruasr Fbank, one signal", lambda: fbank(joined), str(device)),
        ("gruasr StreamingFbank (100 ms chunks)", streaming, str(device)),
        ("kaldi-native-fbank", lambda: [knf_fbank(x) for x in audio], "cpu"),
        ("torch.stft + mel (plain, not Kaldi)", lambda: [plain(x) for x in tensors], str(device)),
    ]
    rows: list[dict[str, object]] = []
    with torch.inference_mode():
        for label, fn, where in variants:
            console.print(f"[dim]measuring {label}[/dim]")
            wall = median_seconds(fn, device, repeat)
            rows.append({"implementation": label, "device": where, "seconds": wall, "audio_s_per_s": seconds / wall})
    base = next(float(r["audio_s_per_s"]) for r in rows if r["implementation"] == "kaldi-native-fbank")  # type: ignore[arg-type]
    for row in rows:
        row["x_knf"] = float(row["audio_s_per_s"]) / base  # type: ignore[arg-type]

    title = f"log-mel features, 8 kHz, 80 bins: {seconds:.0f} s of audio, {torch.get_num_threads()} torch threads"
    table = Table(title=title)
    for col in ("implementation", "device", "wall ms", "audio s / s", "x knf"):
        table.add_column(col, justify="left" if col == "implementation" else "right")
    for r in rows:
        table.add_row(
            str(r["implementation"]), str(r["device"]), f"{1e3 * float(r['seconds']):.1f}",  # type: ignore[arg-type]
            f"{float(r['audio_s_per_s']):,.0f}", f"{float(r['x_knf']):.2f}",  # type: ignore[arg-type]
        )  # fmt: skip
    Console(width=140).print(table)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "device": str(device),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "repeat": repeat,
        "audio": "real (FSDD + AN4 at 8 kHz)" if real else "synthetic",
        "utterances": len(audio),
        "audio_seconds": seconds,
        "config": CONFIG.to_dict(),
        "command": "python benchmarks/features_speed.py"
        + (" --quick" if args.quick else "")
        + (f" --threads {args.threads}" if args.threads else ""),
    }
    args.out.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
