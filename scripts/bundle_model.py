"""Bundle a trained run as one of the package's models (src/gruasr/pretrained/telephone by default; the streaming
model goes to src/gruasr/pretrained/telephone-streaming):
weights stored as float16 (half the size; loaded back as float32), model.json, a word 3-gram LM and a lexicon
built from the run's training transcripts only, and RECIPE.md saying how it was made.

The decoding settings are chosen on the run's dev sets (through the run's dev line), never on test: greedy,
beam search without LM, and beam search with the LM over a grid of LM weights and word bonuses; the best is
written into model.json ("decoding"), so the LM is used by default only if it helps on dev.

    python scripts/bundle_model.py runs/telephone [--out DIR] [--config RECIPE] [--order 3]

The recipe named in RECIPE.md is configs/<out folder name>.toml unless --config says otherwise.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
from safetensors.torch import load_file, save_file

from gruasr.audio.telephony import TelephoneChannel
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.decoding.beam import BeamConfig, Lexicon, prefix_beam_search
from gruasr.decoding.greedy import greedy_decode
from gruasr.decoding.lm import NGramLM, build_arpa
from gruasr.evaluation.metrics import ErrorCounts
from gruasr.models.ctc_model import SUBSAMPLING
from gruasr.recognizer import Recognizer
from gruasr.training.checkpoint import load_bundle

ROOT = Path(__file__).resolve().parents[1]
MAKE_TARGETS = {"telephone": "model", "telephone-streaming": "model-streaming"}  # bundle folder -> make target


def tune(run: Path, config: dict, lm: NGramLM, lexicon: Lexicon) -> tuple[dict, list[dict]]:
    """Dev WER of greedy, beam and beam+LM over a grid; returns the best settings and every result."""
    recognizer = Recognizer(load_bundle(run / "model"), lm, lexicon)
    rate = recognizer.sample_rate
    codec = config["dev_channel"]["codec"]
    line = TelephoneChannel(codec=codec, output_rate=rate) if codec else None
    cached = []
    for path in config["data"]["dev"]:
        for index, utt in enumerate(read_manifest(ROOT / path)):
            samples = load_utterance(utt, rate)
            if line is not None:
                samples = line.apply(samples, rate, np.random.default_rng([config["dev_channel"]["seed"], index]))
            cached.append((utt.text, recognizer.log_probs(samples)))
    step = SUBSAMPLING * 0.01
    tokens = recognizer.bundle.tokens

    def wer(decode) -> float:  # type: ignore[no-untyped-def]
        counts = ErrorCounts()
        for text, log_probs in cached:
            counts.add(text, decode(log_probs).text)
        return counts.wer

    results = [{"method": "greedy", "dev_wer": wer(lambda lp: greedy_decode(lp, tokens, step))}]
    results.append({"method": "beam", "use_lm": False, "beam_size": 16,
                    "dev_wer": wer(lambda lp: prefix_beam_search(lp, tokens, step, BeamConfig(16)))})  # fmt: skip
    for alpha in (0.3, 0.5, 0.8, 1.2):
        for beta in (0.0, 0.5, 1.0, 2.0):
            beam = BeamConfig(16, lm_weight=alpha, word_bonus=beta)
            score = wer(lambda lp, b=beam: prefix_beam_search(lp, tokens, step, b, lm, lexicon))  # type: ignore[misc]
            results.append({"method": "beam", "use_lm": True, "beam_size": 16, "lm_weight": alpha,
                            "word_bonus": beta, "dev_wer": score})  # fmt: skip
    best = min(results, key=lambda r: r["dev_wer"])
    return {k: v for k, v in best.items() if k != "dev_wer"}, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "gruasr" / "pretrained" / "telephone")
    parser.add_argument("--config", type=Path, help="the recipe the run was trained with (for RECIPE.md)")
    parser.add_argument("--order", type=int, default=3)
    args = parser.parse_args()
    recipe_path = args.config or Path("configs") / f"{args.out.name}.toml"
    if not (ROOT / recipe_path).is_file() and not recipe_path.is_file():
        parser.error(f"no recipe {recipe_path}: name the run's training config with --config")
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
    best, results = tune(args.run, config, NGramLM.from_arpa(tmp / "lm.arpa"), Lexicon(words))
    meta = json.loads((tmp / "model.json").read_text())
    meta["decoding"] = best
    meta["decoding_dev_results"] = results
    (tmp / "model.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    by_method = {
        "greedy": results[0]["dev_wer"],
        "beam": results[1]["dev_wer"],
        "beam+lm (best)": min(r["dev_wer"] for r in results if r.get("use_lm")),
    }
    history = summary["history"]
    out_option = "" if args.out.name == "telephone" else f" --out src/gruasr/pretrained/{args.out.name}"
    make_line = f"(`make {MAKE_TARGETS[args.out.name]}` runs these.) " if args.out.name in MAKE_TARGETS else ""
    recipe = (
        f"""# The bundled {args.out.name} model

Made by this project's own recipe, from AN4 and FSDD (see the README for their licenses):

    gruasr data an4  --src ../shared/data/an4  --out data/an4
    gruasr data fsdd --src ../shared/data/fsdd --out data/fsdd --numbers-train 800
    gruasr train --config {recipe_path} --out {args.run}
    python scripts/bundle_model.py {args.run}{out_option}

{make_line}{summary["parameters"]:,} parameters, {len(history)} epochs,
{sum(r["seconds"] for r in history) / 60:.1f} minutes of training on {summary["environment"]["device_name"]}
({summary["environment"]["threads"]} threads). Selected: {summary["selection"]["chosen"]}, dev WER
{100 * summary["selection"]["dev_wer"]:.2f}% (greedy, AN4 dev + FSDD dev numbers through a mu-law line).
Weights are stored as float16. lm.arpa: word {args.order}-gram (interpolated Kneser-Ney) of the training
transcripts ({len(texts)} sentences); lexicon.txt: their {len(words)} words.

Decoding chosen on dev (the same dev sets and line), dev WER: """
        + ", ".join(f"{name} {100 * value:.2f}%" for name, value in by_method.items())
        + f"""; default: {json.dumps(best)}.
"""
    )
    (tmp / "RECIPE.md").write_text(recipe)
    if args.out.exists():
        shutil.rmtree(args.out)
    tmp.rename(args.out)
    size = sum(p.stat().st_size for p in args.out.iterdir()) / 1e6
    print(f"bundled {args.run} -> {args.out} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
