"""The event log's interface, shared by its backends (in-memory, Redis Streams).

A stream is an append-only list of entries. Entry ids are ``<generation>-<sequence>``: the generation
is the producer's lease number (unique per log, never reused), the sequence counts 1, 2, 3... within
it. So ids are ordered, a reader can tell a trimmed range (a hole in the sequence) from the end, and
an id from an earlier answer under the same stream id never matches the current one.

Every stream ends with exactly one terminal entry, of kind ``done``, whose data says the outcome:
``{"ok": true, "outcome": "done"}``, ``{"ok": false, "outcome": "error", "error": ..., "completion":
...}`` or ``{"ok": false, "outcome": "aborted", "reason": ..., "completion": ..., "usage": ...}``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple, Protocol, TypeAlias

from deltaflow.errors import StreamNotFound

__all__ = [
    "TERMINAL_KIND",
    "AppendResult",
    "EventLog",
    "Lease",
    "LogEntry",
    "Outcome",
    "ReapResult",
    "StreamInfo",
    "aborted_payload",
    "parse_entry_id",
]

TERMINAL_KIND = "done"
"""The kind (SSE event name) of a stream's terminal entry; no deltaflow event is called that."""

Outcome: TypeAlias = Literal["done", "error", "aborted"]
ReapResult: TypeAlias = Literal["live", "reaped", "finished", "gone", "replaced"]
"""What ``EventLog.reap`` found: a producer still holds the lease; its loss was just recorded as
``aborted``; the stream had ended already; the stream does not exist; a newer generation owns the id."""

_ENTRY_ID = re.compile(r"(\d{1,19})-(\d{1,19})")
STREAM_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
"""What a stream id may be: URL-safe, short, usable in a Redis key and a URL path as it is."""


def parse_entry_id(entry_id: str, *, stream_id: str) -> tuple[int, int]:
    """``"<generation>-<sequence>"`` as two numbers.

    Raises:
        StreamNotFound: the id is not of that form, so it names no entry of any stream.
    """
    match = _ENTRY_ID.fullmatch(entry_id)
    if match is None:
        raise StreamNotFound(f"{entry_id[:64]!r} is not an event id of this log", stream_id=stream_id)
    return int(match[1]), int(match[2])


@dataclass(frozen=True, slots=True, weakref_slot=True)
class Lease:
    """A producer's right to write one stream: its stream id and generation number."""

    stream_id: str
    generation: int


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One entry: its id, its kind (a deltaflow event type, or ``done``) and its compact JSON data."""

    id: str
    kind: str
    data: str

    @property
    def terminal(self) -> bool:
        """Whether this is the stream's last entry."""
        return self.kind == TERMINAL_KIND


class AppendResult(NamedTuple):
    """The id of the (last) entry an append wrote, and whether a stop was requested meanwhile."""

    entry_id: str
    stop_requested: bool


class StreamInfo(NamedTuple):
    """A stream's state: its generation, how many entries it has had, and whether it ended."""

    generation: int
    sequence: int
    finished: bool


class EventLog(Protocol):
    """Where durable streams live: one producer appends, any number of readers follow.

    Implementations: ``MemoryEventLog`` (one process) and ``RedisEventLog`` (many instances). All
    methods raise ``EventLogUnavailable`` when the backend cannot be reached.
    """

    @property
    def lease_time(self) -> float:
        """Seconds a producer's lease lasts without an append or a renewal."""
        ...

    async def claim(self, stream_id: str) -> Lease:
        """Start a stream and hold its lease, under a new generation.

        Raises:
            LeaseConflict: the stream id is in use (running, or ended but still retained).
        """
        ...

    async def append(self, lease: Lease, kind: str, data: str) -> AppendResult:
        """Append one entry and renew the lease.

        Raises:
            LeaseLost: the lease expired or the stream ended: this producer must stop.
        """
        ...

    async def append_many(self, lease: Lease, entries: Sequence[tuple[str, str]]) -> AppendResult:
        """Append ``(kind, data)`` entries in order (one round trip); the result names the last one.

        Raises:
            ValueError: ``entries`` is empty.
            LeaseLost: the lease expired or the stream ended: this producer must stop.
        """
        ...

    async def finish(self, lease: Lease, data: str) -> str:
        """Append the terminal entry (kind ``done``), release the lease and start the retention TTL.

        Raises:
            LeaseLost: the lease expired or the stream ended already.
        """
        ...

    async def renew(self, lease: Lease) -> bool:
        """Renew the lease while nothing is appended; returns whether a stop was requested.

        Raises:
            LeaseLost: the lease expired or the stream ended.
        """
        ...

    async def request_stop(self, stream_id: str) -> bool:
        """Ask the stream's producer to stop; False when there is no running stream of that id."""
        ...

    async def info(self, stream_id: str) -> StreamInfo | None:
        """The stream's state, or None when there is no such stream."""
        ...

    async def read(self, stream_id: str, after: str, *, block: float, count: int = 256) -> list[LogEntry]:
        """Entries after id ``after`` (``"<generation>-0"`` for the first), oldest first.

        Waits up to ``block`` seconds for one when there is none yet (a blocking read, not
        polling), and returns an empty list when none came.
        """
        ...

    async def reap(self, stream_id: str, generation: int, data: str) -> ReapResult:
        """Write ``data`` as the terminal entry if the stream's producer lost its lease without one."""
        ...

    async def delete(self, stream_id: str) -> None:
        """Remove a stream now, whatever its state (its producer is then fenced)."""
        ...

    async def aclose(self) -> None:
        """Release the backend's connections."""
        ...


def aborted_payload(
    reason: str, *, completion: dict[str, Any] | None = None, events: int | None = None
) -> str:
    """The terminal data of an aborted stream, with what was generated and the usage so far."""
    usage = completion.get("usage") if completion else None
    payload = {
        "ok": False,
        "outcome": "aborted",
        "reason": reason,
        "completion": completion,
        "usage": usage,
        "events": events,
    }
    return json.dumps(payload, separators=(",", ":"))
