"""Running one chat stream into the event log, apart from any HTTP connection."""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

from deltaflow.errors import DeltaflowError, EventLogError
from deltaflow.events import ErrorReported
from deltaflow.pipeline import AsyncChatStream, ChatStream
from deltaflow.recipes._relay import COMPACTED_FIELDS, _AsyncEvents, _EventSource, _failure, _ThreadEvents

from ._log import EventLog, Lease, Outcome, aborted_payload

__all__ = ["produce"]

DONE_PAYLOAD = '{"ok":true,"outcome":"done"}'
# running texts (snapshots) are rebuilt by readers from the deltas: the log stays linear in the answer
_LEFT_OUT = {kind: {field} for kind, (field, _) in COMPACTED_FIELDS.items()}


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
    stream: ChatStream[Any] | AsyncChatStream[Any],
    *,
    exclude: frozenset[str] = frozenset({"chunk"}),
) -> Outcome:
    """Append each event of ``stream`` to the log, then exactly one terminal entry; returns its outcome.

    The terminal entry is ``done``; ``error`` when the stream failed (its ``error`` event first, then
    the failure with the partial completion); ``aborted`` with the partial completion and usage when
    a stop was requested (seen at the next append, or by the lease renewal while the model is quiet)
    or when the task is cancelled (``shutdown``). The stream is closed in every case, which closes
    its upstream HTTP response.

    Raises:
        LeaseLost: the lease was lost (expired, or the stream was removed): nothing more is written.
        EventLogUnavailable: the log cannot be reached; the terminal entry could not be written, and
            readers see the log's failure themselves.
    """
    source: _EventSource = (
        _AsyncEvents(stream) if isinstance(stream, AsyncChatStream) else _ThreadEvents(stream)
    )
    watch = _Watch()
    task = asyncio.current_task()
    assert task is not None  # noqa: S101 - called from a coroutine
    renewal = asyncio.ensure_future(_renew(log, lease, task, watch))
    progress = _Progress()
    try:
        try:
            await _append_events(
                source, log=log, lease=lease, watch=watch, progress=progress, exclude=exclude
            )
        except asyncio.CancelledError:
            watch.reading = False
            if watch.lost is not None:
                task.uncancel()
                raise watch.lost from None
            if not watch.stop_requested:
                # the relay is shutting down: readers learn it now rather than at the lease's end
                await _finish_quietly(log, lease, aborted_payload("shutdown", completion=_snapshot(stream)))
                raise
            task.uncancel()
        except EventLogError:
            raise
        except Exception as error:  # noqa: BLE001 - the failure is written to the log, not raised
            reported = progress.reported
            if reported is None or reported.exception is not error:
                reported = ErrorReported(
                    code="relay_upstream_error", message=str(error) or type(error).__name__
                )
                await log.append(lease, reported.type, reported.model_dump_json())
            payload = {"outcome": "error", **_failure(error, reported)}
            await log.finish(lease, json.dumps(payload, separators=(",", ":")))
            return "error"
        if watch.stop_requested:
            completion = _snapshot(stream)
            await log.finish(
                lease, aborted_payload("stopped", completion=completion, events=progress.appended)
            )
            return "aborted"
        await log.finish(lease, DONE_PAYLOAD)
        return "done"
    finally:
        renewal.cancel()
        await asyncio.gather(renewal, return_exceptions=True)
        await source.close()


@dataclass(slots=True)
class _Progress:
    appended: int = 0
    reported: ErrorReported | None = None


async def _append_events(
    source: _EventSource,
    *,
    log: EventLog,
    lease: Lease,
    watch: _Watch,
    progress: _Progress,
    exclude: frozenset[str],
) -> None:
    """Append the stream's events until it ends or a stop is requested."""
    while True:
        watch.reading = True
        event = await source.next()
        watch.reading = False
        if event is None:
            return
        if type(event) is ErrorReported:
            progress.reported = event
        if event.type in exclude:
            continue
        left_out = _LEFT_OUT.get(event.type)
        result = await log.append(lease, event.type, event.model_dump_json(fallback=repr, exclude=left_out))
        progress.appended += 1
        if result.stop_requested or watch.stop_requested:
            watch.stop_requested = True
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


def _snapshot(stream: ChatStream[Any] | AsyncChatStream[Any]) -> dict[str, Any] | None:
    try:
        return stream.current_completion_snapshot.model_dump(mode="json")
    except DeltaflowError:  # no chunk had arrived
        return None
