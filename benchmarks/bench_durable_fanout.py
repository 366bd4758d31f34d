"""Durable streams at load: 100 streams followed by 10, 100 and 1,000 SSE readers, on one instance and two.

Relay instances run as separate processes (``bench_durable serve``), each ``durable_endpoint`` on a
``MemoryEventLog`` (one instance only: it shares nothing) or on a ``RedisEventLog`` over real
``redis-server`` processes started here, on the shipped defaults: a standalone Redis, a Redis Cluster
of 3 primaries and 3 replicas (``redis+cluster://``), and a primary with a replica written with
``durability="replicated"``. Each row starts ``STREAMS`` streams of
``DELTAS`` content deltas paced every ``INTERVAL`` s (after a ``DELAY`` that lets the readers
connect), and ``readers`` concurrent SSE readers in this process, spread evenly over the streams and
round-robin over the instances. Every reader must get every entry of its stream exactly once, in
order (compared with a GET of the finished stream); a row fails otherwise. Measured per row:

- p50/p99 latency from the moment a chunk is made to the moment a reader reads its event
  (``perf_counter_ns``, CLOCK_MONOTONIC, the same clock in every process);
- Redis round trips per logged entry per instance, from ``INFO commandstats``: the readers' side
  (``XREAD``, ``HMGET``, the reaping ``EVALSHA``s are not told apart from the producers' appends, so
  the writes' ``EVALSHA`` count is reported with the total) over the entries of all streams;
- Redis connections (``INFO clients``), the peak during the row and one second after it;
- the relay processes' resident memory growth over the row, per reader.

Run: ``python -m benchmarks.bench_durable_fanout`` (``--readers 10,100`` and ``--instances 1`` narrow it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx2
import redis

from benchmarks._common import write_results
from benchmarks.bench_durable import wait_listening

STREAMS = 100
DELTAS = 50
INTERVAL = 0.05
DELAY = 1.5
ROW_TIMEOUT = 120.0
EXTRA_FRAMES = 6  # the role chunk's delta, content.done, choice.done, usage, completion.done, terminal


@contextmanager
def instances(kind: str, count: int, redis_url: str) -> Iterator[list[tuple[str, int]]]:
    """``count`` relay processes of ``kind``; yields (base URL, pid) of each."""
    from tests.durable.redis_server import free_port  # noqa: PLC0415

    processes, urls = [], []
    try:
        for _ in range(count):
            port = free_port()
            command = [sys.executable, "-m", "benchmarks.bench_durable", "serve", kind, str(port), redis_url]
            processes.append(subprocess.Popen(command))
            urls.append((f"http://127.0.0.1:{port}/relay/", processes[-1].pid))
        for url, _ in urls:
            wait_listening(url + "x")
        yield urls
    finally:
        for process in processes:
            process.terminate()
            process.wait(15)


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def frames_of(buffer: bytes) -> tuple[list[tuple[str, str, str]], bytes]:
    """Complete SSE frames in ``buffer`` as (id, event, data), and the incomplete rest."""
    frames = []
    *complete, rest = buffer.split(b"\n\n")
    for raw in complete:
        fields = {"id": "", "event": "", "data": ""}
        for line in raw.decode().splitlines():
            name, _, value = line.partition(": ")
            if name in fields:
                fields[name] = value
        if fields["id"]:
            frames.append((fields["id"], fields["event"], fields["data"]))
    return frames, rest


async def read(client: httpx2.AsyncClient, url: str, latencies: list[float]) -> list[str]:
    """Follow one stream to its terminal entry; the ids read, in order."""
    ids: list[str] = []
    buffer = b""
    async with client.stream("GET", url) as response:
        assert response.status_code == 200, response.status_code
        async for data in response.aiter_raw():
            frames, buffer = frames_of(buffer + data)
            arrived = time.perf_counter_ns()
            for entry_id, event, payload in frames:
                ids.append(entry_id)
                if event == "content.delta":
                    stamp = json.loads(payload)["delta"].strip()
                    if stamp:
                        latencies.append((arrived - int(stamp)) / 1e6)
                elif event == "done":
                    return ids
    return ids


class Sampler:
    """Samples Redis's connected clients every 50 ms in a thread while the row runs."""

    def __init__(self, clients: list[redis.Redis]) -> None:
        self._clients = clients
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def clients(self) -> int:
        # minus this sampler's own (the cluster bus's links between nodes are not clients)
        return sum(int(client.info("clients")["connected_clients"]) - 1 for client in self._clients)

    def _run(self) -> None:
        while self._clients and not self._stop.wait(0.05):
            self.peak = max(self.peak, self.clients())

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)


