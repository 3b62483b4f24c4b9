"""`gruasr serve`: the recognizer on the network (Vosk WebSocket, media streams, AudioSocket, OpenAI REST), and
`gruasr keys`: its API keys."""

from __future__ import annotations

import argparse


def _cmd_serve(args: argparse.Namespace) -> int:
    from gruasr.server.config import load_config
    from gruasr.server.runner import run

    config = load_config(args.config).with_overrides(
        host=args.host, port=args.port, audiosocket_port=args.audiosocket_port,
        audiosocket_host=args.audiosocket_host, model=args.model, rest_model=args.rest_model,
        second_pass=args.second_pass,
        torch_threads=args.torch_threads, engine=args.engine, decode_workers=args.decode_workers,
        decode_in=args.decode_in, tick_ms=args.tick_ms, max_sessions=args.max_sessions, output=args.output,
        webhook=args.webhook, drain_seconds=args.drain_seconds,
        tls_cert=args.tls_cert, tls_key=args.tls_key, tls_client_ca=args.tls_client_ca, keys_file=args.keys_file,
        insecure_no_auth=args.insecure_no_auth or None, log_transcripts=args.log_transcripts or None,
        redact=tuple(args.redact) if args.redact else None,
        trusted_keys=tuple(args.trusted_key) if args.trusted_key else None,
    )  # fmt: skip
    return run(config)


def _cmd_keys(args: argparse.Namespace) -> int:
    import datetime

    from gruasr.server.keys import KeyStore

    store = KeyStore(args.keys_file)
    if args.action == "add":
        token = store.add(args.name, args.max_sessions, args.audio_hours_per_day)
        print(f"added key {args.name!r} to {store.path}; it is shown once, store it now:")
        print(f"key: {token}")
    elif args.action == "revoke":
        store.revoke(args.name)
        print(f"revoked key {args.name!r} in {store.path}")
    else:
        print(f"{'name':<24} {'created (UTC)':<20} {'state':<8} {'sessions':>8} {'hours/day':>9}")
        for key in store.keys:
            created = datetime.datetime.fromtimestamp(key.created, datetime.UTC).strftime("%Y-%m-%d %H:%M")
            state = "revoked" if key.revoked else "active"
            sessions = str(key.max_sessions or "-")
            hours = f"{key.audio_hours_per_day:g}" if key.audio_hours_per_day else "-"
            print(f"{key.name:<24} {created:<20} {state:<8} {sessions:>8} {hours:>9}")
    return 0


def add_serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve", help="serve live calls and files: Vosk WebSocket, Twilio media streams, AudioSocket, OpenAI REST"
    )
    serve.add_argument("--config", metavar="TOML", help="server settings ([server] table); flags override it")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP/WebSocket port (default 2700, as the Vosk server)")
    serve.add_argument("--audiosocket-port", type=int, help="also listen for Asterisk AudioSocket on this TCP port")
    serve.add_argument("--audiosocket-host", help="AudioSocket's address (default 127.0.0.1: it has no security)")
    serve.add_argument("--model", metavar="DIR", help="a unidirectional model folder (default: the bundled one)")
    serve.add_argument(
        "--rest-model", metavar="DIR", help="model of REST transcriptions (default: the bundled offline model; "
        "'streaming': the streaming one)",
    )  # fmt: skip
    serve.add_argument(
        "--second-pass", nargs="?", const="default", metavar="DIR",
        help="finals from a second model on each utterance's audio (no DIR: the bundled offline model; with "
        "--engine onnx an export); partials stay the streaming model's (docs/streaming.md, \"Two passes\")",
    )  # fmt: skip
    serve.add_argument(
        "--engine", choices=["torch", "onnx"],
        help="torch (default), or onnx: ONNX Runtime on folders of `gruasr model export --onnx` (--model: a "
        "streaming model's export; --rest-model: an export, default the streaming export)",
    )  # fmt: skip
    serve.add_argument("--torch-threads", type=int, help="intra-op threads of the network step (default 1)")
    serve.add_argument("--decode-workers", type=int, help="threads decoding finals (default: spare cores, >= 2)")
    serve.add_argument(
        "--decode-in", choices=["threads", "processes"],
        help="decode finals in threads (default) or in spawned processes, each with its own LM: more streams per "
        "core past ~200 (docs/serving.md, \"Capacity\")",
    )  # fmt: skip
    serve.add_argument("--tick-ms", type=float, help="the ticker's period, ms (default 50)")
    serve.add_argument("--max-sessions", type=int, help="open streams at most (default 256)")
    serve.add_argument("--output", metavar="DIR", help="write each call's final events as DIR/<call>.jsonl")
    serve.add_argument("--webhook", metavar="URL", help="POST each final event of a call to this URL")
    serve.add_argument("--drain-seconds", type=float, help="on SIGTERM, wait this long for open sessions' finals")
    security = serve.add_argument_group("security (docs/security.md)")
    security.add_argument("--tls-cert", metavar="PEM", help="serve TLS (>= 1.2) with this certificate chain")
    security.add_argument("--tls-key", metavar="PEM", help="the certificate's private key")
    security.add_argument("--tls-client-ca", metavar="PEM", help="mutual TLS: require client certificates of this CA")
    security.add_argument("--keys-file", metavar="FILE", help="require API keys from this file (`gruasr keys add`)")
    security.add_argument(
        "--insecure-no-auth", action="store_true",
        help="allow listening beyond loopback without keys (a trusted network only)",
    )  # fmt: skip
    security.add_argument("--log-transcripts", action="store_true", help="write transcript text in the logs")
    security.add_argument(
        "--redact", action="append", metavar="RULE",
        help="redact transcripts before they leave: 'card' (Luhn-valid 13-19 digit runs), 'digits>=N' (repeatable)",
    )  # fmt: skip
    security.add_argument(
        "--trusted-key", action="append", metavar="PUB", help="load only models signed by this Ed25519 key (repeatable)"
    )
    serve.set_defaults(func=_cmd_serve)

    keys = sub.add_parser("keys", help="API keys of `gruasr serve`: add, list, revoke")
    actions = keys.add_subparsers(dest="action", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="a new key; printed once, as the last word of the last line")
    add.add_argument("name", help="who the key is for (letters, digits, _ . @ -)")
    add.add_argument("--max-sessions", type=int, default=0, help="this key's concurrent sessions at most (0: no limit)")
    add.add_argument(
        "--audio-hours-per-day", type=float, default=0.0, help="this key's audio per UTC day, hours (0: no quota)"
    )
    listing = actions.add_parser("list", help="the keys' names, dates, states and limits (never the keys)")
    revoke = actions.add_parser("revoke", help="revoke a key (a running server refuses it on its next connection)")
    revoke.add_argument("name")
    for parser in (add, listing, revoke):
        parser.add_argument("--keys-file", required=True, metavar="FILE", help="the keys file (created by add)")
        parser.set_defaults(func=_cmd_keys)
