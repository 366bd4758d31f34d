"""The live tail on a real redis-server, over real SSE: quiet streams, shared reads, no connection leak."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import redis
from starlette.applications import Starlette
from starlette.routing import Mount

import deltaflow
from deltaflow.durable import EventLog, MemoryEventLog, RedisEventLog, durable_endpoint
from deltaflow.pipeline import iter_sse
from deltaflow.recipes import relay_events
from deltaflow.replay import ReplayServer, Scenario
from tests.durable.redis_server import RedisServer
from tests.recipes import MESSAGES, aclient
from tests.recipes.test_relay import AppServer

SCENARIOS = {
    # quiet for longer than the socket timeout, the blocking read and the keep-alive below
    "quiet": Scenario.scripted("after a long thought", ttft=2.5),
    "paced": Scenario.scripted("word " * 120, chunk_size=5, tokens_per_second=60),
    "storm": Scenario.scripted("word " * 25, chunk_size=5, tokens_per_second=15),
    "long": Scenario.scripted("word " * 20_000, chunk_size=5),
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[ReplayServer]:
    with ReplayServer(SCENARIOS) as server:
        yield server


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test's own, so its connection and command counts are this test's."""
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


def serve(upstream: ReplayServer, log: EventLog, **options: Any) -> AppServer:
    def make(body: dict[str, Any]) -> deltaflow.AsyncChatStream[Any]:
        return deltaflow.astream(aclient(upstream), model=body["model"], messages=MESSAGES)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await log.aclose()  # on the server's loop, where its connections live

    endpoint = durable_endpoint(make, log, **options)
    return AppServer(Starlette(routes=[Mount("/chat", app=endpoint)], lifespan=lifespan), lifespan="on")


def small_send_buffers(server: AppServer) -> AppServer:
    """Connections accepted with a small kernel send buffer (not autotuned): a client not reading blocks
    the relay's writes after some 100 KB, not megabytes."""
    server._sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    return server


def start(url: str, model: str) -> str:
    started = httpx2.post(url + "/chat/", json={"model": model}, headers={"accept": "application/json"})
    assert started.status_code == 201, started.text
    return url + started.json()["url"]


class Counter:
    """The Redis server's view of its connected clients."""

    def __init__(self, server: RedisServer) -> None:
        self._client = redis.Redis(port=server.port, decode_responses=True)

    def clients(self) -> int:
        return int(self._client.info("clients")["connected_clients"]) - 1  # this counter's own

    def peak_while(self, threads: list[threading.Thread]) -> int:
        """Run the threads to their end; the most clients connected meanwhile (sampled every 50 ms)."""
        peak = 0
        for thread in threads:
            thread.start()
        while any(thread.is_alive() for thread in threads):
            peak = max(peak, self.clients())
            time.sleep(0.05)
        return peak


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_stream_quiet_longer_than_every_timeout_gets_keep_alives_not_an_error(
    upstream: ReplayServer, own_redis: RedisServer, backend: str
) -> None:
    """The model is silent for 2.5 s; the socket timeout is 0.4 s, the blocking read 0.2 s, the keep-alive 1 s,
    the lease 3 s: the reader gets keep-alives, then the answer and `done`, never a log_error."""
    log: EventLog = (
        MemoryEventLog(lease_time=3)
        if backend == "memory"
        else RedisEventLog.from_url(own_redis.url, socket_timeout=0.4, lease_time=3)
    )
    with serve(upstream, log, keep_alive=1.0) as server:
        url = start(server.url, "quiet")
        with httpx2.stream("GET", url, timeout=30) as response:
            body = b"".join(response.iter_bytes())
    frames = list(iter_sse([body]))
    assert [frame.event for frame in frames if frame.event == "log_error"] == []
    head = body.partition(b"id: ")[0]
    assert head.count(b": keep-alive\n\n") >= 2
    assert frames[-1].event == "done"
    assert json.loads(frames[-1].data) == {"ok": True, "outcome": "done"}
    assert b"after a long thought" in body.replace(b'"delta":"', b"").replace(b'"', b"")


def test_the_redis_log_sets_its_own_socket_timeout(own_redis: RedisServer) -> None:
    """from_url never leaves redis-py's default: the socket timeout is its own, and twice the blocking read."""
    log = RedisEventLog.from_url(own_redis.url)
    timeout = log._client.connection_pool.connection_kwargs["socket_timeout"]
    assert timeout == 10.0
    assert log._tail._block_ms == 5000
    asyncio.run(log.aclose())