async def row(urls: list[str], readers: int) -> dict[str, Any]:
    """Start the streams, follow them with ``readers`` readers; latencies and the exactly-once check."""
    limits = httpx2.Limits(max_connections=None, max_keepalive_connections=None)
    async with httpx2.AsyncClient(timeout=ROW_TIMEOUT, limits=limits) as client:
        body = {"events": DELTAS, "interval": INTERVAL, "delay": DELAY}
        started = await asyncio.gather(
            *(
                client.post(urls[n % len(urls)], json=body, headers={"accept": "application/json"})
                for n in range(STREAMS)
            )
        )
        locations = [response.json()["url"] for response in started]
        bases = [url.split("/relay/", maxsplit=1)[0] for url in urls]
        latencies: list[float] = []
        targets = [(n % STREAMS, bases[n % len(bases)] + locations[n % STREAMS]) for n in range(readers)]
        got = await asyncio.wait_for(
            asyncio.gather(*(read(client, url, latencies) for _, url in targets)), ROW_TIMEOUT
        )
        expected = {}
        for stream in {stream for stream, _ in targets}:
            buffer = (await client.get(bases[0] + locations[stream])).content
            expected[stream] = [entry_id for entry_id, _, _ in frames_of(buffer + b"\n\n")[0]]
    for (stream, _), ids in zip(targets, got, strict=True):
        assert ids == expected[stream], f"a reader of stream {stream} did not get every entry exactly once"
        assert len(ids) == DELTAS + EXTRA_FRAMES, len(ids)
    latencies.sort()
    return {
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "deltas_read": len(latencies),
    }


def measure(
    kind: str, count: int, readers: int, redis_url: str, clients: list[redis.Redis]
) -> dict[str, Any]:
    with instances(kind, count, redis_url) as running:
        urls = [url for url, _ in running]
        pids = [pid for _, pid in running]
        asyncio.run(row(urls, 2))  # warm up: imports, connections, script cache
        before_memory = sum(resident_kib(pid) for pid in pids)
        before = commandstats(clients)
        with Sampler(clients) as sampler:
            started = time.monotonic()
            result = asyncio.run(row(urls, readers))
            seconds = time.monotonic() - started
            grown = sum(resident_kib(pid) for pid in pids) - before_memory
        calls = {name: value - before.get(name, 0) for name, value in commandstats(clients).items()}
        time.sleep(1)
        after = sampler.clients()
    entries = STREAMS * (DELTAS + EXTRA_FRAMES)
    # the readers' commands: the tail's XREAD and a joining reader's HMGET (the write scripts run neither,
    # and INFO counts the commands a script runs too)
    reads = calls.get("xread", 0) + calls.get("hmget", 0)
    return {
        "log": kind,
        "instances": count,
        "readers": readers,
        **result,
        "seconds": seconds,
        "reader_round_trips_per_entry_per_instance": reads / entries / count,
        "evalsha_per_entry": calls.get("evalsha", 0) / entries,
        "connections_peak": sampler.peak,
        "connections_after": after,
        "memory_per_reader_kib": grown / readers,
    }


def commandstats(clients: list[redis.Redis]) -> dict[str, int]:
    """Calls per command, summed over the primaries (a replica's are replication, not round trips)."""
    totals: dict[str, int] = {}
    for client in clients:
        if client.info("replication")["role"] != "master":
            continue
        for name, value in client.info("commandstats").items():
            key = name.removeprefix("cmdstat_")
            totals[key] = totals.get(key, 0) + int(value["calls"])
    return totals


