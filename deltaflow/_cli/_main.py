"""Parsing the command line and running a command: every failure is one line on stderr."""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Sequence
from typing import NoReturn

from ._commands import COMMANDS
from ._errors import describe
from ._terminal import end_line

__all__ = ["run"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``--help`` still shows the usage)."""

    def error(self, message: str) -> NoReturn:
        end_line()
        self.exit(2, f"deltaflow: error: {message} (see: {self.prog} --help)\n")


def _version() -> str:
    try:
        return importlib.metadata.version("deltaflow")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        from deltaflow import __version__  # noqa: PLC0415

        return __version__


def build_parser() -> argparse.ArgumentParser:
    """The ``deltaflow`` parser, one subparser per entry of ``COMMANDS``."""
    parser = _Parser(prog="deltaflow", description="Streamed chat completions as typed events.")
    parser.add_argument("--version", action="version", version=f"deltaflow {_version()}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    for command in COMMANDS:
        subparser = subparsers.add_parser(
            command.name,
            help=command.summary,
            description=command.summary,
            epilog=command.epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        command.configure(subparser)
        subparser.set_defaults(run=command.run)
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` and run the command; a failure prints one line on stderr and returns 1."""
    arguments = build_parser().parse_args(argv)
    try:
        return int(arguments.run(arguments))
    except Exception as error:  # noqa: BLE001 - whatever failed, the user gets one line, not a traceback
        message = describe(error, arguments.command)
    end_line()
    print(f"deltaflow: error: {message}", file=sys.stderr)
    return 1
