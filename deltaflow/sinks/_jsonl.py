"""``sinks.jsonl``: a stream recorded as JSON lines, events or raw chunks, flushed line by line."""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import IO, Literal

from pydantic_core import PydanticSerializationError, to_json

from deltaflow.events import (
    BaseEvent,
    ChunkReceived,
    ContentDelta,
    LogprobsContentDelta,
    LogprobsRefusalDelta,
    ReasoningDelta,
    RefusalDelta,
    ToolCallDelta,
)
from deltaflow.sinks._sink import Sink

__all__ = ["JsonlSink", "Recorded", "jsonl"]

Recorded = Literal["events", "chunks"]


def jsonl(path_or_file: str | PathLike[str] | IO[str], *, what: Recorded = "events") -> JsonlSink:
    """A sink writing one JSON line per event (``what="events"``) or per raw chunk (``"chunks"``).

    Each line is flushed as soon as it is written, so a crash loses at most the line in progress.
    A file the sink opened (from a path, truncated first) is closed when the stream completes or
    fails, or on ``close()``; a file you pass stays open.

    ``deltaflow.from_jsonl`` / ``chunks_from_jsonl`` replay either kind of recording (an events
    recording replays the chunks its ``chunk`` events carry). An events recording holds every event as
    ``event.model_dump_json()``, except the running snapshots of delta events (``snapshot``, and
    ``parsed`` / ``arguments`` / ``parsed_arguments`` on deltas): each is the whole text or value so
    far, so keeping them would make the file grow with the square of the stream; replaying the
    chunks rebuilds them. Record ``what="chunks"`` to replay or test, ``"events"`` to inspect what
    the pipeline emitted.

    Args:
        path_or_file: a path to create (or truncate), or an open text file.
        what: ``events`` for every event as ``event.model_dump_json()``; ``chunks`` for the raw
            chunks only, as they reached the pipeline (after the dialect normalised them).

    Returns:
        The sink, an Rx observer of events.

    Example::

        with deltaflow.ChatStream(chunks).subscribe(sinks.jsonl("run.jsonl", what="chunks")) as stream:
            stream.until_done()
        replayed = deltaflow.ChatStream(deltaflow.chunks_from_jsonl("run.jsonl")).get_final_completion()
    """
    return JsonlSink(path_or_file, what=what)


class JsonlSink(Sink):
    """The sink ``sinks.jsonl(...)`` builds; see there.

    Attributes:
        lines: how many lines were written.
    """

    def __init__(self, path_or_file: str | PathLike[str] | IO[str], *, what: Recorded = "events") -> None:
        if what not in {"events", "chunks"}:
            raise ValueError(f"what must be 'events' or 'chunks', got {what!r}")
        self._chunks_only = what == "chunks"
        self.lines = 0
        if isinstance(path_or_file, str | PathLike):
            self.name = f"jsonl:{path_or_file}"
            self._file: IO[str] | None = Path(path_or_file).open("w", encoding="utf-8")  # noqa: SIM115 - closed at the end of the stream
            self._owned = True
        else:
            self.name = f"jsonl:{getattr(path_or_file, 'name', '<file>')}"
            self._file = path_or_file
            self._owned = False

    def on_next(self, value: BaseEvent) -> None:
        """Write ``value`` (or its chunk) as one line and flush it."""
        file = self._file
        if file is None:
            return
        if self._chunks_only:
            if type(value) is not ChunkReceived:
                return
            line = value.chunk.model_dump_json(exclude_unset=True)
        else:
            line = _event_json(value)
        file.write(line + "\n")
        file.flush()
        self.lines += 1

    def close(self) -> None:
        """Close the file if the sink opened it; further events are ignored."""
        file, self._file = self._file, None
        if file is not None and self._owned:
            file.close()


# what a delta event accumulates: the whole text or value so far, rebuilt by replaying the chunks
_ACCUMULATED = frozenset({"snapshot", "parsed", "arguments", "parsed_arguments"})
_DELTAS = (
    ChunkReceived,
    ContentDelta,
    RefusalDelta,
    ReasoningDelta,
    ToolCallDelta,
    LogprobsContentDelta,
    LogprobsRefusalDelta,
)


def _event_json(event: BaseEvent) -> str:
    try:
        if isinstance(event, _DELTAS):
            # leaving out running snapshots keeps a recording linear in the stream (and cheap: they
            # are never computed)
            fields = {
                name: getattr(event, name) for name in type(event).model_fields if name not in _ACCUMULATED
            }
            return to_json(fields).decode()
        return event.model_dump_json()
    except PydanticSerializationError:
        # an `error` event's `detail` may hold what pydantic cannot serialise (a provider's object);
        # its repr keeps the line valid JSON rather than losing the event
        return json.dumps(event.model_dump(), default=repr, ensure_ascii=False)
