"""Language-model sweeps on saved network outputs: run the network once, then decode as often as you like.

    python benchmarks/lm_sweep.py cache [--model DIR] [--data DIR] --out runs/lm-cache/telephone
    python benchmarks/lm_sweep.py score --cache runs/lm-cache/telephone --model-lm DIR   # a folder's own LM+settings
    python benchmarks/lm_sweep.py score --cache C --lm lm.arpa --lexicon words.txt --beam 16 --lm-weight 0.5 ...
    python benchmarks/lm_sweep.py tune --cache C --lm lm.arpa --lexicon words.txt [--out row.json]

`cache` saves the CTC log-probabilities of the model's dev sets (its own recipe's dev manifests through its dev
line, whole utterances: what `gruasr model bundle` tunes on, gruasr.tuning.dev_log_probs) and of the test sets of
benchmarks/accuracy.py (AN4 test clean and through the mu-law line, FSDD test digits and phone numbers, the 300
generated non-speech clips), cut by the offline recognizer's VAD exactly as `OfflineRecognizer.transcribe` cuts
them, with the reference texts and the model's own beam + LM transcripts. Replaying a decoding on the saved
segments gives the same text as transcribing the audio (`cache` checks this on every test utterance), so the
WERs equal benchmarks/accuracy.py's beam + LM rows. `tune` runs gruasr.tuning's dev grid with the given LM and
scores the test sets with the dev-best settings only (never choosing on test); `score` decodes with fixed
settings. Timings are beam search alone (one thread), as a real-time factor over the decoded audio.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any, cast

import torch
from safetensors.torch import load_file, save_file

from gruasr.audio.telephony import TelephoneChannel
from gruasr.bundle import DecodeOptions, load_bundle, model_decoding
from gruasr.data.corpora.nonspeech import NonSpeechConfig, build_nonspeech
from gruasr.decoding.beam import BeamConfig, Lexicon
from gruasr.decoding.hypothesis import Hypothesis
from gruasr.evaluation.invented import invented_words
from gruasr.evaluation.metrics import ErrorCounts
from gruasr.evaluation.suite import find_data, prepare_test_sets, run_test_set
from gruasr.recognizer import OfflineRecognizer
from gruasr.tuning import DevUtterance, dev_log_probs, dev_weights, tune_decoding

NONSPEECH = "non-speech (300 generated clips), mu-law line"


class _Recording(OfflineRecognizer):
    """An OfflineRecognizer that keeps every log-probability matrix it decodes (one per VAD segment)."""

    segments: list[torch.Tensor]

    def decode(self, log_probs: torch.Tensor) -> Hypothesis:
        self.segments.append(log_probs.cpu().clone())
        return super().decode(log_probs)

    def transcribe_keeping(self, samples: Any, rate: int) -> tuple[str, list[torch.Tensor]]:
        self.segments = []
        text = OfflineRecognizer.transcribe(self, samples, rate).text
        return text, self.segments


def cache(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    data = find_data(args.data)
    if data is None:
        raise SystemExit("corpora not found: give --data or set GRUASR_DATA")
    asr = cast(_Recording, _Recording.load(args.model))
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {"model": str(asr.bundle.path), "decoding": asr.bundle.meta.get("decoding"), "sets": {}}
    start = time.perf_counter()
    dev = dev_log_probs(asr, asr.bundle.meta["training"])
    paths = asr.bundle.meta["training"]["data"]["dev"]
    meta["dev"] = [{"ref": text, "source": paths[group]} for text, _, group in dev]
    meta["dev_weights"] = list(dev_weights(asr.bundle.meta["training"]))
    for i, (_, lp, _) in enumerate(dev):
        tensors[f"dev/{i}"] = lp.contiguous()
    print(f"dev: {len(dev)} utterances, {time.perf_counter() - start:.0f} s")

    def keep(name: str, index: int, ref: str, seconds: float, kind: str | None, text: str, segs: list[Any]) -> None:
        entry = {"ref": ref, "seconds": seconds, "kind": kind, "hyp": text, "segments": len(segs)}
        meta["sets"].setdefault(name, []).append(entry)
        for j, lp in enumerate(segs):
            tensors[f"{name}/{index}/{j}"] = lp.contiguous()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for test in prepare_test_sets(data, work):
            start = time.perf_counter()
            calls: list[tuple[str, list[torch.Tensor]]] = []
            original = asr.transcribe

            def transcribe(samples: Any, rate: int, calls: list[Any] = calls) -> Hypothesis:
                text, segs = asr.transcribe_keeping(samples, rate)
                calls.append((text, segs))
                return Hypothesis(text, ())

            asr.transcribe = transcribe  # type: ignore[method-assign,assignment]
            report = run_test_set(asr, test, None)
            asr.transcribe = original  # type: ignore[method-assign]
            for i, (recog, (text, segs)) in enumerate(zip(report.recogs, calls, strict=True)):
                keep(test.name, i, recog.ref, 0.0, recog.speaker, text, segs)
            meta["sets"][test.name + "#audio_seconds"] = report.audio_seconds
            print(f"{test.name}: {len(calls)} utterances, {time.perf_counter() - start:.0f} s")
        nonspeech = build_nonspeech(work / "nonspeech", "test", NonSpeechConfig(count=300, seed=1))
        line = TelephoneChannel(codec="ulaw")
        index = [0]

        def heard(samples: Any, rate: int) -> str:
            text, segs = asr.transcribe_keeping(samples, rate)
            keep(NONSPEECH, index[0], "", len(samples) / rate, None, text, segs)
            index[0] += 1
            return text

        found = invented_words(heard, nonspeech, asr.sample_rate, line)
        meta["sets"][NONSPEECH + "#audio_seconds"] = found.seconds
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "log_probs.safetensors"))
    (out / "meta.json").write_text(json.dumps(meta) + "\n")
    # the replay must give the transcripts the recognizer gave
    loaded = Cache(out)
    asr.options = asr.bundle.decoding()
    for name in loaded.test_names:
        for entry, hyp in zip(meta["sets"][name], loaded.decode_set(asr, name), strict=True):
            if entry["hyp"] != hyp:
                raise SystemExit(f"{name}: replay gave {hyp!r}, transcribe gave {entry['hyp']!r}")
    print(f"wrote {out}; replay of every test utterance equals transcribe")


class Cache:
    """The saved log-probabilities of `cache`."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        folder = Path(folder)
        self.meta = json.loads((folder / "meta.json").read_text())
        self.tensors = load_file(str(folder / "log_probs.safetensors"))
        self.test_names = [k for k in self.meta["sets"] if "#" not in k]

    def dev(self) -> list[DevUtterance]:
        sources = list(dict.fromkeys(e["source"] for e in self.meta["dev"]))  # the dev manifests, in order
        entries = enumerate(self.meta["dev"])
        return [(e["ref"], self.tensors[f"dev/{i}"], sources.index(e["source"])) for i, e in entries]

    @property
    def dev_weights(self) -> tuple[float, ...]:
        return tuple(self.meta.get("dev_weights", ()))

    def audio_seconds(self, name: str) -> float:
        return float(self.meta["sets"][name + "#audio_seconds"])

    def decode_set(self, asr: OfflineRecognizer, name: str) -> list[str]:
        """Each utterance's text as OfflineRecognizer.transcribe gives it: its segments' words joined."""
        out = []
        for i, entry in enumerate(self.meta["sets"][name]):
            words: list[str] = []
            for j in range(entry["segments"]):
                words += asr.decode(self.tensors[f"{name}/{i}/{j}"]).text.split()
            out.append(" ".join(words))
        return out


