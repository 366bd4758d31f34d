"""Durable streams: throughput, Redis round trips, added latency and memory, against the plain relay.

Three relays run as separate processes on loopback, each streaming the same synthetic answer built
in memory (no upstream HTTP, so the relay's own cost shows): the plain ``relay_endpoint``, and
``durable_endpoint`` on a ``MemoryEventLog`` and on a ``RedisEventLog`` (a real ``redis-server``
started here). The client reads raw SSE over HTTP in this process.

- Throughput: one unpaced stream of ``EVENTS`` content deltas, POST to ``done``: events per second;
  and the replay of a finished stream of that length from the log (a GET, as after a reconnect).
- Redis round trips per event: ``INFO commandstats`` before and after one stream, over its events
  (the producer's ``EVALSHA`` per event, the reader's ``XREAD``s, the lease renewals).
- Latency: events paced every ``INTERVAL`` s, each carrying the ``perf_counter_ns`` (CLOCK_MONOTONIC,
  the same clock in every process) of the moment its chunk was made; the reader takes the difference
  on arrival. p50/p99 per relay (the median of three interleaved runs' percentiles); "added" is the
  durable relay's percentile minus the plain relay's.
- Memory per retained stream: ``MEMORY USAGE`` of a finished stream's Redis keys, and ``tracemalloc``
  around a stream produced into a ``MemoryEventLog`` in this process.

Run: ``python -m benchmarks.bench_durable``
"""

from __future__ import annotations

import asyncio
import gc
import json
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import redis

import deltaflow
from benchmarks._common import write_results
from deltaflow.pipeline import iter_sse

EVENTS = 5_000
LATENCY_EVENTS = 1_000
INTERVAL = 0.004
LATENCY_RUNS = 3
RETAINED_EVENTS = 1_000
RELAYS = ("plain", "memory", "redis")
# besides the content deltas: the role chunk's empty delta, content.done, choice.done, usage,
# completion.done and the terminal entry
EXTRA_FRAMES = 6


def synthetic_chunks(count: int, interval: float, delay: float = 0.0) -> AsyncIterator[dict[str, Any]]:
    """A chat answer of ``count`` content chunks, each carrying the time it was made; paced when asked,
    after ``delay`` seconds of silence (time for readers to connect)."""

    async def chunks() -> AsyncIterator[dict[str, Any]]:
        if delay:
            await asyncio.sleep(delay)
        base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "bench"}

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {
                **base,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
            }

        yield chunk({"role": "assistant", "content": ""})
        for _ in range(count):
            if interval:
                await asyncio.sleep(interval)
            yield chunk({"content": f"{time.perf_counter_ns()} "})
        yield chunk({}, "stop")
        usage = {"prompt_tokens": 8, "completion_tokens": count, "total_tokens": 8 + count}
        yield {**base, "choices": [], "usage": usage}

    return chunks()


def serve(kind: str, port: int, redis_url: str) -> None:
    """The relay process: ``python -m benchmarks.bench_durable serve <kind> <port> <redis url>``."""
    import uvicorn  # noqa: PLC0415
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.routing import Mount, Route  # noqa: PLC0415

    from deltaflow.durable import MemoryEventLog, RedisEventLog, durable_endpoint  # noqa: PLC0415
    from deltaflow.recipes import relay_endpoint  # noqa: PLC0415

    def make_stream(body: dict[str, Any]) -> deltaflow.AsyncChatStream[Any]:
        chunks = synthetic_chunks(int(body["events"]), float(body["interval"]), float(body.get("delay", 0)))
        return deltaflow.AsyncChatStream(chunks)

    if kind == "plain":
        route: Any = Route("/relay", relay_endpoint(make_stream), methods=["POST"])
    else:
        # the shipped defaults; "replicated" and "cluster" rows pass their own URL
        durability = "replicated" if kind == "replicated" else "acknowledged"
        log: Any = (
            MemoryEventLog()
            if kind == "memory"
            else RedisEventLog.from_url(redis_url, prefix="bench:", durability=durability)
        )
        route = Mount("/relay", app=durable_endpoint(make_stream, log))
    uvicorn.run(Starlette(routes=[route]), host="127.0.0.1", port=port, log_level="warning")


