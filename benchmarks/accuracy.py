"""The accuracy table: the bundled model (or --model) on the standard test sets, greedy and with the LM.

    python benchmarks/accuracy.py [--model DIR] [--data DIR] [--out bench-results/accuracy.json]
                                  [--holdout-model DIR --holdout-speaker NAME]

Decoding: greedy, the model's own beam-search settings (LM weight and word bonus chosen on dev when it was
bundled), and when the model names a rescoring model (model.json "rescoring": the bundled default model names the
streaming one) the same rescored by it ("beam+lm+rescore"). Test sets (gruasr.evaluation.suite): AN4 test clean (16
kHz audio resampled to the model's 8 kHz), AN4 test through a 300-3400 Hz G.711 mu-law line, FSDD official test
takes (isolated digits), and 200 FSDD "phone numbers" built from test takes only, and 300 generated clips without
speech (silence, noise, hum, tones, DTMF, music: `gruasr data nonspeech`'s test set, seed 1) through the mu-law
line, scored as invented words per minute of non-speech. With --holdout-model (a model trained without one FSDD
speaker: configs/telephone-holdout.toml), also that speaker's phone numbers.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from gruasr.audio.telephony import TelephoneChannel
from gruasr.data.corpora.fsdd import import_fsdd
from gruasr.data.corpora.nonspeech import NonSpeechConfig, build_nonspeech
from gruasr.environment import environment
from gruasr.evaluation.invented import invented_words
from gruasr.evaluation.suite import TestSet, find_data, prepare_test_sets, run_test_set
from gruasr.recognizer import OfflineRecognizer, model_decoding
from gruasr.transcription import Rescoring


def with_method(asr: OfflineRecognizer, method: str, rescoring: Rescoring | None = None) -> OfflineRecognizer:
    """The recognizer decoding by `method` ("greedy", "beam+lm", or "beam+lm+rescore": with the second model the
    folder names, `rescoring`) with the model's own settings (tuned on dev)."""
    asr.options = model_decoding(
        asr.bundle.meta, method="greedy" if method == "greedy" else "beam", use_lm=method.startswith("beam+lm")
    )
    asr.rescoring = rescoring if method == "beam+lm+rescore" else None
    return asr


def methods_of(asr: OfflineRecognizer, rescoring: Rescoring | None) -> list[str]:
    """The decodings a model is measured with: greedy, beam + LM when it has an LM, and rescored when it names a
    rescoring model (model.json "rescoring": `rescoring`, as loaded; with_method changes asr.rescoring)."""
    return ["greedy"] + ["beam+lm"] * (asr.lm is not None) + ["beam+lm+rescore"] * (rescoring is not None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="model directory (default: the bundled model)")
    parser.add_argument("--data", help="corpora folder (default: $GRUASR_DATA or ../shared/data)")
    parser.add_argument("--holdout-model", help="a model trained without --holdout-speaker")
    parser.add_argument("--holdout-speaker", default="theo")
    parser.add_argument(
        "--holdout-only", action="store_true",
        help="only the unseen speaker's numbers, with --holdout-model (greedy; beam + LM when it has an LM)",
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=Path("bench-results/accuracy.json"))
    args = parser.parse_args()
    data = find_data(args.data)
    if data is None:
        raise SystemExit("corpora not found: give --data or set GRUASR_DATA")
    status = Console(stderr=True)
    rows = []
    invented: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.holdout_only and not args.holdout_model:
            raise SystemExit("--holdout-only needs --holdout-model")
        runs: list[tuple[str | None, TestSet]] = []
        if not args.holdout_only:
            runs = [(args.model, t) for t in prepare_test_sets(data, work)]
        if args.holdout_model:
            import_fsdd(data / "fsdd", work / "holdout", numbers={"train": 0, "dev": 0, "test": 0, "holdout": 200},
                        holdout_speaker=args.holdout_speaker)  # fmt: skip
            name = f"FSDD unseen speaker ({args.holdout_speaker}) phone numbers"
            runs.append((args.holdout_model, TestSet(name, work / "holdout" / "holdout_numbers.jsonl")))
        loaded = {model: OfflineRecognizer.load(model) for model in {m for m, _ in runs}}  # each model once
        rescorings = {model: asr.rescoring for model, asr in loaded.items()}
        for model, test in runs:
            for method in methods_of(loaded[model], rescorings[model]):
                asr = with_method(loaded[model], method, rescorings[model])
                status.print(f"{test.name}: {method}")
                report = run_test_set(asr, test, status)
                counts = report.counts()
                rows.append({
                    "test_set": test.name, "decoding": method, "model": str(asr.bundle.path),
                    "utterances": len(report.recogs), "words": counts.words, "wer": counts.wer, "cer": counts.cer,
                    "ser": counts.ser, "sub": counts.sub, "del": counts.dels, "ins": counts.ins, "rtf": report.rtf,
                })  # fmt: skip
        methods = [] if args.holdout_only else methods_of(loaded[args.model], rescorings[args.model])
        if methods:
            nonspeech = build_nonspeech(work / "nonspeech", "test", NonSpeechConfig(count=300, seed=1))
            line = TelephoneChannel(codec="ulaw")
        for method in methods:
            asr = with_method(loaded[args.model], method, rescorings[args.model])
            status.print(f"non-speech: {method}")
            found = invented_words(lambda x, r: asr.transcribe(x, r).text, nonspeech, asr.sample_rate, line)  # noqa: B023
            invented.append({"test_set": "non-speech (300 generated clips), mu-law line", "decoding": method,
                             "model": str(asr.bundle.path), **found.to_dict()})  # fmt: skip
    table = Table(title="accuracy (WER; for isolated digits, accuracy = 1 - WER)")
    for col in ("test set", "decoding", "utterances", "WER", "CER", "RTF"):
        table.add_column(col, justify="left" if col in ("test set", "decoding") else "right")
    for r in rows:
        table.add_row(
            r["test_set"], r["decoding"], str(r["utterances"]), f"{100 * r['wer']:.2f}%", f"{100 * r['cer']:.2f}%",
            f"{r['rtf']:.3f}",
        )  # fmt: skip
    Console(width=140).print(table)
    table = Table(title="invented words per minute of non-speech (0 is right)")
    for col in ("test set", "decoding", "minutes", "clips with words", "words / minute", "worst kinds"):
        table.add_column(col, justify="left" if col in ("test set", "decoding", "worst kinds") else "right")
    for r in invented:
        kinds = sorted(r["per_kind"].items(), key=lambda kv: -kv[1])[:3]  # type: ignore[attr-defined]
        table.add_row(
            str(r["test_set"]), str(r["decoding"]), f"{r['minutes']:.1f}", f"{r['clips_with_words']} / {r['clips']}",
            f"{r['invented_words_per_minute']:.2f}", ", ".join(f"{k} {v:.1f}" for k, v in kinds if v > 0) or "-",
        )  # fmt: skip
    Console(width=140).print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"environment": environment(), "rows": rows, "nonspeech": invented}
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    status.print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
