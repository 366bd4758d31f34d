"""Running one chat stream into the event log, apart from any HTTP connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

from deltaflow.errors import DeltaflowError, EventLogError
from deltaflow.events import ErrorReported
from deltaflow.recipes._event_sources import AnyEventStream, EventSource, events_of
from deltaflow.recipes._relay_wire import encode_compact, failure_payload

from ._log import EventLog, Lease, Outcome, aborted_payload

__all__ = ["produce"]

DONE_PAYLOAD = '{"ok":true,"outcome":"done"}'
_MAX_BATCH = 256


@dataclass(slots=True)
class _Watch:
    """What the lease's renewal found while the producer was waiting on its model."""

    stop_requested: bool = False
    lost: EventLogError | None = None
    # cancelled only while waiting on the model: an append in flight brings its own answer
    reading: bool = False


async def produce(
    log: EventLog,
    lease: Lease,
    stream: AnyEventStream,
    *,
    exclude: frozenset[str] = frozenset({"chunk"}),
) -> Outcome:
    """Append each event of ``stream`` to the log, then exactly one terminal entry; returns its outcome.

    Events are written in batches: those made while one write is in flight go together in the
    next, one round trip, so a fast model costs less than a round trip per event and a slow one
    is written event by event as it comes. The terminal entry is ``done``; ``error`` when the
    stream failed (its ``error`` event first, then the failure with the partial completion);
    ``aborted`` with the partial completion and usage when a stop was requested (seen at the next
    write, or by the lease renewal while the model is quiet) or when the task is cancelled
    (``shutdown``). The stream is closed in every case, which closes its upstream HTTP response.

    Raises:
        LeaseLost: the lease was lost (expired, or the stream was removed): nothing more is written.
        EventLogUnavailable: the log cannot be reached; the terminal entry could not be written, and
            readers see the log's failure themselves.
    """
    source = events_of(stream)
    watch = _Watch()
    task = asyncio.current_task()
    assert task is not None  # noqa: S101 - called from a coroutine
    writer = _BatchWriter(log, lease, watch, task)
    renewal = asyncio.ensure_future(_renew(log, lease, task, watch))
    reported: list[ErrorReported] = []
    try:
        try:
            await _read_events(source, writer, watch, reported, exclude)
            await writer.close()
        except asyncio.CancelledError:
            watch.reading = False
            if watch.lost is not None:
                task.uncancel()
                raise watch.lost from None
            if not watch.stop_requested:
                # the relay is shutting down: readers learn it now rather than at the lease's end
                await writer.abandon()
                await _finish_quietly(log, lease, aborted_payload("shutdown", completion=_snapshot(stream)))
                raise
            task.uncancel()
            await writer.close()
        except EventLogError:
            raise
        except Exception as error:  # noqa: BLE001 - the failure is written to the log, not raised
            await writer.close()
            last = reported[-1] if reported else None
            if last is None or last.exception is not error:
                last = ErrorReported(code="relay_upstream_error", message=str(error) or type(error).__name__)
                await log.append(lease, last.type, encode_compact(last))
            payload = {"outcome": "error", **failure_payload(error, last)}
            # an error from outside deltaflow (the source's own) carries no completion: the stream has it
            payload["completion"] = payload["completion"] or _snapshot(stream)
            await log.finish(lease, json.dumps(payload, separators=(",", ":")))
            return "error"
        if watch.stop_requested:
            completion = _snapshot(stream)
            await log.finish(lease, aborted_payload("stopped", completion=completion, events=writer.appended))
            return "aborted"
        await log.finish(lease, DONE_PAYLOAD)
        return "done"
    finally:
        renewal.cancel()
        await asyncio.gather(renewal, return_exceptions=True)
        await writer.abandon()
        await source.close()


async def _read_events(
    source: EventSource,
    writer: _BatchWriter,
    watch: _Watch,
    reported: list[ErrorReported],
    exclude: frozenset[str],
) -> None:
    """Hand the stream's events to the writer until the stream ends or a stop is requested."""
    while not watch.stop_requested:
        watch.reading = True
        event = await source.next()
        watch.reading = False
        if event is None:
            return
        if type(event) is ErrorReported:
            reported.append(event)
        if event.type not in exclude:
            writer.put(event.type, encode_compact(event))
            if writer.backlog >= _MAX_BATCH:
                # a source that never waits (buffered chunks) would starve the writer: let it take these
                await asyncio.sleep(0)


class _BatchWriter:
    """One task appending what the producer hands it: all that queued during a write goes in the next."""

    def __init__(self, log: EventLog, lease: Lease, watch: _Watch, producer: asyncio.Task[Any]) -> None:
        self._log = log
        self._lease = lease
        self._watch = watch
        self._producer = producer
        self._pending: list[tuple[str, str]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self.appended = 0
        self._task = asyncio.ensure_future(self._run())

    @property
    def backlog(self) -> int:
        """Entries queued and not yet taken by a write."""
        return len(self._pending)

    def put(self, kind: str, data: str) -> None:
        """Queue one entry; raises the writer's failure (``LeaseLost``, ``EventLogUnavailable``), if any."""
        if self._task.done():
            self._task.result()
        self._pending.append((kind, data))
        self._wake.set()

    async def close(self) -> None:
        """Return once everything queued is written; raises the writer's failure."""
        self._closing = True
        self._wake.set()
        await self._task

    async def abandon(self) -> None:
        """Stop writing, whatever is queued (the stream is ending otherwise)."""
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self._pending:
                batch, self._pending = self._pending, []
                result = await self._log.append_many(self._lease, batch)
                self.appended += len(batch)
                if result.stop_requested:
                    self._watch.stop_requested = True
                    if self._watch.reading:
                        self._producer.cancel()
            if self._pending:
                self._wake.set()  # more came during the write
            elif self._closing:
                return


async def _renew(log: EventLog, lease: Lease, producer: asyncio.Task[Any], watch: _Watch) -> None:
    """Renew the lease while the producer waits on its model; stop it on a stop request or a lost lease."""
    while True:
        await asyncio.sleep(log.lease_time / 3)
        try:
            stop = await log.renew(lease)
        except EventLogError as error:
            watch.lost = error
            if watch.reading:
                producer.cancel()
            return
        if stop:
            watch.stop_requested = True
            if watch.reading:
                producer.cancel()
            return


async def _finish_quietly(log: EventLog, lease: Lease, payload: str) -> None:
    # fenced or unreachable: a reader reaps the stream when the lease runs out
    with contextlib.suppress(EventLogError):
        await log.finish(lease, payload)


def _snapshot(stream: AnyEventStream) -> dict[str, Any] | None:
    try:
        snapshot = stream.current_completion_snapshot
    except DeltaflowError:  # no chunk had arrived
        return None
    dumped: dict[str, Any] = snapshot.model_dump(mode="json")
    return dumped
