"""`gruasr serve`: the recognizer on the network (Vosk WebSocket, media streams, AudioSocket, OpenAI REST)."""

from __future__ import annotations

import argparse


def _cmd_serve(args: argparse.Namespace) -> int:
    from gruasr.server.config import load_config
    from gruasr.server.runner import run

    config = load_config(args.config).with_overrides(
        host=args.host, port=args.port, audiosocket_port=args.audiosocket_port, model=args.model,
        rest_model=args.rest_model,
        torch_threads=args.torch_threads, decode_workers=args.decode_workers, tick_ms=args.tick_ms,
        max_sessions=args.max_sessions, output=args.output, webhook=args.webhook, drain_seconds=args.drain_seconds,
    )  # fmt: skip
    return run(config)


def add_serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve", help="serve live calls and files: Vosk WebSocket, Twilio media streams, AudioSocket, OpenAI REST"
    )
    serve.add_argument("--config", metavar="TOML", help="server settings ([server] table); flags override it")
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="HTTP/WebSocket port (default 2700, as the Vosk server)")
    serve.add_argument("--audiosocket-port", type=int, help="also listen for Asterisk AudioSocket on this TCP port")
    serve.add_argument("--model", metavar="DIR", help="a unidirectional model folder (default: the bundled one)")
    serve.add_argument(
        "--rest-model", metavar="DIR", help="model of REST transcriptions (default: the bundled offline model; "
        "'streaming': the streaming one)",
    )  # fmt: skip
    serve.add_argument("--torch-threads", type=int, help="intra-op threads of the network step (default 1)")
    serve.add_argument("--decode-workers", type=int, help="threads decoding finals (default: spare cores, >= 2)")
    serve.add_argument("--tick-ms", type=float, help="the ticker's period, ms (default 100)")
    serve.add_argument("--max-sessions", type=int, help="open streams at most (default 256)")
    serve.add_argument("--output", metavar="DIR", help="write each call's final events as DIR/<call>.jsonl")
    serve.add_argument("--webhook", metavar="URL", help="POST each final event of a call to this URL")
    serve.add_argument("--drain-seconds", type=float, help="on SIGTERM, wait this long for open sessions' finals")
    serve.set_defaults(func=_cmd_serve)