def _recognizer(args: argparse.Namespace, cache: Cache) -> OfflineRecognizer:
    bundle = load_bundle(args.model_lm or cache.meta["model"])
    lm, lexicon = bundle.language_model(args.lm, args.lexicon)
    if args.lm and not args.lexicon and lm is not None:
        lexicon = Lexicon(lm.vocab)
    return OfflineRecognizer(bundle, lm, lexicon)


def score_tests(asr: OfflineRecognizer, cache: Cache) -> dict[str, Any]:
    """WER (or invented words per minute) of every test set under asr.options, and beam search's RTF."""
    rows: dict[str, Any] = {}
    for name in cache.test_names:
        start = time.perf_counter()
        hyps = cache.decode_set(asr, name)
        seconds = time.perf_counter() - start
        audio = cache.audio_seconds(name)
        if name == NONSPEECH:
            words = sum(len(h.split()) for h in hyps)
            rows[name] = {"invented_words_per_minute": 60.0 * words / audio, "words": words, "rtf": seconds / audio}
            continue
        counts = ErrorCounts()
        for entry, hyp in zip(cache.meta["sets"][name], hyps, strict=True):
            counts.add(entry["ref"], hyp)
        rows[name] = {"wer": counts.wer, "errors": counts.errors, "words": counts.words, "sub": counts.sub,
                      "del": counts.dels, "ins": counts.ins, "rtf": seconds / audio}  # fmt: skip
    return rows


