"""Following a stream from a reader's last event id: catch-up from the log, then the live tail."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import NamedTuple

from deltaflow.errors import StreamNotFound

from ._log import EventLog, LogEntry, StreamInfo, aborted_payload, parse_entry_id

__all__ = ["Gap", "Idle", "follow", "follow_batches", "resume_point", "start_position"]


class Gap(NamedTuple):
    """Entries the reader had not seen were trimmed: ``missing`` of them, after ``after``."""

    after: str
    next_id: str
    missing: int


class Idle(NamedTuple):
    """Nothing came for a while: the stream is still running (time for a keep-alive)."""


async def start_position(log: EventLog, stream_id: str, last_event_id: str | None) -> tuple[int, int]:
    """The (generation, sequence) a reader resumes after; ``last_event_id`` None reads from the start.

    Raises:
        StreamNotFound: no such stream, or ``last_event_id`` belongs to another answer under the
            same stream id (an earlier generation): resuming there would mix two answers.
    """
    return resume_point(await log.info(stream_id), stream_id, last_event_id)


def resume_point(info: StreamInfo | None, stream_id: str, last_event_id: str | None) -> tuple[int, int]:
    """``start_position`` from the stream's state, read already."""
    if info is None:
        raise StreamNotFound(f"no stream {stream_id!r}: never started, or expired", stream_id=stream_id)
    if last_event_id is None:
        return info.generation, 0
    generation, sequence = parse_entry_id(last_event_id, stream_id=stream_id)
    if generation != info.generation or sequence > info.sequence:
        raise StreamNotFound(
            f"event {last_event_id!r} is not from the current answer of stream {stream_id!r}",
            stream_id=stream_id,
        )
    return generation, sequence


async def follow_batches(
    log: EventLog, stream_id: str, position: tuple[int, int], *, idle: float
) -> AsyncGenerator[list[LogEntry | Gap] | Idle, None]:
    """Entries after ``position`` up to the terminal one, a list per read of the log (see ``follow``)."""
    generation, sequence = position
    wait = idle
    while True:
        entries = await log.read(stream_id, f"{generation}-{sequence}", block=wait)
        if not entries:
            if wait < idle:
                return  # the stream had ended and nothing is left after the reader's position
            state = await log.reap(stream_id, generation, aborted_payload("producer_lost"))
            if state in ("gone", "replaced"):
                raise StreamNotFound(f"stream {stream_id!r} expired or was replaced", stream_id=stream_id)
            if state == "live":
                yield Idle()
            # ended (or just reaped): one more short read picks up the terminal entry if it is new
            wait = idle if state == "live" else 0.001
            continue
        batch: list[LogEntry | Gap] = []
        for entry in entries:
            entry_generation, entry_sequence = parse_entry_id(entry.id, stream_id=stream_id)
            if entry_generation != generation:
                if batch:
                    yield batch
                raise StreamNotFound(
                    f"stream {stream_id!r} was replaced by a new answer", stream_id=stream_id
                )
            if entry_sequence != sequence + 1:
                batch.append(Gap(f"{generation}-{sequence}", entry.id, entry_sequence - sequence - 1))
            sequence = entry_sequence
            batch.append(entry)
            if entry.terminal:
                yield batch
                return
        yield batch


async def follow(
    log: EventLog, stream_id: str, position: tuple[int, int], *, idle: float
) -> AsyncIterator[LogEntry | Gap | Idle]:
    """Entries after ``position`` up to the terminal one; a ``Gap`` before a trimmed range.

    Blocks on the log (never polls) up to ``idle`` seconds at a time; after each empty wait it
    checks the producer's lease, writing ``aborted`` (``producer_lost``) for a producer that died,
    and yields ``Idle`` while the producer is alive.

    Raises:
        StreamNotFound: the stream expired or was replaced under the same id while being read.
    """
    async with contextlib.aclosing(follow_batches(log, stream_id, position, idle=idle)) as batches:
        async for batch in batches:
            if isinstance(batch, Idle):
                yield batch
            else:
                for item in batch:
                    yield item
