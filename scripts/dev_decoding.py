"""Score bundled models on a dev set with every decoding setting, as `gruasr model bundle` tunes them
(gruasr.tuning: each dev utterance a whole input, through the dev line, greedy, beam, beam + LM over the grid),
on a recipe's dev manifests plus any others, with their weights: e.g. two streaming models on the recipe's dev
with FSDD's isolated dev digits added (docs/recognizer.md, "The end silence"):

    python scripts/dev_decoding.py --config configs/telephone-streaming-voices.toml \
        --add-dev data/fsdd/dev.jsonl --weights 3,1,0,1 src/gruasr/pretrained/telephone-streaming BUNDLE2

Prints, per model, the greedy result and the setting `choose` prefers (selection WER, pooled WER, words output
on the weight-0 sets, i.e. invented on speech-free audio).
"""

from __future__ import annotations

import argparse
import dataclasses

import torch

from gruasr.recognizer import OfflineRecognizer
from gruasr.training.config import load_config
from gruasr.tuning import dev_log_probs, tune_decoding


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the training recipe whose dev set, line and weights to use")
    parser.add_argument("--add-dev", action="append", default=[], help="one more dev manifest (repeatable)")
    parser.add_argument("--weights", help="comma-separated, one per dev manifest (default: data.dev_weights)")
    parser.add_argument("models", nargs="+", help="bundled model folders (with their LM)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = dataclasses.asdict(load_config(args.config))
    config["data"]["dev"] = [*config["data"]["dev"], *args.add_dev]
    weights = tuple(map(float, args.weights.split(","))) if args.weights else tuple(config["data"]["dev_weights"] or ())
    if weights and len(weights) != len(config["data"]["dev"]):
        raise SystemExit(f"--weights needs one weight per dev manifest: {config['data']['dev']}")
    for path in args.models:
        recognizer = OfflineRecognizer.load(path)
        best, results = tune_decoding(recognizer, dev_log_probs(recognizer, config), weights=weights)
        chosen = next(r for r in results if all(r.get(k) == v for k, v in best.items()))
        for name, r in (("greedy", results[0]), ("chosen", chosen)):
            print(
                f"{path}  {name:6}  selection WER {100 * r['selection_wer']:.2f}%  pooled {100 * r['dev_wer']:.2f}%"
                f"  invented {r['invented']}  {json_settings(r)}"
            )


def json_settings(result: dict[str, object]) -> str:
    return ", ".join(f"{k}={v}" for k, v in result.items() if k not in ("selection_wer", "dev_wer", "invented"))


if __name__ == "__main__":
    main()
