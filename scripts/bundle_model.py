"""Bundle a trained run as the package's default model (src/gruasr/pretrained/telephone by default):
weights stored as float16 (half the size; loaded back as float32), model.json, a word 3-gram LM and a lexicon
built from the run's training transcripts only, and RECIPE.md saying how it was made.

    python scripts/bundle_model.py runs/telephone [--out DIR] [--order 3]
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from safetensors.torch import load_file, save_file

from gruasr.data.manifest import read_manifest
from gruasr.decoding.lm import build_arpa

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "gruasr" / "pretrained" / "telephone")
    parser.add_argument("--order", type=int, default=3)
    args = parser.parse_args()
    model = args.run / "model"
    config = json.loads((args.run / "config.json").read_text())
    summary = json.loads((args.run / "summary.json").read_text())
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    weights = {
        k: v.half() if v.is_floating_point() else v for k, v in load_file(str(model / "model.safetensors")).items()
    }
    save_file(weights, str(tmp / "model.safetensors"))
    shutil.copy2(model / "model.json", tmp / "model.json")
    texts = [u.text for path in config["data"]["train"] for u in read_manifest(ROOT / path)]
    (tmp / "lm-text.txt").write_text("\n".join(texts) + "\n")
    build_arpa(tmp / "lm-text.txt", args.order, tmp / "lm.arpa")
    (tmp / "lm-text.txt").unlink()
    words = sorted({w for t in texts for w in t.split()})
    (tmp / "lexicon.txt").write_text("\n".join(words) + "\n")
    history = summary["history"]
    recipe = f"""# The bundled telephone model

Made by this project's own recipe, from AN4 and FSDD (see the README for their licenses):

    gruasr data an4  --src ../shared/data/an4  --out data/an4
    gruasr data fsdd --src ../shared/data/fsdd --out data/fsdd --numbers-train 800
    gruasr train --config configs/telephone.toml --out {args.run}
    python scripts/bundle_model.py {args.run}

(`make model` runs these.) {summary["parameters"]:,} parameters, {len(history)} epochs,
{sum(r["seconds"] for r in history) / 60:.1f} minutes of training on {summary["environment"]["device_name"]}
({summary["environment"]["threads"]} threads). Selected: {summary["selection"]["chosen"]}, dev WER
{100 * summary["selection"]["dev_wer"]:.2f}% (greedy, AN4 dev + FSDD dev numbers through a mu-law line).
Weights are stored as float16. lm.arpa: word {args.order}-gram (interpolated Kneser-Ney) of the training
transcripts ({len(texts)} sentences); lexicon.txt: their {len(words)} words.
"""
    (tmp / "RECIPE.md").write_text(recipe)
    if args.out.exists():
        shutil.rmtree(args.out)
    tmp.rename(args.out)
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    print(f"bundled {args.run} -> {args.out} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
