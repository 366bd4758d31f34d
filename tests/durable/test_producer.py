"""produce(): one stream into the log, apart from any connection; every way it ends leaves one terminal entry."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

import deltaflow
from deltaflow.durable import EventLog, produce
from deltaflow.durable._follow import Idle, follow, start_position
from deltaflow.errors import LeaseLost
from deltaflow.replay import scripted_chunks

MakeLog = Callable[..., EventLog]


class Upstream:
    """Chunks of a scripted answer handed out one by one when the test says so; records being closed."""

    def __init__(self, content: str = "Hello there, durable world") -> None:
        self.chunks = scripted_chunks(content, chunk_size=3)
        self.released = asyncio.Semaphore(0)
        self.closed = asyncio.Event()

    def release(self, count: int = 1) -> None:
        for _ in range(count):
            self.released.release()

    async def _generate(self) -> AsyncIterator[dict[str, Any]]:
        try:
            for chunk in self.chunks:
                await self.released.acquire()
                yield chunk
        finally:
            self.closed.set()

    def stream(self) -> deltaflow.AsyncChatStream[Any]:
        return deltaflow.AsyncChatStream(self._generate())


async def until_logged(log: EventLog, stream_id: str, count: int) -> None:
    """Wait (a blocking read of the log) until the stream has ``count`` entries."""
    position = await start_position(log, stream_id, None)
    async with contextlib.aclosing(follow(log, stream_id, position, idle=0.05)) as reader:
        async for item in reader:
            count -= not isinstance(item, Idle)
            if count <= 0:
                return


async def entries(log: EventLog, stream_id: str) -> list[Any]:
    position = await start_position(log, stream_id, None)
    return [item async for item in follow(log, stream_id, position, idle=0.05) if not isinstance(item, Idle)]


async def test_a_whole_stream_ends_done(make_log: MakeLog) -> None:
    """Every event is logged in order, then one terminal entry `done`."""
    log = make_log()
    upstream = Upstream()
    upstream.release(len(upstream.chunks))
    assert await produce(log, await log.claim("p1"), upstream.stream()) == "done"
    logged = await entries(log, "p1")
    assert json.loads(logged[-1].data) == {"ok": True, "outcome": "done"}
    assert [entry.kind for entry in logged[:-1]][-1] == "completion.done"
    text = "".join(json.loads(entry.data)["delta"] for entry in logged if entry.kind == "content.delta")
    assert text == "Hello there, durable world"
    assert upstream.closed.is_set()


async def test_a_stop_request_reaches_a_producer_whose_model_is_thinking(make_log: MakeLog) -> None:
    """No event is coming; the lease renewal sees the stop, ends the stream aborted and closes the upstream."""
    log = make_log(lease_time=0.3)
    upstream = Upstream()
    upstream.release(5)
    running = asyncio.ensure_future(produce(log, await log.claim("p2"), upstream.stream()))
    await until_logged(log, "p2", 3)
    assert await log.request_stop("p2")
    assert await asyncio.wait_for(running, 10) == "aborted"
    assert upstream.closed.is_set()
    terminal = json.loads((await entries(log, "p2"))[-1].data)
    assert terminal["reason"] == "stopped"
    assert (
        terminal["completion"]["choices"][0]["message"]["content"] == "Hello there,"
    )  # the role chunk, then 4 pieces of 3


async def test_cancelling_the_producer_writes_aborted_shutdown(make_log: MakeLog) -> None:
    """A relay shutting down cancels its producers: readers get `aborted` (shutdown) at once."""
    log = make_log()
    upstream = Upstream()
    upstream.release(4)
    running = asyncio.ensure_future(produce(log, await log.claim("p3"), upstream.stream()))
    await until_logged(log, "p3", 2)
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    terminal = (await entries(log, "p3"))[-1]
    assert terminal.terminal
    assert json.loads(terminal.data)["reason"] == "shutdown"
    assert upstream.closed.is_set()


async def test_an_upstream_failure_ends_with_its_error_and_the_partial_completion(make_log: MakeLog) -> None:
    """A broken upstream: an `error` event, then the terminal `error` entry carrying what was received."""

    async def breaking() -> AsyncIterator[dict[str, Any]]:
        for chunk in scripted_chunks("partial answer", chunk_size=4)[:3]:
            yield chunk
        raise ConnectionResetError("upstream went away")

    log = make_log()
    assert await produce(log, await log.claim("p4"), deltaflow.AsyncChatStream(breaking())) == "error"
    logged = await entries(log, "p4")
    assert logged[-2].kind == "error"
    terminal = json.loads(logged[-1].data)
    assert terminal["outcome"] == "error"
    assert "upstream went away" in terminal["error"]["message"]
    assert terminal["completion"]["choices"][0]["message"]["content"] == "partial "


async def test_a_producer_that_lost_its_lease_stops_and_writes_nothing(make_log: MakeLog) -> None:
    """The stream is removed under a thinking producer: its renewal finds the lease gone; LeaseLost, upstream closed."""
    log = make_log(lease_time=0.3)
    upstream = Upstream()
    upstream.release(3)
    running = asyncio.ensure_future(produce(log, await log.claim("p5"), upstream.stream()))
    await until_logged(log, "p5", 1)
    await log.delete("p5")
    with pytest.raises(LeaseLost):
        await asyncio.wait_for(running, 10)
    assert upstream.closed.is_set()
    assert await log.info("p5") is None


async def test_a_sync_stream_is_produced_too(make_log: MakeLog) -> None:
    """A sync ChatStream is read in a worker thread and logged the same way."""
    log = make_log()
    stream = deltaflow.ChatStream(iter(scripted_chunks("sync answer", chunk_size=2)))
    assert await produce(log, await log.claim("p6"), stream) == "done"
    logged = await entries(log, "p6")
    text = "".join(json.loads(entry.data)["delta"] for entry in logged if entry.kind == "content.delta")
    assert text == "sync answer"