def test_readers_of_a_stream_share_one_blocking_read(upstream: ReplayServer, own_redis: RedisServer) -> None:
    """60 readers follow one paced stream over SSE: each gets every event once; the instance's blocking
    reads stay about one per logged batch, and its Redis connections a small constant."""
    counter = Counter(own_redis)
    log = RedisEventLog.from_url(own_redis.url)
    readers = 60
    with serve(upstream, log, keep_alive=5) as server:
        url = start(server.url, "paced")
        results: list[list[Any]] = [[] for _ in range(readers)]

        def read(index: int) -> None:
            results[index] = [event.model_dump() for event in relay_events(url)]

        peak = counter.peak_while([threading.Thread(target=read, args=(n,)) for n in range(readers)])
        _, frames = raw(url)
    entries = [frame for frame in frames if frame.id]
    assert all(result == results[0] for result in results)
    assert results[0][-1]["type"] == "completion.done"
    text = "".join(event["delta"] for event in results[0] if event["type"] == "content.delta")
    assert text == "word " * 120
    # one blocking read per batch the producer wrote (at most one per entry), plus a few wake-ups
    assert log.tail_reads <= len(entries) + 10, (log.tail_reads, len(entries))
    # writes + readers' short commands + the tail, whatever the number of readers
    assert peak <= 20, peak


def raw(url: str, **headers: str) -> tuple[httpx2.Response, list[Any]]:
    with httpx2.stream("GET", url, headers=headers, timeout=30) as response:
        return response, list(iter_sse(response.iter_bytes())) if response.status_code == 200 else []


@pytest.mark.once  # some 300 HTTP requests: about 20 s on a shared machine
def test_readers_dropping_and_resuming_after_every_event_leak_no_connection(
    upstream: ReplayServer, own_redis: RedisServer
) -> None:
    """Ten readers, each leaving after every event and resuming by Last-Event-ID, for a whole stream: never a
    503, every event exactly once, and the Redis connections stay a small constant, during and after."""
    counter = Counter(own_redis)
    log = RedisEventLog.from_url(own_redis.url)
    statuses: list[int] = []
    with serve(upstream, log, keep_alive=5) as server:
        url = start(server.url, "storm")
        received: list[list[str]] = [[] for _ in range(10)]

        def storm(index: int) -> None:
            last: str | None = None
            while True:
                headers = {"last-event-id": last} if last else {}
                with httpx2.stream("GET", url, headers=headers, timeout=30) as response:
                    statuses.append(response.status_code)
                    if response.status_code != 200:
                        return
                    for frame in iter_sse(response.iter_bytes()):
                        if frame.id:
                            received[index].append(frame.id)
                            last = frame.id
                            break  # the network drops here
                    else:
                        return

        peak = counter.peak_while([threading.Thread(target=storm, args=(n,)) for n in range(10)])
        _, frames = raw(url)
        ids = [frame.id for frame in frames if frame.id]
        time.sleep(0.5)
        after = counter.clients()
        fresh = list(relay_events(server.url + "/chat/", json={"model": "paced"}))
    assert set(statuses) <= {200, 204}, statuses
    assert len(statuses) > 150
    assert all(reader == ids for reader in received)
    assert peak <= 20, peak
    assert after <= 20, after
    assert fresh[-1].type == "completion.done"
    assert counter.clients() == 0  # the log closed with the server


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_a_reader_that_stops_reading_is_cut_off_and_resumes(
    upstream: ReplayServer, own_redis: RedisServer, backend: str
) -> None:
    """A reader that reads nothing (a stalled client, a tiny receive buffer) is cut off after send_timeout;
    nothing piles up for it; resuming by Last-Event-ID from what it had gives exactly the rest."""
    log: EventLog = MemoryEventLog() if backend == "memory" else RedisEventLog.from_url(own_redis.url)
    with small_send_buffers(serve(upstream, log, send_timeout=0.5)) as server:
        url = start(server.url, "long")
        _, frames = raw(url)  # the whole stream, read normally
        host, port = server.url.removeprefix("http://").split(":")
        stalled = socket.socket()
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        stalled.connect((host, int(port)))
        path = url.removeprefix(server.url)
        stalled.sendall(f"GET {path} HTTP/1.1\r\nhost: {host}\r\n\r\n".encode())
        time.sleep(3)  # reads nothing, far longer than send_timeout
        stalled.settimeout(10)
        received = b""
        while chunk := stalled.recv(65536):  # the relay closed its side: this ends
            received += chunk
        stalled.close()
        ids = re.findall(rb"\nid: (\S+)\n", b"\n" + received)
        assert 0 < len(ids) < len(frames), len(ids)
        # the last id whose frame arrived whole, and everything after it
        complete = [
            entry_id.decode()
            for entry_id in ids
            if re.search(rb"id: " + entry_id + rb"\n[^\n]*\ndata: [^\n]*\n\n", received)
        ]
        _, rest = raw(url, **{"last-event-id": complete[-1]})
    assert [frame.id for frame in frames[: len(complete)]] == complete
    assert [frame.id for frame in rest] == [frame.id for frame in frames[len(complete) :]]
