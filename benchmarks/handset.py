"""Another handset: WER as the talker's microphone or handset tilts the spectrum, before the line.

    python benchmarks/handset.py [--model DIR ...] [--tilts -4,-2,0,2,4] [--set dev|test] [--data DIR]
                                 [--out bench-results/handset.json] [--plot bench-results/handset.png] [--quick]

Each AN4 utterance (test, or dev for choosing between models) goes through a fixed spectral tilt of t dB per
octave around 1 kHz, level kept (gruasr.audio.telephony.spectral_tilt: TelephoneChannel.tilt_db), then the
300-3400 Hz G.711 mu-law line, seeded per utterance as benchmarks/accuracy.py's line; t = 0 is accuracy.py's
"AN4 test, mu-law line" row. Real handsets and microphones differ from each other by a few dB per octave over the
voice band (FSDD's speakers by up to 4: their recordings' long-term spectra over 300-3400 Hz slope from -4.8 to
-8.8 dB/octave). Every model (the bundled default if none is given) is decoded greedy and with its own decoding
(beam + LM, rescored when its folder names a rescoring model). Prints a table, writes JSON and a plot of WER
against tilt. --quick: the first 10 utterances, tilts 0 and +4 only (a smoke run).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from gruasr.audio.telephony import TelephoneChannel  # noqa: E402
from gruasr.bundle import DecodeOptions  # noqa: E402
from gruasr.data.corpora.an4 import import_an4  # noqa: E402
from gruasr.environment import environment  # noqa: E402
from gruasr.evaluation.evaluate import evaluate  # noqa: E402
from gruasr.evaluation.suite import find_data  # noqa: E402
from gruasr.recognizer import OfflineRecognizer  # noqa: E402
from gruasr.transcription import decoding_name  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", action="append", help="a model folder (repeatable; default: the bundled model)")
    parser.add_argument("--tilts", default="-4,-2,0,2,4", help="comma-separated, dB per octave")
    parser.add_argument("--set", choices=("dev", "test"), default="test", help="AN4's test or dev utterances")
    parser.add_argument("--data", help="corpora folder (default: $GRUASR_DATA or ../shared/data)")
    parser.add_argument("--out", type=Path, default=Path("bench-results/handset.json"))
    parser.add_argument("--plot", type=Path, help="the figure (default: --out with .png)")
    parser.add_argument("--quick", action="store_true", help="10 utterances, tilts 0 and +4")
    args = parser.parse_args()
    if args.quick:
        args.tilts = "0,4"
    data = find_data(args.data)
    if data is None:
        raise SystemExit("corpora not found: give --data or set GRUASR_DATA")
    try:
        tilts = [float(t) for t in args.tilts.split(",")]
    except ValueError:
        raise SystemExit(f"--tilts must be comma-separated numbers, got {args.tilts!r}") from None
    channels = {t: TelephoneChannel(codec="ulaw", tilt_db=t) for t in tilts}  # refuses tilts beyond +-12
    status = Console(stderr=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        import_an4(data / "an4", Path(tmp) / "an4")
        manifest = Path(tmp) / "an4" / f"{args.set}.jsonl"
        for model in args.model or [None]:
            asr = OfflineRecognizer.load(model)
            own = asr.options
            decodings = [DecodeOptions("greedy")] + [own] * (own.method != "greedy")
            for options in decodings:  # a model that decodes greedily by itself gets one row
                asr.options = options
                name = decoding_name(asr)
                for tilt, channel in channels.items():
                    status.print(f"{asr.bundle.path}: {name}, tilt {tilt:+g} dB/octave")
                    counts = evaluate(asr, manifest, channel, limit=10 * args.quick, console=status).counts()
                    rows.append({"model": str(asr.bundle.path), "decoding": name, "tilt_db_per_octave": tilt,
                                 "words": counts.words, "errors": counts.errors, "wer": counts.wer})  # fmt: skip
    table = Table(title=f"AN4 {args.set} through a tilted handset and the mu-law line: WER (errors)")
    table.add_column("model")
    table.add_column("decoding")
    for tilt in tilts:
        table.add_column(f"{tilt:+g} dB/oct", justify="right")
    lines = {(r["model"], r["decoding"]): [] for r in rows}
    for r in rows:
        lines[(r["model"], r["decoding"])].append(r)
    for (model, decoding), cells in lines.items():
        table.add_row(model, decoding, *(f"{100 * r['wer']:.2f}% ({r['errors']})" for r in cells))
    Console(width=160).print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"environment": environment(), "set": f"AN4 {args.set}", "rows": rows}, indent=2))
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for (model, decoding), cells in lines.items():
        axes.plot(tilts, [100 * r["wer"] for r in cells], marker="o", label=f"{Path(model).name}, {decoding}")
    axes.set_xlabel("handset tilt before the line (dB per octave around 1 kHz)")
    axes.set_ylabel("WER (%)")
    axes.set_title(f"AN4 {args.set}, mu-law line: another handset")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    plot = args.plot or args.out.with_suffix(".png")
    figure.savefig(plot, dpi=120)
    status.print(f"wrote {args.out} and {plot}")


if __name__ == "__main__":
    main()
