"""The ``deltaflow`` command: demo, chat, record, replay and serve (the list is ``deltaflow._cli._commands``).

Every error a user can hit (no key, an unreachable or malformed base URL, an unknown dialect, a bad
schema file, a missing recording, a busy port) prints one line on stderr and exits non-zero, without a
traceback; stdout carries only the answer. Ctrl+C, even while the command starts, ends the line and
says "interrupted".
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from deltaflow._cli._terminal import LineTracker

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deltaflow`` command; returns the exit status."""
    previous = sys.stdout
    stdout = sys.stdout = LineTracker(previous)
    try:
        # imported here, not above: a Ctrl+C while openai and pydantic load must not print a traceback
        from deltaflow._cli._main import run  # noqa: PLC0415

        return run(argv)
    except KeyboardInterrupt as interrupt:
        if not stdout.at_line_start:
            stdout.write("\n")
        # a command may say what it kept (record: where the chunks received are)
        detail = f": {interrupt}" if str(interrupt) else ""
        print(f"deltaflow: interrupted{detail}", file=sys.stderr)
        return 130
    finally:
        stdout.flush()
        sys.stdout = previous


if __name__ == "__main__":
    sys.exit(main())
