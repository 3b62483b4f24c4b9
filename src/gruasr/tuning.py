"""Turn a training run into a model folder to ship (what `gruasr model bundle` runs): weights stored as float16
(half the size; read back as float32), a word n-gram LM and a lexicon built from the run's training transcripts
only, the decoding settings chosen on the run's dev sets (never on test), and RECIPE.md saying how it was made.

    from gruasr.tuning import bundle_run
    bundle_run("runs/telephone", "src/gruasr/pretrained/telephone", recipe="configs/telephone.toml")

The dev sets go through the run's dev line (its `dev_channel`), as in training; greedy decoding, beam search
without the LM and beam search with the LM over a grid of LM weights and word bonuses are scored, and the best
is written into model.json ("decoding"), so the LM is used by default only if it helps on dev.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gruasr.audio.telephony import TelephoneChannel
from gruasr.bundle import LEXICON, LM, DecodeOptions, atomic_dir, commit_dir, load_bundle, verify, write_model_files
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.decoding.beam import BeamConfig, Lexicon
from gruasr.decoding.lm import NGramLM, build_arpa
from gruasr.errors import ConfigError
from gruasr.evaluation.metrics import ErrorCounts
from gruasr.recognizer import OfflineRecognizer

#: the grid searched on dev
BEAM_SIZE = 16
LM_WEIGHTS = (0.3, 0.5, 0.8, 1.2)
WORD_BONUSES = (0.0, 0.5, 1.0, 2.0)
#: bundle folder name -> the make target that builds it (named in RECIPE.md)
MAKE_TARGETS = {"telephone": "model", "telephone-streaming": "model-streaming"}


def dev_log_probs(recognizer: OfflineRecognizer, config: dict[str, Any]) -> list[tuple[str, torch.Tensor]]:
    """(reference text, log-probabilities (T', V)) of every dev utterance of a run's resolved config
    (config.json), through the run's dev line, seeded per utterance as in training."""
    rate = recognizer.sample_rate
    codec = config["dev_channel"]["codec"]
    line = TelephoneChannel(codec=codec, output_rate=rate) if codec else None
    cached = []
    for path in config["data"]["dev"]:
        for index, utt in enumerate(read_manifest(path)):
            samples = load_utterance(utt, rate)
            if line is not None:
                samples = line.apply(samples, rate, np.random.default_rng([config["dev_channel"]["seed"], index]))
            cached.append((utt.text, recognizer.log_probs(samples).cpu()))
    return cached


def tune_decoding(
    recognizer: OfflineRecognizer, cached: Sequence[tuple[str, torch.Tensor]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Dev WER of greedy, beam without LM, and beam with the recognizer's LM and lexicon over the grid
    (LM_WEIGHTS x WORD_BONUSES). Returns the best settings (model.json "decoding") and every result."""

    def wer(options: DecodeOptions) -> float:
        recognizer.options = options
        counts = ErrorCounts()
        for text, log_probs in cached:
            counts.add(text, recognizer.decode(log_probs).text)
        return counts.wer

    grid: list[tuple[dict[str, Any], Callable[[], DecodeOptions]]] = [
        ({"method": "greedy"}, lambda: DecodeOptions("greedy")),
        ({"method": "beam", "use_lm": False, "beam_size": BEAM_SIZE},
         lambda: DecodeOptions("beam", BeamConfig(BEAM_SIZE), use_lm=False)),
    ]  # fmt: skip
    if recognizer.lm is not None:
        for alpha in LM_WEIGHTS:
            for beta in WORD_BONUSES:
                settings = {"method": "beam", "use_lm": True, "beam_size": BEAM_SIZE, "lm_weight": alpha,
                            "word_bonus": beta}  # fmt: skip
                beam = BeamConfig(BEAM_SIZE, lm_weight=alpha, word_bonus=beta)
                grid.append((settings, lambda b=beam: DecodeOptions("beam", b, use_lm=True)))  # type: ignore[misc]
    results = [{**settings, "dev_wer": wer(make())} for settings, make in grid]
    best = min(results, key=lambda r: r["dev_wer"])
    return {k: v for k, v in best.items() if k != "dev_wer"}, results


def _recipe_text(
    run: Path, out: Path, recipe: Path, default_recipe: bool, order: int, summary: dict[str, Any], facts: dict[str, Any]
) -> str:
    results = facts["results"]
    by_method = {
        "greedy": results[0]["dev_wer"],
        "beam": results[1]["dev_wer"],
        "beam+lm (best)": min((r["dev_wer"] for r in results if r.get("use_lm")), default=float("nan")),
    }
    history = summary["history"]
    config_option = "" if default_recipe else f" --config {recipe}"
    make_line = f"(`make {MAKE_TARGETS[out.name]}` runs these.) " if out.name in MAKE_TARGETS and default_recipe else ""
    environment = summary["environment"]
    selection = summary["selection"]
    return (
        f"""# The bundled {out.name} model

Made by this project's own recipe, from AN4, FSDD (see the README for their licenses) and generated
non-speech audio:

    gruasr data an4  --src ../shared/data/an4  --out data/an4
    gruasr data fsdd --src ../shared/data/fsdd --out data/fsdd --numbers-train 800
    gruasr data nonspeech --out data/nonspeech --crosstalk data/an4/train.jsonl
    gruasr train --config {recipe} --out {run}
    gruasr model bundle {run} --out {out}{config_option}

{make_line}{summary["parameters"]:,} parameters, {len(history)} epochs,
{sum(r["seconds"] for r in history) / 60:.1f} minutes of training on {environment["device_name"]}
({environment["threads"]} thread{"s" if environment["threads"] != 1 else ""}). Selected: {selection["chosen"]}, dev WER
{100 * selection["dev_wer"]:.2f}% (greedy, the recipe's dev sets through its dev line).
Weights are stored as float16. {LM}: word {order}-gram (interpolated modified Kneser-Ney) of the
training transcripts ({facts["sentences"]} sentences); {LEXICON}: their {facts["words"]} words.

Decoding chosen on dev (the same dev sets and line), dev WER: """
        + ", ".join(f"{name} {100 * value:.2f}%" for name, value in by_method.items())
        + f"""; default: {json.dumps(facts["best"])}.
"""
    )


def bundle_run(
    run: str | os.PathLike[str],
    out: str | os.PathLike[str],
    recipe: str | os.PathLike[str] | None = None,
    order: int = 3,
) -> Path:
    """Bundle RUN/model as a model folder `out` (written atomically with its manifest, then verified): float16
    weights with their checksum, an `order`-gram LM and lexicon of the run's training transcripts, the dev-tuned
    decoding, and RECIPE.md naming `recipe` (default configs/<out folder name>.toml, which must exist). The data
    manifests named in RUN/config.json are read relative to the current directory, as training read them."""
    run, out = Path(run), Path(out)
    recipe_path = Path(recipe) if recipe is not None else Path("configs") / f"{out.name}.toml"
    if not recipe_path.is_file():
        raise ConfigError(f"no recipe {recipe_path}: name the run's training config with --config")
    for name in ("config.json", "summary.json"):
        if not (run / name).is_file():
            raise ConfigError(f"{run}: not a finished training run (no {name})")
    if order < 1:
        raise ConfigError(f"the LM order must be at least 1, got {order}")
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    # the run's own model, written by this project's training; one made before manifests is read unchecked, with
    # a warning: the folder written here gets a fresh manifest and is verified
    bundle = load_bundle(run / "model", allow_missing_manifest=True)
    tmp = atomic_dir(out)
    texts = [u.text for path in config["data"]["train"] for u in read_manifest(path)]
    (tmp / "lm-text.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    build_arpa(tmp / "lm-text.txt", order, tmp / LM)
    (tmp / "lm-text.txt").unlink()
    words = sorted({w for t in texts for w in t.split()})
    (tmp / LEXICON).write_text("\n".join(words) + "\n", encoding="utf-8")
    recognizer = OfflineRecognizer(bundle, NGramLM.from_arpa(tmp / LM), Lexicon(words))
    best, results = tune_decoding(recognizer, dev_log_probs(recognizer, config))
    kept = {k: v for k, v in bundle.meta.items() if k not in ("decoding", "decoding_dev_results")}
    extra = {**kept, "decoding": best, "decoding_dev_results": results}
    write_model_files(tmp, bundle.model, bundle.features, bundle.cmvn, bundle.tokens, extra, dtype=torch.float16)
    facts = {"results": results, "best": best, "sentences": sum(1 for t in texts if t), "words": len(words)}
    text = _recipe_text(run, out, recipe_path, recipe is None, order, summary, facts)
    (tmp / "RECIPE.md").write_text(text, encoding="utf-8")
    commit_dir(tmp, out)
    verify(out)
    return out
