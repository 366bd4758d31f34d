"""How a stream is shown: drawn text, one line per event, or JSON logs; and what it reported wrong."""

from __future__ import annotations

import io
import json
import sys
from typing import Any

from deltaflow import sinks
from deltaflow.errors import JsonParseError
from deltaflow.events import BaseEvent, ChunkReceived, ErrorReported
from deltaflow.sinks import Sink

from ._errors import describe
from ._terminal import end_line

__all__ = ["OUTPUTS", "ErrorLog", "TextView", "json_logger", "views"]

OUTPUTS = ("text", "events", "logs")


def views(output: str, *, choices: int = 1) -> list[Any]:
    """The observers that show a stream as ``output`` (one of ``OUTPUTS``)."""
    if output == "text":
        return [TextView(choices)]
    if output == "logs":
        return [sinks.log(json_logger(), include_content=True, content_level="info")]
    return [sinks.callback(_print_event)]


def json_logger() -> Any:
    """A structlog logger writing JSON lines to stderr, without touching the global configuration."""
    import structlog  # noqa: PLC0415 - only the logs view needs it

    return structlog.wrap_logger(
        structlog.PrintLogger(file=sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
    )


def _print_event(event: BaseEvent) -> None:
    data = event.model_dump(mode="json", exclude={"snapshot", "chunk", "exception"})
    kind = data.pop("type")
    if isinstance(event, ChunkReceived):
        # the raw chunk, less what every chunk repeats: else the line is empty (its snapshot is left out)
        data = event.chunk.model_dump(
            mode="json", exclude_none=True, exclude={"id", "object", "created", "model"}
        )
    fields = " ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in data.items())
    print(f"{kind:<36} {fields}"[:400])


class TextView(Sink):
    """The answer drawn by the console sink, on stdout; errors are left to the command, for stderr.

    With several choices, choice 0 streams live under a ``── choice 0`` label and the others, drawn
    meanwhile into buffers, follow under their own labels once the stream completes; the closing line
    (finish reasons, tokens, timings) comes last, once.
    """

    name = "text"

    def __init__(self, choices: int = 1) -> None:
        from rich.console import Console  # noqa: PLC0415 - a dependency of the console sink

        self._live = sinks.console(choice_index=0)
        self._labelled = choices > 1
        self._buffered = []
        for index in range(1, choices):
            buffer = io.StringIO()
            self._buffered.append((index, buffer, sinks.console(Console(file=buffer), choice_index=index)))
        self._started = False

    def on_next(self, value: BaseEvent) -> None:
        """Draw ``value``; error events are not drawn (the command reports them on stderr)."""
        if isinstance(value, ErrorReported):
            return
        if self._labelled and not self._started:
            print("── choice 0")
        self._started = True
        self._live.on_next(value)
        for _, _, sink in self._buffered:
            sink.on_next(value)

    def on_completed(self) -> None:
        """Show the buffered choices, then the closing line."""
        for index, buffer, sink in self._buffered:
            sink.close()
            end_line()
            print(f"── choice {index}")
            sys.stdout.write(buffer.getvalue())
        self._live.on_completed()
        end_line()

    def on_error(self, error: Exception) -> None:
        """Stop drawing; the command prints the error."""
        self.close()

    def close(self) -> None:
        """Stop every console sink without printing more."""
        self._live.close()
        for _, _, sink in self._buffered:
            sink.close()
        end_line()


class ErrorLog(Sink):
    """Collects the stream's ``error`` events, each once, so the command can report them and fail."""

    name = "errors"

    def __init__(self) -> None:
        self.errors: list[ErrorReported] = []
        self._seen: set[tuple[str, str]] = set()

    def on_next(self, value: BaseEvent) -> None:
        """Keep ``value`` if it is an error not seen before."""
        if isinstance(value, ErrorReported) and (value.code, value.message) not in self._seen:
            self._seen.add((value.code, value.message))
            self.errors.append(value)

    def summary(self) -> str | None:
        """One line for the errors kept, or None when there are none."""
        if not self.errors:
            return None
        reported = self.errors[0]
        first = " ".join(reported.message.split())
        if isinstance(reported.exception, JsonParseError):
            # the parser's own words ("expected 'Infinity' at position 1") need what it was reading
            first = describe(reported.exception, "chat")
            if reported.choice_index is not None:
                first = f"choice {reported.choice_index}: {first}"
        more = len(self.errors) - 1
        return first + (f" (and {more} more error{'s' if more > 1 else ''})" if more else "")
