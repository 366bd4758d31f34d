"""``MemoryEventLog``: the event log in one process's memory, the embedded default.

Same semantics as the Redis backend (ids, leases, fencing, trimming, retention), for one event
loop: a single relay process, the demo and the tests. Nothing is shared between processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from deltaflow.errors import LeaseConflict, LeaseLost

from ._log import (
    TERMINAL_KIND,
    AppendResult,
    Lease,
    LogEntry,
    ReapResult,
    StreamInfo,
    parse_entry_id,
)

__all__ = ["MemoryEventLog"]


@dataclass(slots=True)
class _Stream:
    generation: int
    lease_until: float
    # entries[i] has sequence first_sequence + i; trimmed ones are cut off in batches
    entries: list[LogEntry] = field(default_factory=list)
    first_sequence: int = 1
    expires_at: float | None = None
    sequence: int = 0
    finished: bool = False
    stop_requested: bool = False
    # replaced at every append: readers wait on the current one
    appended: asyncio.Event = field(default_factory=asyncio.Event)


class MemoryEventLog:
    """An in-process event log.

    Args:
        max_length: entries kept per stream; older ones are trimmed (readers then get a ``gap``).
            An answer streams about one event per token: the default keeps the longest whole.
        ttl: seconds a stream is kept after its terminal entry.
        lease_time: seconds a producer's lease lasts without an append or renewal.
    """

    def __init__(self, *, max_length: int = 100_000, ttl: float = 600.0, lease_time: float = 10.0) -> None:
        if max_length < 1 or ttl <= 0 or lease_time <= 0:
            raise ValueError("max_length, ttl and lease_time must be positive")
        self._max_length = max_length
        self._ttl = ttl
        self._lease_time = lease_time
        self._streams: dict[str, _Stream] = {}
        self._generations = 0

    @property
    def lease_time(self) -> float:
        """Seconds a producer's lease lasts without an append or a renewal."""
        return self._lease_time

    def _live(self, stream_id: str) -> _Stream | None:
        stream = self._streams.get(stream_id)
        if stream is not None and stream.expires_at is not None and stream.expires_at <= time.monotonic():
            del self._streams[stream_id]
            return None
        return stream

    def _held(self, lease: Lease) -> _Stream:
        stream = self._live(lease.stream_id)
        if (
            stream is None
            or stream.generation != lease.generation
            or stream.finished
            or stream.lease_until <= time.monotonic()
        ):
            raise LeaseLost(
                f"the lease on stream {lease.stream_id!r} (generation {lease.generation}) is gone",
                stream_id=lease.stream_id,
            )
        return stream

    def _expire(self) -> None:
        now = time.monotonic()
        for stream_id in [key for key, s in self._streams.items() if s.expires_at and s.expires_at <= now]:
            del self._streams[stream_id]

    async def claim(self, stream_id: str) -> Lease:
        """Start a stream and hold its lease; see ``EventLog.claim``."""
        self._expire()
        if stream_id in self._streams:
            raise LeaseConflict(f"stream id {stream_id!r} is in use", stream_id=stream_id)
        self._generations += 1
        self._streams[stream_id] = _Stream(self._generations, time.monotonic() + self._lease_time)
        return Lease(stream_id, self._generations)

    def _add(self, stream: _Stream, kind: str, data: str) -> str:
        stream.sequence += 1
        entry = LogEntry(f"{stream.generation}-{stream.sequence}", kind, data)
        stream.entries.append(entry)
        excess = len(stream.entries) - self._max_length
        # trimmed in batches of max_length: amortised O(1) per append, like MAXLEN ~ but exact
        if excess >= self._max_length:
            del stream.entries[:excess]
            stream.first_sequence += excess
        stream.appended.set()
        stream.appended = asyncio.Event()
        return entry.id

    def _end(self, stream: _Stream, data: str) -> str:
        entry_id = self._add(stream, TERMINAL_KIND, data)
        stream.finished = True
        stream.expires_at = time.monotonic() + self._ttl
        return entry_id

    async def append(self, lease: Lease, kind: str, data: str) -> AppendResult:
        """Append one entry and renew the lease; see ``EventLog.append``."""
        stream = self._held(lease)
        stream.lease_until = time.monotonic() + self._lease_time
        return AppendResult(self._add(stream, kind, data), stream.stop_requested)

    async def append_many(self, lease: Lease, entries: Sequence[tuple[str, str]]) -> AppendResult:
        """Append entries in order; see ``EventLog.append_many``."""
        if not entries:
            raise ValueError("an append needs at least one entry")
        stream = self._held(lease)
        stream.lease_until = time.monotonic() + self._lease_time
        entry_id = ""
        for kind, data in entries:
            entry_id = self._add(stream, kind, data)
        return AppendResult(entry_id, stream.stop_requested)

    async def finish(self, lease: Lease, data: str) -> str:
        """Append the terminal entry; see ``EventLog.finish``."""
        return self._end(self._held(lease), data)

    async def renew(self, lease: Lease) -> bool:
        """Renew the lease; see ``EventLog.renew``."""
        stream = self._held(lease)
        stream.lease_until = time.monotonic() + self._lease_time
        return stream.stop_requested

    async def request_stop(self, stream_id: str) -> bool:
        """Ask the producer to stop; see ``EventLog.request_stop``."""
        stream = self._live(stream_id)
        if stream is None or stream.finished:
            return False
        stream.stop_requested = True
        return True

    async def info(self, stream_id: str) -> StreamInfo | None:
        """The stream's state; see ``EventLog.info``."""
        stream = self._live(stream_id)
        return None if stream is None else StreamInfo(stream.generation, stream.sequence, stream.finished)

    async def read(self, stream_id: str, after: str, *, block: float, count: int = 256) -> list[LogEntry]:
        """Entries after ``after``, waiting up to ``block`` seconds for one; see ``EventLog.read``."""
        generation, sequence = parse_entry_id(after, stream_id=stream_id)
        stream = self._live(stream_id)
        if stream is None:
            await asyncio.sleep(block)  # as a blocking read on a missing key: nothing comes
            return []
        if stream.generation == generation and stream.sequence <= sequence:
            try:
                await asyncio.wait_for(stream.appended.wait(), block)
            except TimeoutError:
                return []
        if stream.generation < generation:
            return []
        # the reader's position, or the first entry kept when the ones after it were trimmed
        after_sequence = 0 if stream.generation > generation else sequence
        kept = max(0, len(stream.entries) - self._max_length)
        index = max(kept, after_sequence - stream.first_sequence + 1)
        return stream.entries[index : index + count]

    async def reap(self, stream_id: str, generation: int, data: str) -> ReapResult:
        """Record a lost producer's end; see ``EventLog.reap``."""
        stream = self._live(stream_id)
        if stream is None:
            return "gone"
        if stream.generation != generation:
            return "replaced"
        if stream.finished:
            return "finished"
        if stream.lease_until > time.monotonic():
            return "live"
        self._end(stream, data)
        return "reaped"

    async def delete(self, stream_id: str) -> None:
        """Remove a stream now; see ``EventLog.delete``."""
        stream = self._streams.pop(stream_id, None)
        if stream is not None:
            stream.appended.set()

    async def aclose(self) -> None:
        """Nothing to release: the streams go with the object."""
