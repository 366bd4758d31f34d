"""A sync or async deltaflow stream read one event at a time from the event loop, as the relays do."""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from deltaflow.events import BaseEvent, Event
from deltaflow.pipeline import AsyncChatStream, ChatStream


class EventSource(Protocol):
    """A stream's events, awaited one at a time, whatever the stream's kind."""

    async def next(self) -> BaseEvent | None: ...

    async def close(self) -> None: ...


class AsyncEvents:
    """An async stream's events."""

    def __init__(self, stream: AsyncChatStream[Any]) -> None:
        self._stream = stream
        self._events = aiter(stream)

    async def next(self) -> BaseEvent | None:
        return await anext(self._events, None)

    async def close(self) -> None:
        await self._stream.close()


class ThreadEvents:
    """A sync stream read one event at a time in a worker thread, off the event loop."""

    def __init__(self, stream: ChatStream[Any]) -> None:
        self._stream = stream
        self._events = iter(stream)
        self._pending: asyncio.Future[Event | None] | None = None

    async def next(self) -> Event | None:
        self._pending = asyncio.ensure_future(asyncio.to_thread(next, self._events, None))
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


def events_of(stream: ChatStream[Any] | AsyncChatStream[Any]) -> EventSource:
    """The event source for a stream: read in place when async, in a worker thread when sync."""
    return AsyncEvents(stream) if isinstance(stream, AsyncChatStream) else ThreadEvents(stream)
