"""``deltaflow replay``: a recording run through the pipeline, shown as text, events or logs."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path
from typing import Any

from ._command import Command
from ._errors import CommandError

__all__ = ["REPLAY"]


class _Recording:
    """A recording's chunks, and whether the file itself shows it was cut short."""

    def __init__(self, path: Path) -> None:
        from deltaflow.pipeline import chunks_from_jsonl, chunks_from_sse  # noqa: PLC0415

        self.cut_at_line: int | None = None
        if path.suffix == ".sse":
            body = path.read_bytes()
            self.finished = re.search(rb"^data: ?\[DONE\]\s*$", body, re.MULTILINE) is not None
            self.chunks: list[Any] = list(chunks_from_sse(body))
            return
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        if lines and not lines[-1].endswith("\n") and not _is_json(lines[-1]):
            # the writer stopped mid-line (record is killed, a disk fills): replay what is whole
            self.cut_at_line = len(lines)
            lines.pop()
        self.finished = False
        self.chunks = list(chunks_from_jsonl(lines))

    def cut_short(self, completion: Any) -> str | None:
        """Why the recording looks cut short, or None when it ends as a stream does."""
        if self.cut_at_line is not None:
            return f"its last line ({self.cut_at_line}) is incomplete"
        if not self.chunks:
            return "it holds no chunks"
        unfinished = [choice.index for choice in completion.choices if choice.finish_reason is None]
        if unfinished and not self.finished:
            return f"choice {unfinished[0]} never finished (no finish_reason)"
        return None


def _is_json(text: str) -> bool:
    try:
        json.loads(text.removeprefix("data:"))
    except ValueError:
        return False
    return True


def replay(arguments: argparse.Namespace) -> int:
    """Run a recording (SSE or JSONL) through the pipeline and print events, text or logs."""
    from deltaflow.pipeline import ChatStream  # noqa: PLC0415

    from ._drive import drive  # noqa: PLC0415
    from ._views import ErrorLog, views  # noqa: PLC0415

    path = Path(arguments.file)
    if not path.is_file():
        raise CommandError(f"recording not found: {arguments.file}")
    recording = _Recording(path)
    choices = 1 + max((choice.index for chunk in recording.chunks for choice in chunk.choices), default=0)
    errors = ErrorLog()
    completion = drive(
        ChatStream(iter(recording.chunks), dialect=arguments.dialect),
        [*views(arguments.output, choices=choices), errors],
    )
    if (reason := recording.cut_short(completion)) is not None:
        raise CommandError(f"the recording {path.name} was cut short: {reason}")
    if (summary := errors.summary()) is not None:
        raise CommandError(summary)
    return 0


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="a recording: .sse (raw body) or .jsonl (one chunk per line)")
    parser.add_argument("--dialect", help="the provider's dialect (default: generic)")
    parser.add_argument(
        "--output",
        choices=["events", "text", "logs"],
        default="events",
        help="what to print (default: %(default)s)",
    )


REPLAY = Command("replay", replay, _configure)
