"""The first model's decoding settings (beam size, LM weight, word bonus: gruasr.tuning's grid) tuned together with
the rescoring weight (gruasr.tuning.tune_rescoring on each setting), on the recipe's dev sets plus any others,
which are scored and reported but weigh 0 in the selection unless --weights says otherwise (docs/recognizer.md,
"Two models vote"):

    python scripts/rescore_joint.py [--first DIR] [--second DIR] [--add-dev data/fsdd/dev.jsonl] [--weights 3,1,0,0]
                                    [--out runs/rescore-joint.json]

Prints the best settings by selection WER among those that invent no word on the speech-free dev sets, each dev
set's WER for them, and the bundled settings' row; writes every row as JSON. One thread; a few minutes.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import torch

from gruasr.decoding.beam import BeamConfig
from gruasr.recognizer import OfflineRecognizer
from gruasr.transcription import DecodeOptions
from gruasr.tuning import BEAM_SIZES, LM_WEIGHTS, WORD_BONUSES, dev_log_probs, dev_weights, tune_rescoring


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--first", default="src/gruasr/pretrained/telephone")
    parser.add_argument("--second", default="src/gruasr/pretrained/telephone-streaming")
    parser.add_argument("--add-dev", action="append", default=[], help="one more dev manifest (repeatable)")
    parser.add_argument("--weights", help="comma-separated, one per dev manifest (default: the recipe's, 0 for added)")
    parser.add_argument("--out", type=Path, default=Path("runs/rescore-joint.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    first = OfflineRecognizer.load(args.first, rescoring=False)
    second = OfflineRecognizer.load(args.second, rescoring=False)
    config = json.loads(json.dumps(first.bundle.meta["training"]))
    config["data"]["dev"] = [*config["data"]["dev"], *args.add_dev]
    added = (0.0,) * len(args.add_dev)
    weights = tuple(map(float, args.weights.split(","))) if args.weights else (*dev_weights(config), *added)
    if len(weights) != len(config["data"]["dev"]):
        raise SystemExit(f"--weights needs one weight per dev manifest: {config['data']['dev']}")
    ours, theirs = dev_log_probs(first, config), dev_log_probs(second, config)
    rows = []
    for size, alpha, beta in itertools.product(BEAM_SIZES, LM_WEIGHTS, WORD_BONUSES):
        first.options = DecodeOptions("beam", BeamConfig(size, lm_weight=alpha, word_bonus=beta), use_lm=True)
        _, results = tune_rescoring(first, ours, theirs, weights)  # every vote weight on this setting's n-best
        rows += [{"beam_size": size, "lm_weight": alpha, "word_bonus": beta, "vote_weight": r["weight"],
                  **{k: r[k] for k in ("selection_wer", "per_set_wer", "invented")}} for r in results]  # fmt: skip
        print(f"beam {size}, LM weight {alpha}, bonus {beta}: done", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"dev": config["data"]["dev"], "weights": weights, "rows": rows}, indent=1))
    bundled = first.bundle.meta["decoding"]
    vote = (first.bundle.meta.get("rescoring") or {}).get("weight", 0.0)

    def show(label: str, r: dict) -> None:
        sets = " / ".join(f"{100 * w:.2f}%" for w in r["per_set_wer"])
        print(f"{label}: beam {r['beam_size']}, LM weight {r['lm_weight']}, bonus {r['word_bonus']}, vote "
              f"{r['vote_weight']}: selection {100 * r['selection_wer']:.2f}%, per set {sets}")  # fmt: skip

    allowed = sorted((r for r in rows if r["invented"] == 0), key=lambda r: r["selection_wer"])
    for r in allowed[:5]:
        show("best", r)
    for r in rows:
        same = (r["beam_size"], r["lm_weight"], r["word_bonus"]) == tuple(
            bundled.get(k) for k in ("beam_size", "lm_weight", "word_bonus")
        )
        if same and r["vote_weight"] in (0.0, vote):
            show("bundled" if r["vote_weight"] else "bundled, alone", r)


if __name__ == "__main__":
    main()
