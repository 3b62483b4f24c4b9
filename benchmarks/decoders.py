"""Our prefix beam search against flashlight-text's lexicon decoder, on the same CTC posteriors.

    OMP_NUM_THREADS=1 python benchmarks/decoders.py [--model DIR] [--manifest data/an4/test.jsonl]
                                                    [--out docs/results/decoders.json] [--limit N]

The model (default: the bundled telephone model, whatever src/gruasr/pretrained/telephone holds now) turns
each AN4 test utterance, sent through a 300-3400 Hz G.711 mu-law line (seeded per utterance, as the accuracy
table's "AN4 test, mu-law line"), into log-probabilities once; both decoders then decode those same
posteriors of the whole utterance (no VAD segmentation) with the model's own beam size, LM weight and word
bonus, its lm.arpa and lexicon.txt. Reported: WER of each, the share of utterances with identical text, and
decoding seconds (posteriors excluded). Writes a table to stdout and JSON to --out.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from gruasr.audio.telephony import TelephoneChannel
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.decoding.beam import Lexicon, prefix_beam_search
from gruasr.decoding.flashlight import FlashlightLexiconDecoder
from gruasr.environment import environment
from gruasr.evaluation.metrics import ErrorCounts
from gruasr.recognizer import load_model

#: decoding step in seconds: word times are not compared here, so any positive value serves
STEP = 0.04


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model directory (default: the bundled telephone model)")
    parser.add_argument("--manifest", type=Path, default=Path("data/an4/test.jsonl"))
    parser.add_argument("--codec", default="ulaw", help="G.711 codec of the simulated line ('none': clean)")
    parser.add_argument("--limit", type=int, default=0, help="first N utterances only (0: all)")
    parser.add_argument("--out", type=Path, default=Path("docs/results/decoders.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    status = Console(stderr=True)

    asr = load_model(args.model)
    beam, lm, lexicon = asr.options.beam, asr.lm, asr.lexicon
    if lm is None:
        raise SystemExit("the model folder has no lm.arpa: nothing to compare with the LM")
    lexicon = lexicon or Lexicon(lm.vocab)
    tokens, rate = asr.bundle.tokens, asr.sample_rate
    flashlight = FlashlightLexiconDecoder(tokens, lexicon, lm, beam)
    channel = None if args.codec == "none" else TelephoneChannel(codec=args.codec, output_rate=rate)

    utts = read_manifest(args.manifest)[: args.limit or None]
    ours, theirs = ErrorCounts(), ErrorCounts()
    seconds = {"ours": 0.0, "flashlight": 0.0}
    same, differing = 0, []
    for index, utt in enumerate(utts):
        samples = load_utterance(utt, rate)
        if channel is not None:
            samples = channel.apply(samples, rate, np.random.default_rng([0, index]))
        log_probs = asr.log_probs(samples).cpu()
        start = time.perf_counter()
        a = prefix_beam_search(log_probs, tokens, STEP, beam, lm, lexicon).text
        seconds["ours"] += time.perf_counter() - start
        start = time.perf_counter()
        b = flashlight.decode(log_probs, STEP).text
        seconds["flashlight"] += time.perf_counter() - start
        ours.add(utt.text, a)
        theirs.add(utt.text, b)
        same += a == b
        if a != b:
            differing.append({"id": utt.id, "ref": utt.text, "ours": a, "flashlight": b})
        status.print(f"{index + 1}/{len(utts)} {utt.id}: {'same' if a == b else 'DIFFERENT'}", highlight=False)

    rows = [
        {"decoder": name, "wer": c.wer, "errors": c.errors, "words": c.words, "sub": c.sub, "del": c.dels,
         "ins": c.ins, "decode_seconds": seconds[key]}
        for name, key, c in (("gruasr prefix beam search", "ours", ours), ("flashlight-text LexiconDecoder",
                                                                          "flashlight", theirs))
    ]  # fmt: skip
    agreement = same / len(utts) if utts else 0.0
    table = Table(title=f"decoders on {args.manifest} ({args.codec} line), {len(utts)} utterances")
    for col in ("decoder", "WER", "errors / words", "S / D / I", "decode s"):
        table.add_column(col, justify="left" if col == "decoder" else "right")
    for r in rows:
        table.add_row(
            r["decoder"], f"{100 * r['wer']:.2f}%", f"{r['errors']} / {r['words']}",
            f"{r['sub']} / {r['del']} / {r['ins']}", f"{r['decode_seconds']:.2f}",
        )  # fmt: skip
    console = Console(width=120)
    console.print(table)
    console.print(f"identical text: {same} / {len(utts)} utterances ({100 * agreement:.1f}%)")
    record = {
        "command": "OMP_NUM_THREADS=1 python benchmarks/decoders.py "
        + " ".join(f"--{k} {v}" for k, v in (("model", args.model), ("limit", args.limit)) if v),
        "model": str(asr.bundle.path),
        "manifest": str(args.manifest),
        "codec": args.codec,
        "utterances": len(utts),
        "beam": {
            "beam_size": beam.beam_size,
            "prune": beam.prune,
            "lm_weight": beam.lm_weight,
            "word_bonus": beam.word_bonus,
        },  # fmt: skip
        "lexicon_words": len(lexicon.words),
        "lm_order": lm.order,
        "rows": rows,
        "identical_text": same,
        "agreement": agreement,
        "differing": differing,
        "environment": environment(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    status.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
