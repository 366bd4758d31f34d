"""A sync or async deltaflow stream read one event at a time from the event loop, as the relays do.

Any stream of deltaflow's events will do: a ``ChatStream``, a ``deltaflow.responses`` stream, a user's
own. What is not a deltaflow event (the openai events a Responses stream yields beside deltaflow's, for
its drop-in) is left out: relays and logs carry deltaflow's vocabulary, which says the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any, Protocol, TypeAlias

from deltaflow.events import BaseEvent

__all__ = ["AnyEventStream", "AsyncEventStream", "EventSource", "SyncEventStream", "events_of"]


class SyncEventStream(Protocol):
    """What a relay reads in a worker thread: ``ChatStream``, ``deltaflow.responses.ResponseStream``."""

    def __iter__(self) -> Iterator[Any]: ...

    @property
    def current_completion_snapshot(self) -> Any: ...

    def close(self) -> None: ...


class AsyncEventStream(Protocol):
    """What a relay reads on its loop: ``AsyncChatStream``, ``deltaflow.responses.AsyncResponseStream``."""

    def __aiter__(self) -> AsyncIterator[Any]: ...

    @property
    def current_completion_snapshot(self) -> Any: ...

    async def close(self) -> None: ...


AnyEventStream: TypeAlias = SyncEventStream | AsyncEventStream


class EventSource(Protocol):
    """A stream's events, awaited one at a time, whatever the stream's kind."""

    async def next(self) -> BaseEvent | None: ...

    async def close(self) -> None: ...


class AsyncEvents:
    """An async stream's events."""

    def __init__(self, stream: AsyncEventStream) -> None:
        self._stream = stream
        self._events = aiter(stream)

    async def next(self) -> BaseEvent | None:
        async for event in self._events:
            if isinstance(event, BaseEvent):
                return event
        return None

    async def close(self) -> None:
        await self._stream.close()


class ThreadEvents:
    """A sync stream read one event at a time in a worker thread, off the event loop."""

    def __init__(self, stream: SyncEventStream) -> None:
        self._stream = stream
        self._events = iter(stream)
        self._pending: asyncio.Future[BaseEvent | None] | None = None

    async def next(self) -> BaseEvent | None:
        self._pending = asyncio.ensure_future(asyncio.to_thread(_next_event, self._events))
        # shielded: a cancelled relay must not abandon a read the thread is still doing
        return await asyncio.shield(self._pending)

    async def close(self) -> None:
        pending = self._pending
        if pending is not None and not pending.done():
            # the stream's generator is busy in that thread until its read returns; closing it
            # meanwhile would fail with "generator already executing"
            await asyncio.wait([pending])
        if pending is not None and not pending.cancelled():
            pending.exception()  # retrieved here, so asyncio does not log it as never retrieved
        await asyncio.to_thread(self._stream.close)


def _next_event(events: Iterator[Any]) -> BaseEvent | None:
    return next((event for event in events if isinstance(event, BaseEvent)), None)


def events_of(stream: AnyEventStream) -> EventSource:
    """The event source for a stream: read in place when async, in a worker thread when sync."""
    return AsyncEvents(stream) if hasattr(stream, "__aiter__") else ThreadEvents(stream)  # type: ignore[arg-type]
