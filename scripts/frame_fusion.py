"""Why two CTC models are combined by rescoring and not frame by frame: their outputs averaged at each step (the
probabilities, or the log-probabilities), decoded greedy and with the first model's decoding, on a manifest
through the mu-law dev line (docs/recognizer.md, "Two models vote"):

    python scripts/frame_fusion.py FIRST SECOND [--manifest data/an4/dev.jsonl] [--weights 1,0.7,0.5,0]

FIRST's weight w, SECOND's 1 - w (w = 1: FIRST alone, w = 0: SECOND alone). Both models must have the same
subsampling, so that their steps line up in time (any two of this project's models do).
"""

from __future__ import annotations

import argparse
import math

import numpy as np
import torch

from gruasr.audio.telephony import TelephoneChannel
from gruasr.bundle import DecodeOptions
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.evaluation.metrics import score
from gruasr.recognizer import OfflineRecognizer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--manifest", default="data/an4/dev.jsonl")
    parser.add_argument("--weights", default="1,0.7,0.5,0")
    args = parser.parse_args()
    torch.set_num_threads(1)
    a = OfflineRecognizer.load(args.first, rescoring=False)
    b = OfflineRecognizer.load(args.second, rescoring=False)
    utts = read_manifest(args.manifest)
    rate, line = a.sample_rate, TelephoneChannel(codec="ulaw", output_rate=a.sample_rate)
    pairs = []
    for i, u in enumerate(utts):
        audio = line.apply(load_utterance(u, rate), rate, np.random.default_rng([0, i]))
        pairs.append((a.log_probs(a.end_padded(audio)), b.log_probs(b.end_padded(audio))))
    decodings = {"greedy": DecodeOptions("greedy"), "decoded": a.options}
    for w in (float(x) for x in args.weights.split(",")):
        for kind in ("probabilities", "log-probabilities") if 0 < w < 1 else ("alone",):
            fused = [
                torch.logaddexp(x + math.log(w), y + math.log(1 - w))
                if kind == "probabilities"
                else (w * x + (1 - w) * y).log_softmax(-1)
                if kind == "log-probabilities"
                else (x if w == 1 else y)
                for x, y in pairs
            ]
            line_out = []
            for name, options in decodings.items():
                a.options = options
                counts = score([(u.text, a.decode(f).text) for u, f in zip(utts, fused, strict=True)])
                line_out.append(f"{name} {100 * counts.wer:.2f}% ({counts.errors})")
            a.options = decodings["decoded"]
            print(f"w = {w:g}, {kind}: " + ", ".join(line_out), flush=True)


if __name__ == "__main__":
    main()