def append_latency(url: str, durability: str, appends: int = 2_000) -> dict[str, float]:
    """p50/p99 of one append (a round trip, and the replica's acknowledgement when replicated), in ms."""
    from deltaflow.durable import RedisEventLog  # noqa: PLC0415

    async def run() -> list[float]:
        log = RedisEventLog.from_url(url, prefix="latency:", durability=durability)  # type: ignore[arg-type]
        lease = await log.claim(f"append-{durability}")
        took = []
        for _ in range(appends):
            start = time.perf_counter()
            await log.append(lease, "content.delta", '{"delta":"x"}')
            took.append((time.perf_counter() - start) * 1000)
        await log.aclose()
        return sorted(took)

    took = asyncio.run(run())
    return {"p50_ms": took[len(took) // 2], "p99_ms": took[int(0.99 * len(took))]}


def main() -> None:
    from tests.durable.redis_cluster import RedisClusterProcesses  # noqa: PLC0415
    from tests.durable.redis_server import RedisServer  # noqa: PLC0415

    parser = argparse.ArgumentParser()
    parser.add_argument("--readers", default="10,100,1000")
    parser.add_argument("--instances", default="1,2")
    parser.add_argument("--logs", default="memory,redis,cluster,replicated")
    options = parser.parse_args()
    reader_counts = [int(n) for n in options.readers.split(",")]
    instance_counts = [int(n) for n in options.instances.split(",")]
    logs = options.logs.split(",")
    rows = []
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        for name in ("standalone", "primary", "replica", "cluster"):
            (root / name).mkdir()
        standalone = RedisServer(root / "standalone")
        primary = RedisServer(root / "primary", "--repl-diskless-sync-delay", "0")
        replica = RedisServer(root / "replica", "--replicaof", "127.0.0.1", str(primary.port))
        cluster = RedisClusterProcesses(root / "cluster")
        for server in (standalone, primary, replica):
            server.start()
        cluster.start()
        servers = {
            "redis": (standalone.url, [standalone.port]),
            "replicated": (primary.url, [primary.port, replica.port]),
            "cluster": (cluster.url, cluster.ports),
        }
        try:
            while redis.Redis(port=replica.port).info("replication")["master_link_status"] != "up":
                time.sleep(0.05)
            appends = {
                "acknowledged": append_latency(primary.url, "acknowledged"),
                "replicated": append_latency(primary.url, "replicated"),
            }
            print(json.dumps({"append_latency": appends}), file=sys.stderr, flush=True)
            for readers in reader_counts:
                for kind in logs:
                    url, ports = servers.get(kind, ("", []))
                    clients = [redis.Redis(port=port, decode_responses=True) for port in ports]
                    for count in instance_counts if kind == "redis" else [1]:
                        for client in clients:
                            if client.info("replication")["role"] == "master":
                                client.flushall()
                        measured = measure(kind, count, readers, url, clients)
                        rows.append(measured)
                        print(json.dumps(measured), file=sys.stderr, flush=True)
                    for client in clients:
                        client.close()
        finally:
            cluster.stop()
            for server in (standalone, primary, replica):
                server.stop()
    print(
        f"{STREAMS} streams of {DELTAS} deltas every {INTERVAL * 1000:g} ms, readers over SSE, "
        f"load average {os.getloadavg()[0]:.1f}:"
    )
    print(
        "| log | instances | readers | p50 ms | p99 ms | Redis reads/entry/instance | connections peak | "
        "after | KiB/reader |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    for measured in rows:
        redis_only = measured["log"] != "memory"
        print(
            f"| {measured['log']} | {measured['instances']} | {measured['readers']:,} | {measured['p50_ms']:.1f} | "
            f"{measured['p99_ms']:.1f} | "
            + (
                f"{measured['reader_round_trips_per_entry_per_instance']:.3f} | {measured['connections_peak']} | "
                f"{measured['connections_after']} | "
                if redis_only
                else "— | — | — | "
            )
            + f"{measured['memory_per_reader_kib']:.1f} |"
        )
    print("\none append, p50/p99 ms, primary with one replica:")
    for durability, latency in appends.items():
        print(f"  {durability}: {latency['p50_ms']:.2f} / {latency['p99_ms']:.2f}")
    write_results(
        "durable_fanout",
        {
            "streams": STREAMS,
            "deltas": DELTAS,
            "interval_s": INTERVAL,
            "rows": rows,
            "append_latency": appends,
        },
    )


if __name__ == "__main__":
    main()
