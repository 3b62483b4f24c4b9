"""The one entry point, `gruasr`: thin subcommands over library calls. Results to stdout, progress to stderr."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Sequence

from gruasr import GruAsrError, __version__
from gruasr.cli.compare import add_compare_parser
from gruasr.cli.data import add_data_parser
from gruasr.cli.model import add_model_parsers
from gruasr.cli.recognize import add_recognize_parsers
from gruasr.cli.scale import add_scale_parser
from gruasr.cli.serve import add_serve_parser
from gruasr.cli.stream import add_stream_parsers
from gruasr.cli.train import add_train_parsers


def _cmd_demo(args: argparse.Namespace) -> int:
    from gruasr.demo import run_gru_demo, run_recognizer_demo

    if args.gru:
        result = run_gru_demo(updates=args.updates)
        return 0 if max(result.parity.values()) < 1e-9 else 1
    run_recognizer_demo(data=args.data, evaluate=not args.no_eval)
    return 0


def _cmd_units(args: argparse.Namespace) -> int:
    from gruasr.models import available, recurrent

    print(f"{'unit':8} {'backends':24} {'parameters':>10}  (input {args.input_size}, hidden {args.hidden_size})")
    for name in available():
        unit = recurrent(name, input_size=args.input_size, hidden_size=args.hidden_size)
        count = sum(p.numel() for p in unit.parameters())
        print(f"{name:8} {','.join(unit.backends):24} {count:>10}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gruasr", description="Speech recognition built around gated recurrent units, for telephone speech."
    )
    parser.add_argument("--version", action="version", version=f"gruasr {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    demo = sub.add_parser("demo", help="transcribe the sample call and evaluate the bundled model (--gru: the GRU)")
    demo.add_argument("--gru", action="store_true", help="instead: our GRU vs torch.nn.GRU, and a sequence task")
    demo.add_argument("--updates", type=int, default=400, help="with --gru: training updates for the sequence task")
    demo.add_argument("--data", help="corpora folder (default: $GRUASR_DATA or ../shared/data)")
    demo.add_argument("--no-eval", action="store_true", help="only the sample call, no test-set evaluation")
    demo.set_defaults(func=_cmd_demo)

    units = sub.add_parser("units", help="list the recurrent units, their backends and parameter counts")
    units.add_argument("--input-size", type=int, default=80)
    units.add_argument("--hidden-size", type=int, default=256)
    units.set_defaults(func=_cmd_units)

    add_data_parser(sub)
    add_train_parsers(sub)
    add_recognize_parsers(sub)
    add_stream_parsers(sub)
    add_model_parsers(sub)
    add_compare_parser(sub)
    add_scale_parser(sub)
    add_serve_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        code: int = args.func(args)
    except GruAsrError as err:
        print(f"gruasr {args.command}: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"gruasr {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader left (`gruasr stream ... | head`): stop quietly, as Unix tools do
        _silence_stdout()
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by a closed pipe
    return code


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not raise again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):  # stdout is not a descriptor (captured)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


if __name__ == "__main__":
    raise SystemExit(main())
