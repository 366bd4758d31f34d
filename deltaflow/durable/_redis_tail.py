"""The shared tail of a ``RedisEventLog``: one blocking ``XREAD`` for every stream its readers follow.

A reader that has caught up waits here on an ``asyncio.Event``, not on a Redis command of its own:
one task per log blocks in ``XREAD`` over all the followed streams at once (``XREAD`` takes many
keys) on a connection of its own, and keeps each stream's recent entries for every reader to take.
So a new entry costs one round trip per instance whatever the number of readers, the connections
per instance stay constant, and a reader that leaves cancels no Redis command (a command cut off
midway would cost its connection). Readers behind the kept entries read the log directly
(``XREAD`` without ``BLOCK``) until they catch up; a slow reader therefore reads at its own pace,
never buffered beyond one batch.

A stream newly followed joins the blocking read at once: a reader writes to the tail's own small
wake stream, which the blocking read includes, and the tail issues its next read with the new key.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from ._log import LogEntry

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["Position", "RedisTail", "position_of"]

Position = tuple[int, int]
"""An entry id as numbers, ``(generation, sequence)``: ordered as Redis orders the ids."""

KEPT_ENTRIES = 1024
"""Recent entries kept per followed stream, for readers a little behind the others."""

_WAKE_TTL_MS = 3_600_000


def position_of(entry_id: str) -> Position:
    """``"<generation>-<sequence>"`` as numbers (an id this log wrote: no validation)."""
    generation, _, sequence = entry_id.partition("-")
    return int(generation), int(sequence)


@dataclass(slots=True)
class _Followed:
    """One followed stream: the entries after ``base`` up to ``cursor``, the last one read."""

    stream_id: str
    base: Position
    cursor: Position
    entries: list[LogEntry] = field(default_factory=list)
    positions: list[Position] = field(default_factory=list)
    # replaced at every read that brings entries (or a failure): readers wait on the current one
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    failure: BaseException | None = None
    waiting: int = 0
    used: float = field(default_factory=time.monotonic)

    def after(self, position: Position, count: int) -> list[LogEntry]:
        """The kept entries after ``position`` (which is within ``base``..``cursor``)."""
        start = _bisect(self.positions, position)
        return self.entries[start : start + count]

    def add(self, entries: list[LogEntry]) -> None:
        for entry in entries:
            self.positions.append(position_of(entry.id))
            self.entries.append(entry)
        self.cursor = self.positions[-1]
        excess = len(self.entries) - KEPT_ENTRIES
        if excess > 0:
            self.base = self.positions[excess - 1]
            del self.entries[:excess], self.positions[:excess]
        self.wake()

    def wake(self) -> None:
        self.arrived.set()
        self.arrived = asyncio.Event()


def _bisect(positions: list[Position], position: Position) -> int:
    low, high = 0, len(positions)
    while low < high:
        middle = (low + high) // 2
        if positions[middle] <= position:
            low = middle + 1
        else:
            high = middle
    return low


class RedisTail:
    """The blocking read shared by all readers of one log instance.

    Args:
        tail_client: a client of its own (one connection): it is blocked most of the time.
        client: for the catch-up reads and the wake-ups (short commands).
        wake_key: this instance's wake stream.
        block: seconds one ``XREAD BLOCK`` lasts (within the socket timeout).
        call: runs a Redis command, turning redis's connection errors into ``EventLogUnavailable``.
        shared: one ``XREAD`` over all followed streams; False on a Redis Cluster, where one command's
            keys must share a hash slot: one blocking read per followed stream (still shared by all its
            readers on this instance).
    """

    def __init__(
        self,
        tail_client: aioredis.Redis | RedisCluster,
        client: aioredis.Redis | RedisCluster,
        *,
        prefix: str,
        block: float,
        call: Callable[[str, Callable[[], Awaitable[Any]]], Awaitable[Any]],
        shared: bool = True,
    ) -> None:
        self.client = tail_client
        self._client = client
        self._wake_key = f"{prefix}tail:{uuid.uuid4().hex}"
        self._wake_id = "0-0"
        self._block_ms = max(1, int(block * 1000))
        self._call = call
        self._followed: dict[str, _Followed] = {}
        self._task: asyncio.Task[None] | None = None
        self._shared = shared
        self._key_tasks: dict[str, asyncio.Task[None]] = {}
        self._wake_pending = False
        self.reads = 0
        """Blocking reads issued so far (the tail's round trips)."""

    async def read(
        self, stream_id: str, key: str, after: Position, *, block: float, count: int
    ) -> list[LogEntry]:
        """Entries of ``key`` after ``after``, waiting up to ``block`` seconds for one."""
        followed = self._followed.get(key)
        if followed is not None:
            self._keep_reading(key)
        if followed is None or after < followed.base:
            entries = await self._read_directly(stream_id, key, after, count)
            if entries:
                return entries
            followed = await self._follow(stream_id, key, after)
        followed.used = time.monotonic()
        deadline = followed.used + block
        while True:
            if after < followed.cursor:
                return followed.after(after, count)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return []
            arrived = followed.arrived
            followed.waiting += 1
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), remaining)
            finally:
                followed.waiting -= 1
                followed.used = time.monotonic()
            if followed.failure is not None:
                raise followed.failure
            if self._followed.get(key) is not followed:  # the log is closing
                return []

    async def _read_directly(self, stream_id: str, key: str, after: Position, count: int) -> list[LogEntry]:
        start = f"{after[0]}-{after[1]}"
        reply = await self._call(
            stream_id,
            lambda: cast("Awaitable[list[Any] | None]", self._client.xread({key: start}, count=count)),
        )
        return _entries(reply[0][1]) if reply else []

    async def _follow(self, stream_id: str, key: str, after: Position) -> _Followed:
        followed = self._followed.get(key)
        if followed is None:
            followed = self._followed[key] = _Followed(stream_id, after, after)
            if not self._shared:
                running = self._key_tasks.get(key)
                if running is None or running.done():
                    self._key_tasks[key] = asyncio.ensure_future(self._run(key))
            elif self._task is None or self._task.done():
                self._task = asyncio.ensure_future(self._run())
            elif not self._wake_pending:
                self._wake_pending = True
                await self._call(stream_id, self._wake)
        return followed

    def _keep_reading(self, key: str) -> None:
        """Restart a blocking read that ended (on an error it did not expect) while readers follow."""
        running = self._key_tasks.get(key) if not self._shared else self._task
        if running is None or running.done():
            if self._shared:
                self._task = asyncio.ensure_future(self._run())
            else:
                self._key_tasks[key] = asyncio.ensure_future(self._run(key))

    async def _wake(self) -> None:
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.xadd(self._wake_key, {"w": "1"}, maxlen=1)
            pipe.pexpire(self._wake_key, _WAKE_TTL_MS)
            await pipe.execute()

    async def _run(self, only: str | None = None) -> None:
        """Block on the followed streams (``only`` that one) until none is left to follow."""
        import redis.exceptions  # noqa: PLC0415

        delay = 0.05
        failing_since: float | None = None
        while self._drop_unfollowed() and (only is None or only in self._followed):
            self._wake_pending = False
            streams: dict[Any, Any] = {} if only else {self._wake_key: self._wake_id}
            followed_now = {only: self._followed[only]} if only else self._followed
            streams.update({key: f"{f.cursor[0]}-{f.cursor[1]}" for key, f in followed_now.items()})
            try:
                self.reads += 1
                reply = cast(
                    "list[tuple[str, list[Any]]] | None",
                    await self.client.xread(streams, count=256, block=self._block_ms),
                )
            except (redis.exceptions.RedisError, OSError) as error:
                # Redis away, or a failover (a demoted primary unblocks its readers): readers wait
                # out one blocking read's time, then are told while the tail tries again
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since >= self._block_ms / 1000:
                    self._fail(error, followed_now.values())
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)
                continue
            delay, failing_since = 0.05, None
            for key, entries in reply or ():
                if key == self._wake_key:
                    self._wake_id = entries[-1][0]
                elif (followed := self._followed.get(key)) is not None:
                    followed.failure = None
                    followed.add(_entries(entries))
            for followed in followed_now.values():
                followed.failure = None
        if only is not None:
            self._key_tasks.pop(only, None)

    def _drop_unfollowed(self) -> bool:
        """Forget streams nobody has read for a while; whether any is left to follow."""
        idle_since = time.monotonic() - 2 * self._block_ms / 1000
        for key in [k for k, f in self._followed.items() if not f.waiting and f.used < idle_since]:
            self._followed.pop(key).wake()
        return bool(self._followed)

    @staticmethod
    def _fail(error: BaseException, failing: Iterable[_Followed]) -> None:
        from deltaflow.errors import EventLogUnavailable  # noqa: PLC0415

        for followed in list(failing):
            followed.failure = EventLogUnavailable(
                f"the Redis event log is unavailable: {error}", stream_id=followed.stream_id
            )
            followed.wake()

    async def aclose(self) -> None:
        """Stop the blocking read."""
        tasks = [*self._key_tasks.values(), *([self._task] if self._task is not None else [])]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for followed in self._followed.values():
            followed.wake()
        self._followed.clear()


def _entries(raw: list[Any]) -> list[LogEntry]:
    return [LogEntry(entry_id, fields["k"], fields["d"]) for entry_id, fields in raw]
