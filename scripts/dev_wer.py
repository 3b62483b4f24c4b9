"""Score model folders on a training recipe's dev set exactly as `gruasr train` selects epochs: the recipe's dev
manifests through its dev line (fixed seed; a unidirectional recipe's utterances end with END_SILENCE), greedy
decoding, per-set WERs (the words invented, for a speech-free set) and the selection WER (data.dev_weights).

    python scripts/dev_wer.py --config configs/telephone-generalize.toml MODEL_DIR [MODEL_DIR ...]

E.g. the starting point of a fine-tuning run (`src/gruasr/pretrained/telephone`) against its result, on the same
footing (docs/recognizer.md, "Generalization to new voices").
"""

from __future__ import annotations

import argparse

import torch

from gruasr.bundle import load_bundle
from gruasr.data.tokens import TokenTable
from gruasr.training.config import load_config
from gruasr.training.data import read_utterances
from gruasr.training.loop import DevSet, dev_corpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="the training recipe whose dev set and weights to use")
    parser.add_argument("models", nargs="+", help="model folders")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = load_config(args.config)
    tokens = TokenTable()
    sets = read_utterances(config.data.dev, tokens, None)
    dev = dev_corpus(config, tokens, [u for s in sets for u in s], None)
    groups = [k for k, utts in enumerate(sets) for _ in utts]
    for path in args.models:
        bundle = load_bundle(path)
        result = DevSet(dev, bundle.cmvn, groups, config.data.dev_weights).evaluate(
            bundle.model.float(), tokens, torch.device("cpu")
        )
        per_set = "  ".join(f"{name}: {text}" for name, text in zip(config.data.dev, result.per_set(), strict=True))
        print(f"{path}: selection WER {100 * result.wer:.2f}%  ({per_set})")


if __name__ == "__main__":
    main()
