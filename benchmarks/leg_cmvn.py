"""Per-leg mean normalization against global CMVN, streamed: one AN4 test speaker's utterances as one call leg.

    python benchmarks/leg_cmvn.py [--data DIR] [--priors 0 100 300 1000] [--quick]
                                  [--out docs/results/leg_cmvn-cpu.json]

Each of the AN4 test speakers' utterances, through the mu-law line (the seeds `gruasr eval` uses), joined with
1 s of silence into one leg, streamed in 100 ms chunks through the bundled streaming model (StreamingRecognizer,
finals decoded with the model's beam + LM). Prior 0 is the model as trained (global CMVN only); prior P
subtracts the leg's running mean, shrunk towards the global mean by P frames (10 ms each), causally
(StreamingRecognizer.leg_cmvn). The model was trained with global CMVN only: this measures normalization added
at test time, not a model trained with it. WER over all speakers' words. Never a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from gruasr.audio.telephony import TelephoneChannel
from gruasr.data.corpora.an4 import import_an4
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.environment import environment
from gruasr.evaluation.metrics import ErrorCounts
from gruasr.streaming import StreamingRecognizer

ROOT = Path(__file__).resolve().parents[1]
RATE, CHUNK = 8000, 800


def legs(data: Path, folder: Path, limit: int) -> dict[str, tuple[np.ndarray, str]]:
    """speaker -> (their AN4 test utterances through the mu-law line joined with 1 s of silence, references)."""
    import_an4(data / "an4", folder)
    line = TelephoneChannel(codec="ulaw", output_rate=RATE)
    parts: dict[str, list[np.ndarray]] = defaultdict(list)
    texts: dict[str, list[str]] = defaultdict(list)
    for index, utt in enumerate(read_manifest(folder / "test.jsonl")[: limit or None]):
        x = line.apply(load_utterance(utt, RATE), RATE, np.random.default_rng([0, index]))
        parts[utt.speaker or "?"] += [x.astype(np.float32), np.zeros(RATE, np.float32)]
        texts[utt.speaker or "?"].append(utt.text)
    return {spk: (np.concatenate(parts[spk]), " ".join(texts[spk])) for spk in parts}


def stream_all(recognizer: StreamingRecognizer, audio: dict[str, tuple[np.ndarray, str]]) -> dict[str, str]:
    """Every leg streamed at once in 100 ms chunks (batched); the finals' text per leg."""
    names = sorted(audio)
    streams = {n: recognizer.stream(RATE) for n in names}
    said: dict[str, list[str]] = {n: [] for n in names}
    longest = max(a.shape[0] for a, _ in audio.values())
    for start in range(0, longest + CHUNK, CHUNK):
        live = [n for n in names if not streams[n].finished]
        for n in live:
            x = audio[n][0]
            streams[n].feed(x[start : start + CHUNK], last=start + CHUNK >= x.shape[0])
        recognizer.advance([streams[n] for n in live])
        for n in live:
            said[n] += [e.text for e in streams[n].events() if e.type == "final" and e.text]
    return {n: " ".join(t) for n, t in said.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(os.environ.get("GRUASR_DATA", ROOT.parent / "shared/data")))
    parser.add_argument("--priors", type=int, nargs="+", default=[0, 100, 300, 1000])
    parser.add_argument("--quick", action="store_true", help="12 utterances, priors 0 and 300: the path")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results" / "leg_cmvn-cpu.json")
    args = parser.parse_args()
    torch.set_num_threads(1)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        audio = legs(args.data, Path(tmp), 12 if args.quick else 0)
    priors = [0, 300] if args.quick else args.priors
    recognizer = StreamingRecognizer.load()
    rows = []
    for prior in priors:
        recognizer.leg_cmvn = prior
        texts = stream_all(recognizer, audio)
        counts = ErrorCounts()
        per_speaker = {}
        for name, (_, ref) in sorted(audio.items()):
            one = ErrorCounts()
            one.add(ref, texts[name])
            counts.add(ref, texts[name])
            per_speaker[name] = one.wer
        rows.append({"prior_frames": prior, "wer": counts.wer, "errors": counts.errors, "words": counts.words,
                     "per_speaker": per_speaker})  # fmt: skip
        print(f"prior {prior}: WER {counts.wer:.2%}", flush=True)
    table = Table(title=f"per-leg mean normalization, AN4 test mu-law, {len(audio)} speakers as legs, streamed")
    for col in ("prior frames", "WER", "errors / words"):
        table.add_column(col, justify="right")
    for r in rows:
        name = "global CMVN only" if r["prior_frames"] == 0 else str(r["prior_frames"])
        table.add_row(name, f"{r['wer']:.2%}", f"{r['errors']} / {r['words']}")
    Console(width=120).print(table)
    report = {"rows": rows, "speakers": len(audio), "environment": environment(), "command": " ".join(sys.argv)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
