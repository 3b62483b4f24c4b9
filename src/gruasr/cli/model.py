"""`gruasr model`: bundle (a training run -> a model folder to ship), export (ONNX), verify (check a folder),
manifest (write a trusted folder's checksums.sha256), keygen and sign (Ed25519 signatures of the manifest)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _cmd_bundle(args: argparse.Namespace) -> int:
    from gruasr.tuning import bundle_run

    out = bundle_run(args.run, args.out, args.config, args.order, args.set)
    _report(f"bundled {args.run}", out)
    return 0


def _cmd_lm(args: argparse.Namespace) -> int:
    from gruasr.tuning import rebuild_lm

    out = rebuild_lm(args.folder, args.out, args.config, args.set, args.order)
    _report(f"rebuilt the LM of {args.folder}", out)
    return 0


def _cmd_rescore(args: argparse.Namespace) -> int:
    from gruasr.tuning import add_rescoring

    out = add_rescoring(args.folder, args.with_model, args.out)
    spec = json.loads((out / "model.json").read_text(encoding="utf-8"))["rescoring"]
    chosen = next(r for r in spec["dev_results"] if r["weight"] == spec["weight"])
    alone = spec["dev_results"][0]
    print(f"{out}: rescored by {spec['model']} at weight {spec['weight']} (chosen on dev: selection WER "
          f"{100 * alone['selection_wer']:.2f}% alone, {100 * chosen['selection_wer']:.2f}% rescored)")  # fmt: skip
    return 0


def _report(what: str, out: Path) -> None:
    meta = json.loads((out / "model.json").read_text(encoding="utf-8"))
    size = sum(p.stat().st_size for p in out.iterdir()) / 1e6
    lm = meta.get("lm", {})
    print(f"{what} -> {out} ({size:.1f} MB; LM {lm.get('recipe', {}).get('order')}-gram, "
          f"{lm.get('arpa_bytes', 0) / 1e6:.2f} MB, {lm.get('lexicon_words')} words); "
          f"decoding chosen on dev: {json.dumps(meta['decoding'])}")  # fmt: skip


def _cmd_export(args: argparse.Namespace) -> int:
    from gruasr.export.onnx import export_onnx

    out = export_onnx(args.onnx, args.out, int8=args.int8)
    meta = json.loads((out / "export.json").read_text(encoding="utf-8"))
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.2f} MB" for p in sorted(out.glob("*.onnx")))
    kind = "int8" if meta["quantization"] else "float32"
    print(f"exported {args.onnx} -> {out} ({kind}: {sizes}; source weights sha256 {meta['source_weights_sha256']})")
    rescoring = meta.get("rescoring")
    if rescoring and not (out.parent / rescoring["model"]).is_dir():
        name = rescoring["model"]
        print(f"it is rescored by {name}: export {name} beside it (gruasr model export --onnx MODEL_OF_{name} "
              f"--out {out.parent / name}), or it decodes alone")  # fmt: skip
    return 0


def _cmd_verify(args: argparse.Namespace) -> int:
    if (Path(args.folder) / "export.json").is_file():  # an export folder (gruasr model export --onnx)
        from gruasr.runtime.model import verify_export

        facts = verify_export(args.folder, trusted_keys=args.trusted_key)
        print(json.dumps(facts) if args.json else f"{facts['path']}: ok ({len(facts['files'])} files match "
              f"checksums.sha256; graphs {', '.join(facts['graphs'])}, {facts['quantization'] or 'float32'}, "
              f"source weights sha256 {facts['source_weights_sha256']}, LM {facts['lm'] or 'none'})")  # fmt: skip
        return 0
    from gruasr.bundle import verify

    facts = verify(args.folder, trusted_keys=args.trusted_key)
    if args.json:
        print(json.dumps(facts))
    else:
        checksum = facts["weights_sha256"] or "none recorded"
        signed = f", signed by {facts['signed_by']}" if facts["signed_by"] else ""
        unchecked = ", signature not checked (no --trusted-key)" if facts["signature_present"] and not signed else ""
        print(f"{facts['path']}: ok ({len(facts['files'])} files match checksums.sha256{signed}{unchecked}; "
              f"{facts['parameters']:,} parameters, {facts['sample_rate']} Hz, {facts['tokens']} tokens, "
              f"checksum {checksum}, LM {facts['lm'] or 'none'})")  # fmt: skip
    return 0


def _cmd_manifest(args: argparse.Namespace) -> int:
    from gruasr.bundle import META, verify
    from gruasr.errors import CheckpointError
    from gruasr.integrity import write_manifest

    folder = Path(args.folder)
    if not (folder / META).is_file():
        raise CheckpointError(f"{folder}: not a gruasr model (no {META}); only model folders get a manifest")
    written = write_manifest(folder)
    print(f"wrote {written.path} ({len(written.names)} files: {', '.join(written.names)})")
    if written.removed_signature:
        print(f"{folder}: removed the signature of the previous manifest: sign it again (gruasr model sign)",
              file=sys.stderr)  # fmt: skip
    verify(folder)  # a folder that does not load is reported now, not at the first call
    return 0


def _cmd_keygen(args: argparse.Namespace) -> int:
    from gruasr.integrity import generate_keys

    private, public, fingerprint = generate_keys(args.out)
    print(f"wrote {private} (private: keep it secret, mode 0600) and {public} (give it to --trusted-key); "
          f"key {fingerprint}")  # fmt: skip
    return 0


def _cmd_sign(args: argparse.Namespace) -> int:
    from gruasr.integrity import sign_folder

    path, fingerprint = sign_folder(args.folder, args.key)
    print(f"wrote {path}: the manifest signed by {fingerprint}")
    return 0


def add_model_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `model` (bundle, lm, rescore, verify, manifest, keygen, sign) on the top-level subparsers."""
    model = sub.add_parser(
        "model", help="model folders: bundle a training run, lm, rescore, verify, manifest, keygen, sign"
    )
    model_sub = model.add_subparsers(dest="model_command", metavar="SUBCOMMAND", required=True)
    bundle = model_sub.add_parser(
        "bundle",
        help="RUN/model -> a model folder: float16 weights + checksum, LM and lexicon as the recipe's [lm] table "
        "says, decoding tuned on the run's dev sets, RECIPE.md, checksums.sha256",
    )
    bundle.add_argument("run", metavar="RUN", help="a finished training run folder (gruasr train --out RUN)")
    bundle.add_argument("--out", required=True, help="the model folder to write (replaced atomically)")
    _lm_options(bundle, "the recipe the run was trained with")
    bundle.set_defaults(func=_cmd_bundle)
    lm = model_sub.add_parser(
        "lm",
        help="DIR -> a model folder with the same weights and a new LM, lexicon and dev-tuned decoding (the "
        "recipe's [lm] table; text and dev sets from DIR/model.json's training config), RECIPE.md, manifest",
    )
    lm.add_argument("folder", metavar="DIR", help="a model folder (its weights are copied unchanged)")
    lm.add_argument("--out", required=True, help="the model folder to write (may be DIR; replaced atomically)")
    _lm_options(lm, "the recipe whose [lm] table to build")
    lm.set_defaults(func=_cmd_lm)
    rescore = model_sub.add_parser(
        "rescore",
        help="DIR -> a model folder whose n-best a second model (a folder beside it) rescores, the weight tuned on "
        "DIR's dev sets (model.json 'rescoring', RECIPE.md, manifest; other files unchanged)",
    )
    rescore.add_argument("folder", metavar="DIR", help="a model folder (its files are copied unchanged)")
    rescore.add_argument(
        "--with", dest="with_model", required=True, metavar="SECOND",
        help="the rescoring model's folder, beside --out (e.g. the bundled streaming model)",
    )  # fmt: skip
    rescore.add_argument("--out", required=True, help="the model folder to write (may be DIR; replaced atomically)")
    rescore.set_defaults(func=_cmd_rescore)
    export = model_sub.add_parser(
        "export",
        help="--onnx MODEL: the whole-utterance and streaming-step ONNX graphs, metadata, LM, lexicon, "
        "checksums.sha256 (run them with --engine onnx, or gruasr.runtime without torch)",
    )
    export.add_argument(
        "--onnx", required=True, metavar="MODEL", help="a model folder or a bundled model's name (telephone, ...)"
    )
    export.add_argument("--out", required=True, metavar="DIR", help="the folder to write (replaced atomically)")
    export.add_argument(
        "--int8", action="store_true", help="int8 weights for every matrix, the GRUs' included (gruasr.export.quantize)"
    )
    export.set_defaults(func=_cmd_export)
    verify = model_sub.add_parser(
        "verify", help="check a model folder: every file against checksums.sha256, signature, sizes, shapes, LM"
    )
    verify.add_argument("folder", metavar="DIR")
    verify.add_argument("--json", action="store_true", help="the summary as one JSON object")
    add_trusted_key_option(verify)
    verify.set_defaults(func=_cmd_verify)
    manifest = model_sub.add_parser(
        "manifest",
        help="(re)write DIR/checksums.sha256 from the files there now: only for a folder you trust (one made by "
        "a gruasr before manifests, or one you changed yourself)",
    )
    manifest.add_argument("folder", metavar="DIR")
    manifest.set_defaults(func=_cmd_manifest)
    keygen = model_sub.add_parser("keygen", help="a new Ed25519 key pair: NAME.key (private, 0600) and NAME.pub")
    keygen.add_argument("--out", required=True, metavar="NAME", help="path and name of the keys (never overwritten)")
    keygen.set_defaults(func=_cmd_keygen)
    sign = model_sub.add_parser("sign", help="sign DIR/checksums.sha256 (after checking it): checksums.sha256.sig")
    sign.add_argument("folder", metavar="DIR")
    sign.add_argument("--key", required=True, metavar="NAME.key", help="the Ed25519 private key (PEM, PKCS#8)")
    sign.set_defaults(func=_cmd_sign)


def _lm_options(parser: argparse.ArgumentParser, recipe: str) -> None:
    parser.add_argument("--config", help=f"{recipe} (default configs/<out name>.toml)")
    parser.add_argument("--order", type=int, help="order of the word n-gram LM (default: the recipe's lm.order)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="lm.KEY=VALUE",
        help="override the recipe's [lm] table (TOML values), e.g. lm.order=5, lm.prune=[0,0,1], "
        'lm.sources=["transcripts","grammar"], lm.weights={transcripts=10}; repeatable',
    )  # fmt: skip


def add_trusted_key_option(parser: argparse.ArgumentParser) -> None:
    """--trusted-key PUB (repeatable): accept the model folder only if one of these keys signed its manifest."""
    parser.add_argument(
        "--trusted-key", action="append", metavar="PUB",
        help="an Ed25519 public key (PEM); repeatable: the model folder must be signed by one of them",
    )  # fmt: skip
