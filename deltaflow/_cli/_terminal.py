"""Standard output that remembers whether its line is open, so errors and Ctrl+C start on a fresh one."""

from __future__ import annotations

import sys
from typing import Any, TextIO

__all__ = ["LineTracker", "end_line"]


class LineTracker:
    """Wraps a text stream and records whether the last text written ended its line.

    Everything else (``isatty``, ``fileno``, ``encoding``...) is the wrapped stream's, so rich sees the
    real terminal.
    """

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.at_line_start = True

    def write(self, text: str) -> int:
        """Write ``text`` and note whether it ended the line."""
        if text:
            self.at_line_start = text.endswith("\n")
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def end_line() -> None:
    """End standard output's current line, if something left it open."""
    stdout = sys.stdout
    if isinstance(stdout, LineTracker) and not stdout.at_line_start:
        stdout.write("\n")
    stdout.flush()
