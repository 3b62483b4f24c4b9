"""`--redact RULE` of `gruasr transcribe`, `stream` and `call`: digit runs hidden before anything is printed
(gruasr.redact). Its own module so the recognition commands share one definition of the option."""

from __future__ import annotations

import argparse

from gruasr.redact import Policy, parse_rules


def add_redact_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--redact", action="append", default=[], metavar="RULE",
        help='hide digit runs in every output: "card" (13-19 digits passing the Luhn check -> [card]) or '
        '"digits>=N" (N or more digits -> [digits]); repeatable',
    )  # fmt: skip


def redaction(args: argparse.Namespace) -> Policy:
    """The Policy of the --redact rules (checked before the model loads: a bad rule is a ConfigError)."""
    return parse_rules(args.redact)
