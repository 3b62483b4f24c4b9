"""Turn a training run into a model folder to ship (what `gruasr model bundle` runs): weights stored as float16
(half the size; read back as float32), a word n-gram LM and a lexicon built as the recipe's [lm] table says
(gruasr.decoding.lm_text: the run's training transcripts, and optionally spelled words and a number grammar),
the decoding settings chosen on the run's dev sets (never on test), and RECIPE.md saying how it was made.
`rebuild_lm` (`gruasr model lm`) does the LM, lexicon and decoding part again for an existing model folder,
its weights unchanged.

    from gruasr.tuning import bundle_run, rebuild_lm
    bundle_run("runs/telephone", "src/gruasr/pretrained/telephone", recipe="configs/telephone.toml")
    rebuild_lm("src/gruasr/pretrained/telephone", "/tmp/telephone-lm6", "configs/telephone.toml", ["lm.order=6"])

The dev sets go through the run's dev line (its `dev_channel`), as in training; greedy decoding, beam search
without the LM and beam search with the LM over a grid of beam sizes, LM weights and word bonuses are scored by
the selection WER training uses (the dev sets weighed by data.dev_weights), and the best of those that invent no
more words on the speech-free dev audio than greedy decoding is written into model.json ("decoding"), so the LM
is used by default only if it helps on dev.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gruasr.audio.telephony import TelephoneChannel
from gruasr.bundle import (
    LEXICON,
    LM,
    META,
    WEIGHTS,
    DecodeOptions,
    atomic_dir,
    commit_dir,
    load_bundle,
    verify,
    write_json,
    write_model_files,
)
from gruasr.data.manifest import load_utterance, read_manifest
from gruasr.data.tokens import TokenTable
from gruasr.decoding.beam import BeamConfig, Lexicon
from gruasr.decoding.forced import ctc_log_likelihoods
from gruasr.decoding.lm import NGramLM
from gruasr.decoding.lm_text import LMRecipe, build_lm
from gruasr.errors import ConfigError
from gruasr.evaluation.metrics import DevResult
from gruasr.recognizer import OfflineRecognizer
from gruasr.training.config import load_config
from gruasr.transcription import RESCORE_NBEST, Rescoring

#: the grid searched on dev: beam search without the LM at the first beam size, with it at every beam size
BEAM_SIZES = (16, 32)
LM_WEIGHTS = (0.3, 0.5, 0.8, 1.2)
WORD_BONUSES = (0.0, 0.5, 1.0, 2.0)
#: bundle folder name -> the make target that builds it (named in RECIPE.md)
MAKE_TARGETS = {"telephone": "model", "telephone-streaming": "model-streaming"}
#: the heading of RECIPE.md's LM part, which `gruasr model lm` replaces
LM_SECTION = "## Language model and decoding"
#: the packages the spelling source reads its word lists from (their versions go into RECIPE.md)
SPELLING_PACKAGES = ("english-words", "names")
#: what tune_decoding measures of each setting on dev
DEV_SCORES = ("dev_wer", "selection_wer", "per_set_wer", "invented")


#: one dev utterance as tuning reads it: reference text, log-probabilities (T', V), index of its dev manifest
DevUtterance = tuple[str, torch.Tensor, int]


def dev_log_probs(recognizer: OfflineRecognizer, config: dict[str, Any]) -> list[DevUtterance]:
    """(reference text, log-probabilities (T', V), dev manifest index) of every dev utterance of a run's resolved
    config (config.json), through the run's dev line, seeded per utterance as in training; a unidirectional model
    hears the end silence after each (Transcriber.end_silence), as recognition gives it."""
    rate = recognizer.sample_rate
    codec = config["dev_channel"]["codec"]
    line = TelephoneChannel(codec=codec, output_rate=rate) if codec else None
    cached = []
    for group, path in enumerate(config["data"]["dev"]):
        for index, utt in enumerate(read_manifest(path)):
            samples = load_utterance(utt, rate)
            if line is not None:
                samples = line.apply(samples, rate, np.random.default_rng([config["dev_channel"]["seed"], index]))
            # each utterance is a whole input: a unidirectional model hears its end silence, as in deployment
            cached.append((utt.text, recognizer.log_probs(recognizer.end_padded(samples)).cpu(), group))
    return cached


def choose(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The settings dev prefers: the lowest selection WER among those that invent no more words on the speech-free
    dev audio than the first (greedy decoding) does; on a tie the earlier. Without the guard a word bonus that
    helps the speech sets a little can make beam search fill silence and tones with words."""
    allowed = [r for r in results if r["invented"] <= results[0]["invented"]]
    best = min(allowed, key=lambda r: r["selection_wer"])
    return {k: v for k, v in best.items() if k not in DEV_SCORES}


def tune_decoding(
    recognizer: OfflineRecognizer,
    cached: Sequence[DevUtterance],
    beam_sizes: Sequence[int] = BEAM_SIZES,
    weights: Sequence[float] = (),
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Dev errors of greedy, beam without LM (the first beam size), and beam with the recognizer's LM and lexicon
    over the grid (beam_sizes x LM_WEIGHTS x WORD_BONUSES): the pooled WER, the selection WER of the dev sets'
    `weights` (data.dev_weights; none: the pooled WER), as training selects epochs, and the words invented on the
    speech-free sets. Returns the settings `choose` prefers (model.json "decoding") and every result."""

    def score(options: DecodeOptions) -> dict[str, Any]:
        recognizer.options = options
        result = DevResult.empty(max((g for _, _, g in cached), default=0) + 1, weights)
        for text, log_probs, group in cached:
            result.add(text, recognizer.decode(log_probs).text, group)
        return {"dev_wer": result.pooled.wer, "selection_wer": result.wer, "invented": result.invented}

    grid: list[tuple[dict[str, Any], Callable[[], DecodeOptions]]] = [
        ({"method": "greedy"}, lambda: DecodeOptions("greedy")),
        ({"method": "beam", "use_lm": False, "beam_size": beam_sizes[0]},
         lambda: DecodeOptions("beam", BeamConfig(beam_sizes[0]), use_lm=False)),
    ]  # fmt: skip
    if recognizer.lm is not None:
        for size in beam_sizes:
            for alpha in LM_WEIGHTS:
                for beta in WORD_BONUSES:
                    settings = {"method": "beam", "use_lm": True, "beam_size": size, "lm_weight": alpha,
                                "word_bonus": beta}  # fmt: skip
                    beam = BeamConfig(size, lm_weight=alpha, word_bonus=beta)
                    grid.append((settings, lambda b=beam: DecodeOptions("beam", b, use_lm=True)))  # type: ignore[misc]
    results = [{**settings, **score(make())} for settings, make in grid]
    return choose(results), results


#: the rescoring weights searched on dev (0: the first model alone)
RESCORE_WEIGHTS = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5, 2.0, 3.0)
#: the heading of RECIPE.md's rescoring part, which `gruasr model rescore` replaces
RESCORE_SECTION = "## Rescoring by a second model"


def tune_rescoring(
    first: OfflineRecognizer,
    cached: Sequence[DevUtterance],
    theirs: Sequence[DevUtterance],
    weights: Sequence[float] = (),
    nbest: int = RESCORE_NBEST,
) -> tuple[float, list[dict[str, Any]]]:
    """Dev errors of `first`'s decoding with a second model's vote (gruasr.transcription.Rescoring) at each of
    RESCORE_WEIGHTS: `cached` holds first's dev log-probabilities, `theirs` the second model's of the same
    utterances. Scored as tune_decoding scores (selection WER of the dev sets' `weights`, words on the
    speech-free sets); the weight chosen is the best that invents no more words than first alone (weight 0)."""
    tokens = first.bundle.tokens
    table = []  # per utterance: (reference, group, [(text, first's score, second's log-likelihood)])
    for (text, log_probs, group), (_, other, _) in zip(cached, theirs, strict=True):
        candidates = first.options.nbest(log_probs, tokens, first.bundle.step_seconds, first.lm, first.lexicon, nbest)
        lp = other.numpy().astype(np.float64) if hasattr(other, "numpy") else np.asarray(other, dtype=np.float64)
        likelihoods = ctc_log_likelihoods(lp, [tokens.encode(h.text) for h in candidates], tokens.blank)
        scored = [(h.text, h.score, float(ll)) for h, ll in zip(candidates, likelihoods, strict=True)]
        table.append((text, group, scored))
    results = []
    for weight in RESCORE_WEIGHTS:
        result = DevResult.empty(max((g for _, _, g in cached), default=0) + 1, weights)
        for text, group, scored in table:
            best = max(scored, key=lambda c: c[1] + weight * c[2])[0] if scored else ""
            result.add(text, best, group)
        per_set = [counts.wer for counts in result.sets]
        results.append({"weight": weight, "dev_wer": result.pooled.wer, "selection_wer": result.wer,
                        "per_set_wer": per_set, "invented": result.invented})  # fmt: skip
    return float(choose(results)["weight"]), results


def add_rescoring(folder: str | os.PathLike[str], second: str | os.PathLike[str], out: str | os.PathLike[str]) -> Path:
    """A model folder that asks for rescoring by `second` (`gruasr model rescore`): the weight tuned on the dev sets
    named in model.json's training config (tune_rescoring), written into model.json ("rescoring": the second
    model's folder name, which must sit beside `out`, weight, nbest, the dev results) and RECIPE.md; every other
    file's bytes copied unchanged, a new manifest (a signature is dropped: sign it again). `out` may be `folder`."""
    folder, second, out = Path(folder), Path(second), Path(out)
    if (out.parent / second.name).resolve() != second.resolve():
        raise ConfigError(f"the rescoring model {second} must be beside the model folder {out} (a sibling folder)")
    first = OfflineRecognizer.load(folder, rescoring=False)
    other = OfflineRecognizer.load(second, rescoring=False)
    Rescoring(other, 1.0).check(first)
    config = first.bundle.meta.get("training")
    if not isinstance(config, dict) or not config.get("data", {}).get("dev"):
        raise ConfigError(f"{folder}: model.json names no training data and dev sets; bundle its run again instead")
    weight, results = tune_rescoring(
        first, dev_log_probs(first, config), dev_log_probs(other, config), dev_weights(config)
    )
    files = first.bundle.files
    if files is None:  # load_bundle always checks a folder
        raise ConfigError(f"{folder}: not a checked model folder")
    copied = {name: files.read(name) for name in (WEIGHTS, LM, LEXICON) if files.has(name)}
    old_recipe = files.read("RECIPE.md").decode("utf-8") if files.has("RECIPE.md") else ""
    tmp = atomic_dir(out)
    for name, data in copied.items():
        (tmp / name).write_bytes(data)
    spec = {"model": second.name, "weight": weight, "nbest": RESCORE_NBEST}
    kept = {k: v for k, v in first.bundle.meta.items() if k != "rescoring"}
    write_json(tmp / META, {**kept, "rescoring": {**spec, "dev_results": results}})
    alone, chosen = results[0], next(r for r in results if r["weight"] == weight)
    section = f"""{RESCORE_SECTION}

    gruasr model rescore {folder} --with {second} --out {out}

Each utterance's {RESCORE_NBEST} best texts (the decoding above) are rescored by the CTC log-likelihood of the model
beside this folder, `{second.name}`, at weight {weight} (gruasr.transcription.Rescoring), chosen on the same dev
(weights {", ".join(str(r["weight"]) for r in results)}; settings that invent more words on the speech-free dev
audio than this model alone are refused): selection WER / words invented {100 * alone["selection_wer"]:.2f}% /
{alone["invented"]} alone, {100 * chosen["selection_wer"]:.2f}% / {chosen["invented"]} rescored.
"""
    before = old_recipe.split(RESCORE_SECTION)[0].rstrip("\n")
    (tmp / "RECIPE.md").write_text((before + "\n\n" if before else "") + section, encoding="utf-8")
    commit_dir(tmp, out)
    verify(out)
    return out


def dev_weights(config: dict[str, Any]) -> tuple[float, ...]:
    """The selection weights of a run's dev sets (data.dev_weights of its resolved config; none: pooled)."""
    return tuple(float(w) for w in config["data"].get("dev_weights", ()))


def recipe_lm(recipe: str | os.PathLike[str], overrides: Sequence[str] = (), order: int | None = None) -> LMRecipe:
    """The [lm] table of a training recipe (TOML, `base` files included) with `lm.KEY=VALUE` overrides, and the
    order replaced when `order` is given."""
    wrong = [item for item in overrides if not item.strip().startswith("lm.")]
    if wrong:
        raise ConfigError(f"only lm.KEY=VALUE settings change the LM, got {wrong}")
    lm = load_config(Path(recipe), list(overrides)).lm
    return dataclasses.replace(lm, order=order) if order is not None else lm


def _recipe_path(recipe: str | os.PathLike[str] | None, out: Path) -> Path:
    path = Path(recipe) if recipe is not None else Path("configs") / f"{out.name}.toml"
    if not path.is_file():
        raise ConfigError(f"no recipe {path}: name the recipe with --config")
    return path


def _lm_files(folder: Path, recipe: LMRecipe, texts: Sequence[str], tokens: TokenTable) -> dict[str, Any]:
    """Write FOLDER/lm.arpa and lexicon.txt (the LM's words) from `texts` and the recipe; the facts model.json
    keeps under "lm" (the lexicon's words are in the file, their count here)."""
    alphabet = {s for s in tokens.symbols[1:] if s != " "}
    facts = build_lm(recipe, texts, folder / LM, alphabet)
    words = facts.pop("lexicon")
    (folder / LEXICON).write_text("\n".join(words) + "\n", encoding="utf-8")
    packages = {p: metadata.version(p) for p in SPELLING_PACKAGES} if "spelling" in recipe.sources else {}
    plain = json.loads(json.dumps(dataclasses.asdict(recipe)))  # tuples as lists, as model.json reads them back
    return {"recipe": plain, **facts, "lexicon_words": len(words), "packages": packages}


def _lm_section(lm: dict[str, Any], results: list[dict[str, Any]], best: dict[str, Any], command: str) -> str:
    """RECIPE.md's LM part: how lm.arpa and lexicon.txt were built and which decoding dev chose."""
    recipe = lm["recipe"]
    sources = {
        "transcripts": "the training transcripts",
        "spelling": "words spelled letter by letter (census first and last names, web2 English words, street names)",
        "grammar": f"{recipe['grammar_sentences']:,} sentences of the number grammar (digits, phone numbers, zip "
        "codes, dates, times, addresses, codes, the transcripts' commands)",
    }
    said = "; ".join(
        sources[s] + (f" x{recipe['weights'][s]}" if recipe["weights"].get(s, 1) != 1 else "")
        for s in recipe["sources"]
    )
    pruned = f", count cut-offs {recipe['prune']}" if recipe["prune"] else ""
    packages = ", ".join(f"{name} {version}" for name, version in lm["packages"].items())
    from_packages = f" Word lists from the installed packages {packages}." if packages else ""
    chosen = next(r for r in results if all(r.get(k) == v for k, v in best.items()))
    by_method = {
        "greedy": results[0],
        "beam": results[1],
        "beam+lm (chosen)" if chosen.get("use_lm") else "chosen": chosen,
    }
    return (
        f"""{LM_SECTION}

    {command}

{LM}: word {recipe["order"]}-gram (interpolated modified Kneser-Ney{pruned}) of {lm["sentences"]:,} sentences,
{lm["tokens"]:,} words (gruasr.decoding.lm_text): {said}.{from_packages} N-grams per order {lm["ngrams"]},
{lm["arpa_bytes"] / 1e6:.2f} MB. {LEXICON}: its {lm["lexicon_words"]} words. The recipe's [lm] table:
`{json.dumps(recipe, sort_keys=True)}`.

Decoding chosen on dev (the recipe's dev sets through its dev line; the selection WER weighs them by
data.dev_weights; settings that invent more words on the speech-free dev audio than greedy decoding are
refused), selection WER / words invented: """
        + ", ".join(f"{name} {100 * r['selection_wer']:.2f}% / {r['invented']}" for name, r in by_method.items())
        + f"""; default: {json.dumps(best)}.
"""
    )


def _recipe_text(run: Path, out: Path, recipe: Path, default_recipe: bool, summary: dict[str, Any]) -> str:
    history = summary["history"]
    config_option = "" if default_recipe else f" --config {recipe}"
    make_line = f"(`make {MAKE_TARGETS[out.name]}` runs these.) " if out.name in MAKE_TARGETS and default_recipe else ""
    environment = summary["environment"]
    selection = summary["selection"]
    return f"""# The bundled {out.name} model

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
Weights are stored as float16.

"""


def _options(recipe: str | os.PathLike[str] | None, overrides: Sequence[str], order: int | None) -> str:
    """The command-line options that repeat an LM build (for RECIPE.md)."""
    parts = [f" --config {recipe}"] if recipe is not None else []
    parts += [f" --order {order}"] if order is not None else []
    parts += [f" --set {item}" for item in overrides]
    return "".join(parts)


def bundle_run(
    run: str | os.PathLike[str],
    out: str | os.PathLike[str],
    recipe: str | os.PathLike[str] | None = None,
    order: int | None = None,
    lm_overrides: Sequence[str] = (),
) -> Path:
    """Bundle RUN/model as a model folder `out` (written atomically with its manifest, then verified): float16
    weights with their checksum, the LM and lexicon of the recipe's [lm] table (with `lm_overrides`, and the
    order replaced by `order` when given), the dev-tuned decoding, and RECIPE.md naming `recipe` (default
    configs/<out folder name>.toml, which must exist). The data manifests named in RUN/config.json are read
    relative to the current directory, as training read them."""
    run, out = Path(run), Path(out)
    recipe_path = _recipe_path(recipe, out)
    for name in ("config.json", "summary.json"):
        if not (run / name).is_file():
            raise ConfigError(f"{run}: not a finished training run (no {name})")
    lm_recipe = recipe_lm(recipe_path, lm_overrides, order)
    config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    summary = json.loads((run / "summary.json").read_text(encoding="utf-8"))
    # the run's own model, written by this project's training; one made before manifests is read unchecked, with
    # a warning: the folder written here gets a fresh manifest and is verified
    bundle = load_bundle(run / "model", allow_missing_manifest=True)
    tmp = atomic_dir(out)
    texts = [u.text for path in config["data"]["train"] for u in read_manifest(path)]
    lm = _lm_files(tmp, lm_recipe, texts, bundle.tokens)
    recognizer = OfflineRecognizer(bundle, NGramLM.from_arpa(tmp / LM), Lexicon.from_file(str(tmp / LEXICON)))
    best, results = tune_decoding(recognizer, dev_log_probs(recognizer, config), weights=dev_weights(config))
    # a rescoring weight was tuned with the old decoding: `gruasr model rescore` tunes it again for the new one
    kept = {k: v for k, v in bundle.meta.items() if k not in ("decoding", "decoding_dev_results", "lm", "rescoring")}
    extra = {**kept, "decoding": best, "decoding_dev_results": results, "lm": lm}
    write_model_files(tmp, bundle.model, bundle.features, bundle.cmvn, bundle.tokens, extra, dtype=torch.float16)
    command = f"gruasr model bundle {run} --out {out}" + _options(recipe, lm_overrides, order)
    text = _recipe_text(run, out, recipe_path, recipe is None, summary) + _lm_section(lm, results, best, command)
    (tmp / "RECIPE.md").write_text(text, encoding="utf-8")
    commit_dir(tmp, out)
    verify(out)
    return out


def rebuild_lm(
    folder: str | os.PathLike[str],
    out: str | os.PathLike[str],
    recipe: str | os.PathLike[str] | None = None,
    lm_overrides: Sequence[str] = (),
    order: int | None = None,
) -> Path:
    """A model folder's LM, lexicon and decoding settings made again (`gruasr model lm`): the recipe's [lm]
    table (default configs/<out folder name>.toml) with `lm_overrides`, the text read from the training
    manifests and the dev sets and line named in model.json's "training" config, the decoding tuned on dev as
    `gruasr model bundle` does. The weights' bytes are copied unchanged (their checksum stays); model.json gets
    the new "decoding" and "lm", RECIPE.md its LM part replaced (appended when it has none), the folder a new
    manifest (a signature is dropped: sign it again). `out` may be `folder` itself (replaced atomically). A
    rescoring model.json asked for is dropped with the old decoding it was tuned on (`add_rescoring` again)."""
    folder, out = Path(folder), Path(out)
    recipe_path = _recipe_path(recipe, out)
    lm_recipe = recipe_lm(recipe_path, lm_overrides, order)
    bundle = load_bundle(folder)
    config = bundle.meta.get("training")
    if not isinstance(config, dict) or not config.get("data", {}).get("dev"):
        raise ConfigError(f"{folder}: model.json names no training data and dev sets; bundle its run again instead")
    files = bundle.files
    if files is None:  # load_bundle always checks a folder
        raise ConfigError(f"{folder}: not a checked model folder")
    weights = files.read(WEIGHTS)
    old_recipe = files.read("RECIPE.md").decode("utf-8") if files.has("RECIPE.md") else ""
    tmp = atomic_dir(out)
    texts = [u.text for path in config["data"]["train"] for u in read_manifest(path)]
    lm = _lm_files(tmp, lm_recipe, texts, bundle.tokens)
    recognizer = OfflineRecognizer(bundle, NGramLM.from_arpa(tmp / LM), Lexicon.from_file(str(tmp / LEXICON)))
    best, results = tune_decoding(recognizer, dev_log_probs(recognizer, config), weights=dev_weights(config))
    (tmp / WEIGHTS).write_bytes(weights)
    # a rescoring weight was tuned with the old decoding: `gruasr model rescore` tunes it again for the new one
    kept = {k: v for k, v in bundle.meta.items() if k not in ("decoding", "decoding_dev_results", "lm", "rescoring")}
    write_json(tmp / META, {**kept, "decoding": best, "decoding_dev_results": results, "lm": lm})
    command = f"gruasr model lm {folder} --out {out}" + _options(recipe, lm_overrides, order)
    before = old_recipe.split(LM_SECTION)[0].rstrip("\n")
    text = (before + "\n\n" if before else "") + _lm_section(lm, results, best, command)
    (tmp / "RECIPE.md").write_text(text, encoding="utf-8")
    commit_dir(tmp, out)
    verify(out)
    return out
