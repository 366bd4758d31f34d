"""A stream abandoned before its end still tells its subscribed observers: ``close()``, exactly once."""

from __future__ import annotations

import asyncio
import gc
import sys
from collections.abc import AsyncIterator
from typing import Any

import pytest

from deltaflow import AsyncChatStream, ChatStream
from deltaflow.events import BaseEvent
from deltaflow.sinks import Sink
from tests.chunks import text_stream


class Closings(Sink):
    """A sink that counts how its stream ended."""

    def __init__(self) -> None:
        self.events = 0
        self.closed = 0
        self.ended = 0
        self.handling: BaseException | None = None

    def on_next(self, value: BaseEvent) -> None:
        self.events += 1

    def on_completed(self) -> None:
        self.ended += 1

    def on_error(self, error: Exception) -> None:
        self.ended += 1

    def close(self) -> None:
        self.closed += 1
        self.handling = sys.exc_info()[1]


def test_garbage_collected_unfinished() -> None:
    """Read part way, never closed, dropped: the observer is closed when the stream is collected."""
    sink = Closings()
    stream: Any = ChatStream(text_stream(*"abcdef")).subscribe(sink)
    next(stream)
    next(stream)
    del stream
    gc.collect()
    assert (sink.closed, sink.ended) == (1, 0)


def test_closed_after_the_end_is_not_closed_again() -> None:
    """A stream that completed ends its observer once; a later close() adds nothing."""
    sink = Closings()
    stream = ChatStream(text_stream("a")).subscribe(sink)
    stream.until_done()
    stream.close()
    del stream
    gc.collect()
    assert (sink.closed, sink.ended) == (0, 1)


async def test_task_cancelled_while_waiting_for_a_chunk() -> None:
    """Cancelled in the middle of a read, no ``async with``: the observer is closed once."""
    sink = Closings()
    first_chunk = asyncio.Event()

    async def chunks() -> AsyncIterator[Any]:
        yield text_stream("a")[0]
        first_chunk.set()
        await asyncio.Event().wait()  # the provider goes quiet

    stream = AsyncChatStream(chunks()).subscribe(sink)

    async def consume() -> None:
        async for _ in stream:
            pass

    task = asyncio.ensure_future(consume())
    await asyncio.wait_for(first_chunk.wait(), 5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (sink.closed, sink.ended) == (1, 0)
    await stream.close()
    assert sink.closed == 1


class ConsumerError(Exception):
    pass


def test_closed_where_the_consumers_exception_is_handled() -> None:
    """Leaving ``with`` by an exception closes observers while that exception is being handled."""
    sink = Closings()
    with pytest.raises(ConsumerError), ChatStream(text_stream(*"abc")).subscribe(sink) as stream:
        next(stream)
        raise ConsumerError
    assert sink.closed == 1
    assert isinstance(sink.handling, ConsumerError)


async def test_async_closed_where_the_consumers_exception_is_handled() -> None:
    """The async twin: ``async with`` left by an exception, the observer sees it being handled."""

    async def chunks() -> AsyncIterator[Any]:
        for item in text_stream(*"abc"):
            yield item

    sink = Closings()
    with pytest.raises(ConsumerError):
        async with AsyncChatStream(chunks()).subscribe(sink) as stream:
            await anext(stream)
            raise ConsumerError
    assert sink.closed == 1
    assert isinstance(sink.handling, ConsumerError)


@pytest.mark.parametrize("transport", ["fast", "openai"])
def test_an_abandoned_async_stream_collected_by_gc_closes_its_response(transport: str) -> None:
    """Over real HTTP: the response is closed, and nothing logs a never-retrieved task exception."""
    import openai  # noqa: PLC0415

    import deltaflow  # noqa: PLC0415
    from deltaflow.replay import ReplayServer, Scenario  # noqa: PLC0415

    reported: list[dict[str, Any]] = []

    async def abandon(base_url: str) -> None:
        asyncio.get_running_loop().set_exception_handler(lambda loop, context: reported.append(context))
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
        stream = deltaflow.astream(
            client, model="scripted", messages=[{"role": "user", "content": "hi"}], transport=transport
        )
        async for _ in stream:
            break
        del stream
        gc.collect()
        for _ in range(20):  # the finalizers' tasks run on the loop
            await asyncio.sleep(0.01)
        gc.collect()
        await client.close()

    scenarios = {"scripted": Scenario.scripted("Hello there, world " * 20, tokens_per_second=200)}
    with ReplayServer(scenarios) as server:
        asyncio.run(abandon(server.base_url))
        gc.collect()
        record = server.requests[-1]
        assert record.wait(timeout=10)  # the response ended: the stream let go of it

    assert record.disconnected  # before the answer's end: the collected stream closed it
    assert [context.get("message") for context in reported] == []


@pytest.mark.parametrize("transport", ["fast", "openai"])
def test_an_abandoned_async_stream_collected_on_another_thread_closes_on_its_own_loop(transport: str) -> None:
    """A server's loop runs in its own thread; a collection on another thread finds its stream.

    The close runs on the stream's loop, which still runs: the response is closed, the loop reports
    nothing, and no generator is finalised half-way (an unraisable exception fails the test).
    """
    import threading  # noqa: PLC0415

    import openai  # noqa: PLC0415

    import deltaflow  # noqa: PLC0415
    from deltaflow.replay import ReplayServer, Scenario  # noqa: PLC0415

    reported: list[dict[str, Any]] = []
    loop = asyncio.new_event_loop()
    loop.set_exception_handler(lambda loop, context: reported.append(context))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start(base_url: str) -> openai.AsyncOpenAI:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
        stream = deltaflow.astream(
            client, model="scripted", messages=[{"role": "user", "content": "hi"}], transport=transport
        )
        stream.cycle = stream  # type: ignore[attr-defined]  # only the cyclic collector frees it
        async for _ in stream:
            break
        return client

    scenarios = {"scripted": Scenario.scripted("Hello there, world " * 20, tokens_per_second=200)}
    gc.disable()  # the collection below, on this thread, is the one that finds the stream
    try:
        with ReplayServer(scenarios) as server:
            client = asyncio.run_coroutine_threadsafe(start(server.base_url), loop).result(10)
            gc.collect()
            record = server.requests[-1]
            assert record.wait(timeout=10)  # the response ended: the stream let go of it
            assert record.disconnected  # before the answer's end: the collected stream closed it
            asyncio.run_coroutine_threadsafe(client.close(), loop).result(10)
    finally:
        gc.enable()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
    gc.collect()
    assert [context.get("message") for context in reported] == []