@contextmanager
def relays(redis_url: str) -> Iterator[dict[str, str]]:
    from tests.durable.redis_server import free_port  # noqa: PLC0415

    processes, urls = [], {}
    try:
        for kind in RELAYS:
            port = free_port()
            command = [sys.executable, "-m", "benchmarks.bench_durable", "serve", kind, str(port), redis_url]
            processes.append(subprocess.Popen(command))
            urls[kind] = f"http://127.0.0.1:{port}/relay" + ("" if kind == "plain" else "/")
        for url in urls.values():
            wait_listening(url.rstrip("/") + "/x")
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(10)


def wait_listening(url: str, timeout: float = 30) -> None:
    """Return once a GET of ``url`` gets any answer (the relay process is up)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            httpx2.get(url, timeout=1)
            return
        except httpx2.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def read_stream(url: str, events: int, interval: float) -> tuple[float, list[float], int]:
    """POST one stream and read it to the end: seconds, per-event latencies (ms), content deltas read.

    Unpaced (a throughput run), events are only counted: parsing their JSON would time the client.
    """
    latencies: list[float] = []
    deltas = 0
    start = time.perf_counter()
    with httpx2.stream("POST", url, json={"events": events, "interval": interval}, timeout=60) as response:
        for sse in iter_sse(response.iter_bytes()):
            if sse.event == "content.delta":
                deltas += 1
                if interval:
                    arrived = time.perf_counter_ns()
                    stamp = json.loads(sse.data)["delta"].strip()
                    if stamp:
                        latencies.append((arrived - int(stamp)) / 1e6)
            elif sse.event == "done":
                break
    return time.perf_counter() - start, latencies, deltas - 1  # the first delta is the empty role chunk's


def replay_seconds(url: str) -> float:
    """Best of three GETs of a finished stream of ``EVENTS`` deltas, from the log, to its end."""
    with httpx2.stream("POST", url, json={"events": EVENTS, "interval": 0}, timeout=60) as response:
        location = response.headers["location"]
        for _ in response.iter_bytes():
            pass
    stream_url = url.split("/relay", maxsplit=1)[0] + location
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        with httpx2.stream("GET", stream_url, timeout=60) as response:
            frames = sum(1 for _ in iter_sse(response.iter_bytes()))
        best = min(best, time.perf_counter() - start)
        assert frames == EVENTS + EXTRA_FRAMES, frames
    return best


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def round_trips(client: redis.Redis, url: str, interval: float) -> dict[str, Any]:
    """Redis calls during one stream read by one reader, from ``INFO commandstats``, per event."""

    def counts() -> dict[str, int]:
        stats = client.info("commandstats")
        return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}

    events = EVENTS if not interval else LATENCY_EVENTS
    before = counts()
    read_stream(url, events, interval)
    after = counts()
    calls = {name: after[name] - before.get(name, 0) for name in after if after[name] != before.get(name, 0)}
    events += EXTRA_FRAMES
    # commandstats also counts the commands a script runs inside Redis: only these cross the network
    writes = calls.get("evalsha", 0) + calls.get("eval", 0)
    reads = calls.get("xread", 0) + calls.get("hmget", 0)
    return {
        "events": events,
        "interval": interval,
        "calls": calls,
        "writer_round_trips_per_event": writes / events,
        "reader_round_trips_per_event": reads / events,
    }


def redis_memory(client: redis.Redis, url: str) -> dict[str, float]:
    with httpx2.stream("POST", url, json={"events": RETAINED_EVENTS, "interval": 0}, timeout=60) as response:
        stream_id = response.headers["x-stream-id"]
        for _ in response.iter_bytes():
            pass
    keys = client.keys(f"bench:{{{stream_id}}}:*")
    size = sum(int(client.memory_usage(key, samples=0) or 0) for key in keys)
    return {"bytes": size, "bytes_per_event": size / (RETAINED_EVENTS + EXTRA_FRAMES), "keys": len(keys)}


def memory_log_memory() -> dict[str, float]:
    from deltaflow.durable import MemoryEventLog, produce  # noqa: PLC0415

    async def produce_streams(log: MemoryEventLog, count: int) -> None:
        for number in range(count):
            lease = await log.claim(f"s{number}")
            await produce(log, lease, deltaflow.AsyncChatStream(synthetic_chunks(RETAINED_EVENTS, 0)))

    streams = 20
    log = MemoryEventLog()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    asyncio.run(produce_streams(log, streams))
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    size = (after - before) / streams
    return {"bytes": size, "bytes_per_event": size / (RETAINED_EVENTS + EXTRA_FRAMES)}


def main() -> None:
    from tests.durable.redis_server import RedisServer  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as directory:
        server = RedisServer(Path(directory))
        server.start()
        client = redis.Redis(port=server.port, decode_responses=True)
        try:
            with relays(server.url) as urls:
                for url in urls.values():  # warm up: imports, connections, script cache
                    read_stream(url, 200, 0)
                throughput = {}
                for kind, url in urls.items():
                    best = min(read_stream(url, EVENTS, 0)[0] for _ in range(3))
                    throughput[kind] = (EVENTS + EXTRA_FRAMES) / best
                replay = {
                    kind: (EVENTS + EXTRA_FRAMES) / replay_seconds(urls[kind]) for kind in ("memory", "redis")
                }
                runs: dict[str, list[list[float]]] = {kind: [] for kind in urls}
                for _ in range(LATENCY_RUNS):  # interleaved, so the machine's noise falls on all three
                    for kind, url in urls.items():
                        runs[kind].append(read_stream(url, LATENCY_EVENTS, INTERVAL)[1])
                latency = {
                    kind: {
                        "p50": statistics.median(percentile(values, 0.5) for values in samples),
                        "p99": statistics.median(percentile(values, 0.99) for values in samples),
                    }
                    for kind, samples in runs.items()
                }
                trips = [round_trips(client, urls["redis"], interval) for interval in (0, INTERVAL)]
                retained = {"redis": redis_memory(client, urls["redis"]), "memory": memory_log_memory()}
        finally:
            client.close()
            server.stop()

    print(f"throughput, one unpaced stream of {EVENTS:,} content deltas, POST to done:")
    print("| relay | events/s | ratio vs plain relay |\n|---|---:|---:|")
    for kind in RELAYS:
        print(f"| {kind} | {throughput[kind]:,.0f} | {throughput[kind] / throughput['plain']:.2f} |")
    print("\nreplay of the finished stream from the log (GET to the end):")
    for kind, rate in replay.items():
        print(f"  {kind}: {rate:,.0f} events/s")
    print(
        f"\nlatency from chunk made to event read by the SSE client, {LATENCY_EVENTS:,} events every "
        f"{INTERVAL * 1000:g} ms, median of {LATENCY_RUNS} interleaved runs' percentiles:"
    )
    print("| relay | p50 ms | p99 ms | added p50 ms | added p99 ms |\n|---|---:|---:|---:|---:|")
    for kind in RELAYS:
        row = latency[kind]
        added50 = row["p50"] - latency["plain"]["p50"]
        added99 = row["p99"] - latency["plain"]["p99"]
        print(f"| {kind} | {row['p50']:.2f} | {row['p99']:.2f} | {added50:+.2f} | {added99:+.2f} |")
    print("\nRedis round trips per event, one stream read by one reader:")
    for row in trips:
        paced = f"paced every {row['interval'] * 1000:g} ms" if row["interval"] else "unpaced"
        print(
            f"  {row['events']:,} events, {paced}: writer {row['writer_round_trips_per_event']:.3f}, "
            f"reader {row['reader_round_trips_per_event']:.3f} (calls {row['calls']})"
        )
    print(f"\nmemory per retained stream of {RETAINED_EVENTS + EXTRA_FRAMES:,} entries:")
    for kind, row in retained.items():
        print(f"  {kind}: {row['bytes'] / 1024:,.1f} KiB ({row['bytes_per_event']:.0f} B/event)")
    write_results(
        "durable",
        {
            "events": EVENTS,
            "throughput_events_per_second": throughput,
            "replay_events_per_second": replay,
            "latency_ms": latency,
            "latency_interval_s": INTERVAL,
            "redis_round_trips": trips,
            "retained_memory": retained,
        },
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        serve(sys.argv[2], int(sys.argv[3]), sys.argv[4])
    else:
        main()
