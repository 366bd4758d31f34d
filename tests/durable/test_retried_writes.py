"""Writes redis-py retries after their reply was lost are applied once, on the shipped defaults.

``RedisEventLog.from_url`` retries a command whose connection failed (a network blip, a proxy's reset).
When Redis ran the write and only its reply was lost, the retry runs it again: each write script knows
its own earlier run (the claim by its token, an append by the entries its producer wrote before) and
answers as the first run did. A proxy on 127.0.0.1 between the log and a real redis-server drops
the reply of the write it is armed for and closes the connection, as a reset after the request does.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import uuid
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from deltaflow.durable import RedisEventLog
from deltaflow.durable._follow import Gap, follow
from deltaflow.durable._log import parse_entry_id
from deltaflow.errors import EventLogUnavailable, LeaseConflict, LeaseLost
from tests.durable.redis_server import RedisServer


class ReplyDroppingProxy:
    """A TCP proxy to Redis that, once armed, swallows the next reply and resets that connection."""

    def __init__(self, port: int) -> None:
        self._port = port
        self._armed = False
        self.connections = 0
        self.dropped = 0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"redis://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/0"

    def arm(self) -> None:
        self._armed = True

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)

    async def close(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self._port)

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, replies: bool) -> None:
            while data := await reader.read(65536):
                if replies and self._armed:
                    self._armed = False
                    self.dropped += 1
                    break  # Redis ran the command; its reply never reaches the client
                writer.write(data)
                await writer.drain()

        tasks = [
            asyncio.ensure_future(pump(client_reader, upstream_writer, replies=False)),
            asyncio.ensure_future(pump(upstream_reader, client_writer, replies=True)),
        ]
        with contextlib.suppress(ConnectionError):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for writer in (client_writer, upstream_writer):
            writer.transport.abort()


@pytest.fixture
async def proxy(redis_server: RedisServer) -> AsyncIterator[ReplyDroppingProxy]:
    running = ReplyDroppingProxy(redis_server.port)
    await running.start()
    yield running
    await running.close()


@pytest.fixture
async def log(proxy: ReplyDroppingProxy) -> AsyncIterator[RedisEventLog]:
    made = RedisEventLog.from_url(proxy.url, prefix=f"test:{uuid.uuid4().hex[:12]}:")
    yield made
    await made.aclose()


@pytest.fixture
async def redis_direct(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    yield client
    await client.aclose()


async def test_a_retried_claim_gets_its_own_lease_not_a_conflict(
    proxy: ReplyDroppingProxy, log: RedisEventLog
) -> None:
    """The claim ran, its reply was lost, redis-py retried: the retry is the same lease, not 'in use'."""
    await log.append(await log.claim("warm"), "x", "{}")  # the connection is open before arming
    proxy.arm()
    lease = await log.claim("s1")
    assert proxy.dropped == 1
    assert (await log.append(lease, "content.delta", "{}")).entry_id == f"{lease.generation}-1"
    with pytest.raises(LeaseConflict):
        await log.claim("s1")  # another producer still conflicts


async def test_a_retried_append_is_written_once(
    proxy: ReplyDroppingProxy, log: RedisEventLog, redis_direct: aioredis.Redis
) -> None:
    """An append whose reply was lost, retried, gives the id of its one entry; the next append follows it."""
    lease = await log.claim("s1")
    await log.append(lease, "content.delta", json.dumps({"n": 0}))
    connections = proxy.connections
    proxy.arm()
    retried = await log.append(lease, "content.delta", json.dumps({"n": 1}))
    assert proxy.dropped == 1
    assert proxy.connections > connections  # redis-py reconnected and sent the write again
    batch = await log.append_many(lease, [("content.delta", json.dumps({"n": n})) for n in (2, 3)])
    assert (retried.entry_id, batch.entry_id) == (f"{lease.generation}-2", f"{lease.generation}-4")
    entries = await redis_direct.xrange(log._keys("s1")[2])
    assert [json.loads(fields["d"])["n"] for _, fields in entries] == [0, 1, 2, 3]
    info = await log.info("s1")
    assert info is not None
    assert info.sequence == 4


async def test_a_retried_batch_and_a_retried_finish_are_written_once(
    proxy: ReplyDroppingProxy, log: RedisEventLog, redis_direct: aioredis.Redis
) -> None:
    """A batch of three and the terminal entry, each retried once: four entries, the last one terminal."""
    lease = await log.claim("s1")
    proxy.arm()
    batch = await log.append_many(lease, [("content.delta", json.dumps({"n": n})) for n in range(3)])
    proxy.arm()
    terminal = await log.finish(lease, '{"ok":true,"outcome":"done"}')
    assert proxy.dropped == 2
    assert (batch.entry_id, terminal) == (f"{lease.generation}-3", f"{lease.generation}-4")
    entries = await redis_direct.xrange(log._keys("s1")[2])
    assert [fields["k"] for _, fields in entries] == ["content.delta"] * 3 + ["done"]
    with pytest.raises(LeaseLost):
        await log.append(lease, "content.delta", "{}")  # finished: nothing is written after the end


async def test_entries_lost_by_the_log_stop_the_producer(
    log: RedisEventLog, redis_direct: aioredis.Redis
) -> None:
    """Fewer entries in Redis than the producer wrote (a failover to a replica without the last ones):
    the next append is ``EventLogUnavailable``, never a stream with a hole readers cannot see. Once the
    lease runs out, a reader who saw the lost entries and one who did not both get ``aborted``
    (``producer_lost``), the second after a gap of the two lost entries."""
    meta, lease_key, log_key = log._keys("s1")
    lease = await log.claim("s1")
    ids = [(await log.append(lease, "content.delta", json.dumps({"n": n}))).entry_id for n in range(3)]
    # what a replica two writes behind holds
    await redis_direct.hset(meta, "sequence", 1)
    await redis_direct.xdel(log_key, *ids[1:])
    with pytest.raises(EventLogUnavailable, match="has 1 of the 3 written"):
        await log.append(lease, "content.delta", "{}")
    await redis_direct.delete(lease_key)  # the stopped producer's lease runs out
    saw_all = [entry async for entry in follow(log, "s1", parse_entry_id(ids[2], stream_id="s1"), idle=0.05)]
    saw_one = [entry async for entry in follow(log, "s1", parse_entry_id(ids[0], stream_id="s1"), idle=0.05)]
    (terminal,) = saw_all
    assert terminal.terminal
    assert terminal.id == f"{lease.generation}-4"
    assert json.loads(terminal.data)["reason"] == "producer_lost"
    gap, last = saw_one
    assert isinstance(gap, Gap)
    assert gap.missing == 2
    assert last == terminal


async def test_a_reaped_stream_is_not_taken_for_a_retry(log: RedisEventLog) -> None:
    """A producer presumed lost and reaped by another instance (one terminal entry, as many as the next
    append) is fenced, not answered as if its append had been written."""
    lease = await log.claim("s1")
    await log.append(lease, "content.delta", "{}")
    await log._client.delete(*log._keys("s1")[1:2])  # the lease expired
    assert await log.reap("s1", lease.generation, '{"ok":false}') == "reaped"
    with pytest.raises(LeaseLost):
        await log.append(lease, "content.delta", "{}")


async def test_writes_in_flight_together_on_one_lease_go_one_at_a_time(
    proxy: ReplyDroppingProxy, log: RedisEventLog, redis_direct: aioredis.Redis
) -> None:
    """Three appends started at once, the first one's reply lost and retried: each entry once, in the order
    they were started, and the next append is written (not taken for a retry of an earlier one)."""
    lease = await log.claim("s1")
    await log.append(lease, "content.delta", json.dumps({"n": 0}))
    proxy.arm()
    results = await asyncio.gather(
        *(log.append(lease, "content.delta", json.dumps({"n": n})) for n in (1, 2, 3))
    )
    assert proxy.dropped == 1
    assert [result.entry_id for result in results] == [f"{lease.generation}-{n}" for n in (2, 3, 4)]
    after = await log.append(lease, "content.delta", json.dumps({"n": 4}))
    assert after.entry_id == f"{lease.generation}-5"
    entries = await redis_direct.xrange(log._keys("s1")[2])
    assert [json.loads(fields["d"])["n"] for _, fields in entries] == [0, 1, 2, 3, 4]


async def test_what_the_log_keeps_per_lease_goes_with_the_lease(log: RedisEventLog) -> None:
    """The per-lease write state lives as long as the producer holds its lease, not as long as the log."""
    leases = [await log.claim(f"idle-{n}") for n in range(50)]
    await log.append(leases[0], "content.delta", "{}")
    assert len(log._lease_writes) == 50
    del leases
    gc.collect()
    assert len(log._lease_writes) == 0
