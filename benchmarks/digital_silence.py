"""Digital silence: what runs of exact zeros (VoIP silence suppression, a muted leg, a file padded with zeros) do
to recognition, against silence that is quiet noise.

AN4 test (130 utterances, 773 words) through the mu-law line, each utterance followed by 0.9 s of: nothing,
exact zeros, or white noise at -60 dBFS (what `benchmarks/streaming.py` appends so that the endpointer ends the
utterance is the zeros). Paths: the bundled default (bidirectional) model offline, `gruasr transcribe`'s path;
the bundled streaming model streamed; and streamed with two passes (each final from the default model; the
docs/streaming.md section "Two passes"). Each with the model's own decoding (beam + LM). One thread.

    python benchmarks/digital_silence.py [--data ../shared/data] [--out bench-results/digital_silence.json]
    python benchmarks/digital_silence.py --manifest data/an4/dev.jsonl --mel-floor 0   # AN4 dev, Kaldi's floor

--mel-floor F recognizes with the features' floor before the log set to F for both models (FbankConfig.mel_floor;
0: Kaldi's FLT_EPSILON, what the bundled models use); --manifest another set; --nonspeech MANIFEST counts the
words each path and tail outputs on speech-free clips (docs/streaming.md, "Digital silence").
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from gruasr.audio.telephony import TelephoneChannel
from gruasr.data.corpora.an4 import import_an4
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.environment import environment
from gruasr.evaluation.invented import invented_words
from gruasr.evaluation.metrics import ErrorCounts
from gruasr.features.fbank import Fbank
from gruasr.recognizer import OfflineRecognizer
from gruasr.streaming import EndpointConfig, StreamingRecognizer

ROOT = Path(__file__).resolve().parents[1]
RATE = 8000
TAIL = int(0.9 * RATE)


def tails() -> dict[str, np.ndarray]:
    noise = np.random.default_rng(5).normal(0, 10 ** (-60 / 20), TAIL).astype(np.float32)
    return {"none": np.zeros(0, np.float32), "0.9 s of exact zeros": np.zeros(TAIL, np.float32),
            "0.9 s of noise at -60 dBFS": noise}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("GRUASR_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--manifest", type=Path, help="utterances to use (default: AN4 test)")
    parser.add_argument("--mel-floor", type=float, help="the features' floor before the log (default: the models')")
    parser.add_argument(
        "--nonspeech",
        type=Path,
        help="also count the words each path outputs on these speech-free clips (e.g. "
        "data/nonspeech/dev.jsonl), with the same tails",
    )
    parser.add_argument("--out", type=Path, default=Path("bench-results/digital_silence.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    console = Console()
    manifest = args.manifest
    if manifest is None:
        work = Path("bench-results") / "streaming-data"  # the AN4 import benchmarks/streaming.py makes, shared
        if not (work / "test.jsonl").is_file():
            import_an4(args.data / "an4", work)
        manifest = work / "test.jsonl"
    utts = read_manifest(manifest)
    line = TelephoneChannel(codec="ulaw", output_rate=RATE)
    heard = [line.apply(load_utterance(u, RATE), RATE, np.random.default_rng([0, i])) for i, u in enumerate(utts)]
    default = OfflineRecognizer.load()
    streaming = OfflineRecognizer.load(ROOT / "src" / "gruasr" / "pretrained" / "telephone-streaming")
    if args.mel_floor is not None:  # streams take their filterbank from the offline recognizer's
        for rec in (default, streaming):
            rec.fbank = Fbank(dataclasses.replace(rec.bundle.features, mel_floor=args.mel_floor))
    floor = default.fbank.config.mel_floor

    def streamed(rec: StreamingRecognizer) -> Callable[[np.ndarray], str]:
        def run(audio: np.ndarray) -> str:
            stream = rec.stream()
            return " ".join(e.text for e in stream.accept(audio) + stream.finish() if e.type == "final")

        return run

    paths: dict[str, Callable[[np.ndarray], str]] = {
        "default model, offline": lambda audio: default.transcribe(audio, RATE).text,
        "streaming model, streamed": streamed(StreamingRecognizer(streaming, EndpointConfig())),
        "streamed, two passes": streamed(StreamingRecognizer(streaming, EndpointConfig(), default)),
    }
    rows = []
    for path, recognize in paths.items():
        for tail, samples in tails().items():
            counts = ErrorCounts()
            for audio, utt in zip(heard, utts, strict=True):
                counts.add(utt.text, recognize(np.concatenate([audio, samples])))
            row = {"path": path, "tail": tail, "mel_floor": floor, "wer": counts.wer, "words": counts.words}
            if args.nonspeech is not None:  # the same path and tail on audio without speech

                def clip(x: np.ndarray, _: int) -> str:
                    return recognize(np.concatenate([x, samples]))  # noqa: B023

                row["invented_per_minute"] = invented_words(clip, args.nonspeech, RATE, line).per_minute
            rows.append(row)
            invented = f"  invented {row['invented_per_minute']:.2f} words/min" if args.nonspeech is not None else ""
            console.print(f"{path:28} {tail:28} WER {100 * counts.wer:.2f}%{invented}")
    table = Table(title=f"{manifest} through the mu-law line ({len(utts)} utterances), beam + LM, mel_floor {floor}")
    for col in ("path", "after each utterance", "WER", "invented words / min"):
        table.add_column(col, justify="left" if col in ("path", "after each utterance") else "right")
    for r in rows:
        invented = f"{r['invented_per_minute']:.2f}" if "invented_per_minute" in r else "-"
        table.add_row(r["path"], r["tail"], f"{100 * r['wer']:.2f}%", invented)
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"environment": environment(), "manifest": str(manifest), "mel_floor": floor, "rows": rows}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