def dev_parts(asr: OfflineRecognizer, cache: Cache) -> dict[str, float]:
    """Dev WER overall and per dev manifest (the non-speech one: words invented)."""
    parts: dict[str, ErrorCounts] = {"all": ErrorCounts()}
    invented = 0
    for (ref, lp, _), entry in zip(cache.dev(), cache.meta["dev"], strict=True):
        hyp = asr.decode(lp).text
        parts["all"].add(ref, hyp)
        if ref:
            parts.setdefault(Path(entry["source"]).parent.name + "/" + Path(entry["source"]).stem, ErrorCounts()).add(
                ref, hyp
            )
        else:
            invented += len(hyp.split())
    return {**{k: round(100 * v.wer, 2) for k, v in parts.items()}, "invented": invented}


def _print(rows: dict[str, Any]) -> None:
    for name, r in rows.items():
        if "wer" in r:
            print(f"  {name}: WER {100 * r['wer']:.2f}% ({r['errors']}/{r['words']}: {r['sub']} sub {r['del']} del "
                  f"{r['ins']} ins), beam-search RTF {r['rtf']:.4f}")  # fmt: skip
        else:
            print(f"  {name}: {r['invented_words_per_minute']:.2f} invented words/min ({r['words']} words)")


def score(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    cache = Cache(args.cache)
    asr = _recognizer(args, cache)
    if not args.model_lm or args.beam is not None:
        asr.options = DecodeOptions(
            "beam", BeamConfig(args.beam or 16, lm_weight=args.lm_weight, word_bonus=args.word_bonus), use_lm=True
        )
    else:
        asr.options = asr.bundle.decoding()
    print(f"decoding {asr.options}")
    print(f"dev {dev_parts(asr, cache)}")
    rows = score_tests(asr, cache)
    _print(rows)
    if args.out:
        Path(args.out).write_text(json.dumps({"options": str(asr.options), "rows": rows}, indent=2) + "\n")


def tune(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    cache = Cache(args.cache)
    asr = _recognizer(args, cache)
    start = time.perf_counter()
    best, results = tune_decoding(asr, cache.dev(), weights=cache.dev_weights)
    tune_seconds = time.perf_counter() - start
    asr.options = model_decoding({"decoding": best})
    parts = dev_parts(asr, cache)
    rows = score_tests(asr, cache)
    size = os.path.getsize(args.lm) if args.lm else None
    print(f"best on dev: {best} dev {parts} (grid of {len(results)} in {tune_seconds:.0f} s); ARPA {size} bytes")
    _print(rows)
    if args.out:
        row = {"lm": args.lm, "arpa_bytes": size, "best": best, "dev": parts, "grid": results, "tests": rows}
        Path(args.out).write_text(json.dumps(row, indent=2) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("cache")
    c.add_argument("--model")
    c.add_argument("--data")
    c.add_argument("--out", required=True)
    c.set_defaults(func=cache)
    for name, func in (("score", score), ("tune", tune)):
        p = sub.add_parser(name)
        p.add_argument("--cache", required=True)
        p.add_argument("--model-lm", help="a model folder whose LM, lexicon (and settings, for score) to use")
        p.add_argument("--lm")
        p.add_argument("--lexicon")
        p.add_argument("--beam", type=int)
        p.add_argument("--lm-weight", type=float, default=0.5)
        p.add_argument("--word-bonus", type=float, default=1.0)
        p.add_argument("--out")
        p.set_defaults(func=func)
    args = parser.parse_args()
    args.func(args)


if __name__ == "__main__":
    main()
