"""`gruasr eval` and `gruasr transcribe`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gruasr.cli.inputs import add_raw_option, check_audio_files
from gruasr.cli.model import add_trusted_key_option
from gruasr.cli.redaction import add_redact_option, redaction
from gruasr.errors import ConfigError, GruAsrError

if TYPE_CHECKING:
    from gruasr.recognizer import OfflineRecognizer


def _recognizer(args: argparse.Namespace) -> OfflineRecognizer:
    """The model on --device (or, with --engine onnx, an exported folder on ONNX Runtime) with the decoding the
    arguments ask for; what they leave open comes from the model: --greedy (or --decoding greedy) is the best path,
    --no-lm (or --decoding beam) beam search without the LM and lexicon, --decoding lm beam search with them."""
    weight = getattr(args, "rescore_weight", None)
    if weight is not None and weight < 0:  # before any model loads
        raise ConfigError(f"--rescore-weight must be >= 0, got {weight}")
    missing = "--engine onnx needs --model DIR, a folder written by `gruasr model export --onnx MODEL --out DIR`"
    recognizer = _load(args, args.model, missing, _own_rescoring(args), lm=args.lm, lexicon=args.lexicon)
    method, use_lm = None, None
    if args.greedy or args.decoding == "greedy":
        method = "greedy"
    elif args.no_lm or args.decoding == "beam":
        method, use_lm = "beam", False
    elif args.decoding == "lm":
        method, use_lm = "beam", True
    recognizer.options = recognizer.bundle.decoding(
        method=method, use_lm=use_lm, beam_size=args.beam, lm_weight=args.lm_weight, word_bonus=args.word_bonus
    )
    _rescoring(args, recognizer)
    return recognizer


def _load(
    args: argparse.Namespace,
    folder: str | os.PathLike[str] | None,
    missing: str,
    rescoring: bool,
    lm: str | None = None,
    lexicon: str | None = None,
) -> Any:
    """One recognizer on the engine --engine names: torch on --device (folder None: the bundled default model), or
    ONNX Runtime on an export folder (none: ConfigError `missing`)."""
    if args.engine == "onnx":
        from gruasr.runtime import OnnxRecognizer

        if not folder:
            raise ConfigError(missing)
        threads = getattr(args, "threads", 1)
        return OnnxRecognizer.load(
            folder, lm=lm, lexicon=lexicon, trusted_keys=args.trusted_key, threads=threads, rescoring=rescoring
        )
    from gruasr.recognizer import OfflineRecognizer

    return OfflineRecognizer.load(
        folder, args.device, lm=lm, lexicon=lexicon, trusted_keys=args.trusted_key, rescoring=rescoring
    )


def _own_rescoring(args: argparse.Namespace) -> bool:
    """Whether to load the second model the model folder names: not when --rescore names another or
    --rescore-weight 0 turns rescoring off."""
    return getattr(args, "rescore", None) is None and getattr(args, "rescore_weight", None) != 0


def _rescoring(args: argparse.Namespace, recognizer: Any) -> None:
    """--rescore [DIR] and --rescore-weight W on top of the model's own rescoring (model.json "rescoring"): DIR
    names the second model (bare: the bundled streaming model; with --engine onnx an exported folder), W its
    weight, 0 none."""
    from dataclasses import replace

    from gruasr.transcription import RESCORE_WEIGHT, Rescoring

    explicit, weight = getattr(args, "rescore", None), getattr(args, "rescore_weight", None)
    if weight == 0:
        recognizer.rescoring = None
        return
    if explicit is None:
        if weight is not None:
            if recognizer.rescoring is None:
                raise ConfigError("--rescore-weight: this model names no rescoring model; give one with --rescore DIR")
            recognizer.rescoring = replace(recognizer.rescoring, weight=weight)
        return
    from gruasr.bundle import bundled

    folder = explicit or (None if args.engine == "onnx" else bundled("telephone-streaming"))
    missing = "--engine onnx --rescore needs DIR, a folder written by `gruasr model export --onnx`"
    second = _load(args, folder, missing, rescoring=False)
    recognizer.rescoring = Rescoring(second, RESCORE_WEIGHT if weight is None else weight).check(recognizer)


def _add_rescoring(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--rescore", nargs="?", const="", metavar="DIR",
        help="a second model rescores each utterance's n-best (sequence-level fusion; bare: the bundled streaming "
        "model; default: the one the model names, as the bundled default model names the streaming one)",
    )  # fmt: skip
    parser.add_argument(
        "--rescore-weight", type=float, metavar="W",
        help="weight of the second model's log-likelihood (default: the model's, tuned on dev, else 1.0); 0: none",
    )  # fmt: skip


def _add_decoding(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="model folder (default: the bundled telephone model)")
    parser.add_argument("--device", default="cpu", help="where the model runs: cpu, cuda, cuda:1 ... (default cpu)")
    parser.add_argument(
        "--engine", choices=["torch", "onnx"], default="torch",
        help="torch (a model folder), or onnx: ONNX Runtime on a folder of `gruasr model export --onnx` (--model)",
    )  # fmt: skip
    parser.add_argument("--lm", help="ARPA language model (default: the model's lm.arpa, if any)")
    parser.add_argument("--lexicon", help="word list limiting the output (default: the model's, or the LM's words)")
    method = parser.add_mutually_exclusive_group()
    method.add_argument(
        "--decoding", choices=["lm", "beam", "greedy"],
        help="lm: beam search with the LM and lexicon; beam: without them; greedy: best path "
        "(default: what the model recommends, lm for the bundled model)",
    )  # fmt: skip
    method.add_argument("--no-lm", action="store_true", help="beam search without the LM and lexicon")
    method.add_argument("--greedy", action="store_true", help="greedy best-path decoding, no beam")
    parser.add_argument("--beam", type=int, help="beam size (default: the model's, else 16)")
    parser.add_argument("--lm-weight", type=float, help="LM weight alpha (default: the model's, else 0.5)")
    parser.add_argument("--word-bonus", type=float, help="bonus per word beta (default: the model's, else 1.0)")
    add_trusted_key_option(parser)  # eval, transcribe, stream, call


def _cmd_eval(args: argparse.Namespace) -> int:
    from gruasr.audio.telephony import TelephoneChannel
    from gruasr.evaluation.evaluate import evaluate
    from gruasr.evaluation.report import write_report
    from gruasr.transcription import decoding_name

    if not Path(args.manifest).is_file():
        raise ConfigError(f"{args.manifest}: no such manifest")
    recognizer = _recognizer(args)
    channel = None
    if args.channel or args.snr is not None or args.packet_loss or args.tilt:
        codec = None if args.channel in (None, "none") else args.channel
        channel = TelephoneChannel(
            codec=codec, snr_db=args.snr, packet_loss=args.packet_loss, tilt_db=args.tilt,
            output_rate=recognizer.sample_rate,
        )  # fmt: skip
    report = evaluate(recognizer, args.manifest, channel, seed=args.seed, limit=args.limit)
    report.info = {
        "manifest": str(args.manifest),
        "model": str(recognizer.bundle.path),
        "decoding": decoding_name(recognizer),
        "channel": (
            {"codec": args.channel, "snr_db": args.snr, "packet_loss": args.packet_loss, "tilt_db": args.tilt}
            if channel
            else None
        ),
    }
    data = write_report(report, Path(args.out))
    for ident, reason in report.failed:
        print(f"failed: {ident}: {reason}", file=sys.stderr)
    print(f"CER {100 * data['cer']:.2f}%  SER {100 * data['ser']:.2f}%  RTF {data['rtf']:.4f}  -> {args.out}")
    print(report.counts().summary_line())
    return 1 if report.failed else 0


def _cmd_transcribe(args: argparse.Namespace) -> int:
    policy = redaction(args)
    files = check_audio_files("transcribe", args.files, args.raw)  # before the model loads
    if not files:
        return 1
    recognizer = _recognizer(args)
    failed = len(args.files) - len(files)
    for path in files:
        try:
            results = recognizer.transcribe_file(path, raw=args.raw)
        except GruAsrError as err:
            print(f"gruasr transcribe: error: {path}: {err}", file=sys.stderr)
            failed += 1
            continue
        for result in map(policy.redact_result, results):
            if args.json:
                print(json.dumps({"audio": path, **result.to_dict()}), flush=True)
            else:
                label = f"{result.leg}: " if result.leg is not None else ""
                print(f"{path}: {label}{result.text}" if len(args.files) > 1 else f"{label}{result.text}", flush=True)
    return 1 if failed else 0


def add_recognize_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `eval` and `transcribe` on the top-level subparsers."""
    ev = sub.add_parser("eval", help="decode a manifest and score it (WER, CER, SER, RTF, per speaker)")
    ev.add_argument("--manifest", required=True)
    ev.add_argument("--out", required=True, help="folder for wer-summary.txt, recogs.txt, errs.txt, report.json")
    ev.add_argument("--channel", choices=["ulaw", "alaw", "none"], help="pass the audio through a telephone line")
    ev.add_argument("--snr", type=float, help="add white noise at this SNR (dB) on the line")
    ev.add_argument("--packet-loss", type=float, default=0.0, help="fraction of 20 ms packets lost on the line")
    ev.add_argument(
        "--tilt", type=float, default=0.0, metavar="DB",
        help="another handset: a spectral tilt in dB per octave around 1 kHz before the line (e.g. -4 duller, +4 "
        "brighter)",
    )  # fmt: skip
    ev.add_argument("--seed", type=int, default=0, help="seed of the simulated line")
    ev.add_argument("--limit", type=int, default=0, help="only the first N utterances")
    _add_decoding(ev)
    _add_rescoring(ev)
    ev.set_defaults(func=_cmd_eval)

    tr = sub.add_parser("transcribe", help="transcribe audio files (any format and rate; one result per channel)")
    tr.add_argument("files", nargs="+", metavar="FILE")
    tr.add_argument("--json", action="store_true", help="one JSON object per input and channel per line")
    add_raw_option(tr)
    add_redact_option(tr)
    _add_decoding(tr)
    _add_rescoring(tr)
    tr.set_defaults(func=_cmd_transcribe)
