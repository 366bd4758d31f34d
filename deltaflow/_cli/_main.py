"""Parsing the command line and running a command: every failure is one line on stderr."""

from __future__ import annotations

import argparse
import difflib
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ._commands import COMMANDS
from ._terminal import end_line

__all__ = ["build_parser", "run"]

_TOP_OPTIONS = ("--help", "--version", "-h")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (``--help`` still shows the usage)."""

    def error(self, message: str) -> NoReturn:
        end_line()
        self.exit(2, f"deltaflow: error: {message} (see: {self.prog} --help)\n")


def _version() -> str:
    import importlib.metadata  # noqa: PLC0415 - only --version needs it, and it costs --help 20 ms

    try:
        return importlib.metadata.version("deltaflow")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout that was never installed
        import deltaflow  # noqa: PLC0415

        return str(deltaflow.__version__)


class _VersionAction(argparse.Action):
    """``--version``, reading the installed version only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **_: Any) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="show the version and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(f"deltaflow {_version()}")
        parser.exit()


def _did_you_mean(word: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f": did you mean {close[0]}?" if close else ""


def _top_level_problem(argv: Sequence[str]) -> str | None:
    """What is wrong before the command: an unknown option or command, named with the likeliest fix.

    argparse would say instead that a command is required (``deltaflow --versoin``), or list every
    choice without a suggestion (Python 3.11's argparse has none).
    """
    names = [listed.name for listed in COMMANDS]
    for token in argv:
        if token.startswith("-"):
            option = token.partition("=")[0]
            # argparse takes any unambiguous prefix of an option (--vers)
            if option == "-h" or (
                len(option) > 2 and any(known.startswith(option) for known in _TOP_OPTIONS)
            ):
                continue
            return f"unknown option {token!r}{_did_you_mean(option, _TOP_OPTIONS[:2])}"
        if token not in names:
            return f"unknown command {token!r}{_did_you_mean(token, names)} (commands: {', '.join(names)})"
        return None
    return None


def build_parser(argv: Sequence[str] = ()) -> argparse.ArgumentParser:
    """The ``deltaflow`` parser: every command listed, the one ``argv`` names configured (and so imported)."""
    parser = _Parser(prog="deltaflow", description="Streamed chat completions as typed events.")
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    chosen = next((token for token in argv if not token.startswith("-")), None)
    for listed in COMMANDS:
        if listed.name != chosen:
            subparsers.add_parser(listed.name, help=listed.summary)
            continue
        command = listed.load()
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
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv)
    if (problem := _top_level_problem(argv)) is not None:
        parser.error(problem)
    arguments = parser.parse_args(argv)
    try:
        return int(arguments.run(arguments))
    except Exception as error:  # noqa: BLE001 - whatever failed, the user gets one line, not a traceback
        from ._errors import describe  # noqa: PLC0415 - it reads the installed metadata: not for --help

        message = describe(error, arguments.command)
    end_line()
    print(f"deltaflow: error: {message}", file=sys.stderr)
    return 1
