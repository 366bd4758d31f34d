"""The event log on a real Redis Cluster (3 primaries, 3 replicas) made by the tests, and replicated writes."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from deltaflow.durable import Lease, RedisEventLog
from deltaflow.durable._follow import Idle, follow, start_position
from deltaflow.errors import EventLogUnavailable, LeaseConflict, LeaseLost
from tests.durable.redis_cluster import REDIS_CLI, RedisClusterProcesses
from tests.durable.redis_server import REDIS_SERVER, RedisServer

pytestmark = [
    pytest.mark.once,  # six redis-server processes and a cluster handshake
    pytest.mark.skipif(REDIS_SERVER is None or REDIS_CLI is None, reason="redis-server and redis-cli needed"),
]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterProcesses]:
    processes = RedisClusterProcesses(Path(tmp_path_factory.mktemp("cluster")))
    processes.start()
    yield processes
    processes.stop()


def make_log(cluster: RedisClusterProcesses, **options: float) -> RedisEventLog:
    return RedisEventLog.from_url(cluster.url, prefix=f"c{uuid.uuid4().hex[:8]}:", **options)  # type: ignore[arg-type]


async def collect(log: RedisEventLog, stream_id: str) -> list[object]:
    position = await start_position(log, stream_id, None)
    return [item async for item in follow(log, stream_id, position, idle=0.1) if not isinstance(item, Idle)]


async def test_streams_on_every_primary_keep_the_log_contract(cluster: RedisClusterProcesses) -> None:
    """Forty streams, whose hash slots fall on all three primaries: ids, fencing, one terminal entry each,
    and readers following all of them live at once."""
    log = make_log(cluster)
    streams = [f"s{number}" for number in range(40)]
    leases = {stream: await log.claim(stream) for stream in streams}
    with pytest.raises(LeaseConflict):
        await log.claim(streams[0])
    readers = {stream: asyncio.ensure_future(collect(log, stream)) for stream in streams}
    await asyncio.sleep(0.2)
    for number in range(5):
        for lease in leases.values():
            result = await log.append(lease, "content.delta", json.dumps({"n": number}))
            assert result.entry_id == f"{lease.generation}-{number + 1}"
    for lease in leases.values():
        await log.finish(lease, '{"ok":true,"outcome":"done"}')
    for stream, reader in readers.items():
        entries = await asyncio.wait_for(reader, 20)
        assert [entry.id for entry in entries] == [f"{leases[stream].generation}-{n}" for n in range(1, 7)]
        assert entries[-1].terminal
    with pytest.raises(LeaseLost):
        await log.append(leases[streams[0]], "content.delta", "{}")
    # the keys of the streams spread over the three primaries
    slots = {log._client.keyslot(f"{log._prefix}{{{stream}}}:log") for stream in streams}  # type: ignore[union-attr]
    owners = {log._client.get_node_from_key(f"{log._prefix}{{{stream}}}:log").port for stream in streams}  # type: ignore[union-attr]
    assert len(slots) == len(streams)
    assert len(owners) == 3
    await log.aclose()


async def test_a_dead_producer_is_reaped_and_a_reused_id_never_mixes_answers(
    cluster: RedisClusterProcesses,
) -> None:
    """The lease runs out: the reader writes aborted (producer_lost); the id, reused after its TTL, gets a
    new generation from the server's clock."""
    log = make_log(cluster, lease_time=0.3, ttl=0.3)
    first = await log.claim("dead")
    await log.append(first, "content.delta", "{}")
    entries = await asyncio.wait_for(collect(log, "dead"), 10)
    assert json.loads(entries[-1].data)["reason"] == "producer_lost"  # type: ignore[attr-defined]
    await asyncio.sleep(0.5)
    second = await log.claim("dead")
    assert second.generation > first.generation
    await log.aclose()


def primary_and_replica(
    cluster: RedisClusterProcesses, log: RedisEventLog, stream_id: str
) -> tuple[int, int]:
    """The ports of the primary holding the stream's slot, and of its replica."""
    key = f"{log._prefix}{{{stream_id}}}:log"
    slot = log._client.keyslot(key)  # type: ignore[union-attr]
    primary = log._client.get_node_from_key(key).port  # type: ignore[union-attr]
    assert slot is not None
    replication = cluster.node(primary).info("replication")
    return int(primary), int(replication["slave0"]["port"])


def wait_role(cluster: RedisClusterProcesses, port: int, role: str) -> None:
    deadline = time.monotonic() + 30
    while cluster.node(port).info("replication")["role"] != role:
        assert time.monotonic() < deadline, f"{port} did not become {role}"
        time.sleep(0.05)


async def appending(log: RedisEventLog, lease: Lease, numbers: range, written: dict[str, str]) -> None:
    for number in numbers:
        data = json.dumps({"n": number})
        written[(await log.append(lease, "content.delta", data)).entry_id] = data
        await asyncio.sleep(0.01)


async def test_a_replica_promoted_mid_stream_loses_nothing(cluster: RedisClusterProcesses) -> None:
    """CLUSTER FAILOVER on the replica of the stream's primary while it streams: the producer and the
    reader follow the new primary on their own; every entry arrives once, in order, and one terminal entry."""
    log = make_log(cluster)
    lease = await log.claim("promoted")
    primary, replica = primary_and_replica(cluster, log, "promoted")
    reader = asyncio.ensure_future(collect(log, "promoted"))
    written: dict[str, str] = {}
    await appending(log, lease, range(20), written)
    cluster.node(replica).execute_command("CLUSTER", "FAILOVER")
    producing = asyncio.ensure_future(appending(log, lease, range(20, 60), written))
    await asyncio.to_thread(wait_role, cluster, replica, "master")
    await producing
    await log.finish(lease, '{"ok":true,"outcome":"done"}')
    entries = await asyncio.wait_for(reader, 30)
    assert [(entry.id, entry.data) for entry in entries[:-1]] == list(written.items())  # type: ignore[attr-defined]
    assert [entry.terminal for entry in entries].count(True) == 1  # type: ignore[attr-defined]
    assert primary_and_replica(cluster, log, "promoted") == (replica, primary)
    await log.aclose()


async def test_a_killed_primary_mid_stream_fails_over_and_the_stream_ends_once(
    cluster: RedisClusterProcesses,
) -> None:
    """kill -9 of the stream's primary: its replica takes over after the node timeout, the producer's
    appends go on after retrying, the reader follows the new primary and gets one terminal entry. What an
    asynchronous replica had not received when its primary died is lost (counted, at most the last few)."""
    log = make_log(cluster)
    lease = await log.claim("killed")
    primary, replica = primary_and_replica(cluster, log, "killed")
    reader = asyncio.ensure_future(collect(log, "killed"))
    written: dict[str, str] = {}
    await appending(log, lease, range(20), written)
    producing = asyncio.ensure_future(appending(log, lease, range(20, 60), written))
    await asyncio.sleep(0.1)
    cluster.kill_node(primary)
    await asyncio.to_thread(wait_role, cluster, replica, "master")
    await producing
    await log.finish(lease, '{"ok":true,"outcome":"done"}')
    entries = await asyncio.wait_for(reader, 30)
    read = [(entry.id, entry.data) for entry in entries[:-1]]  # type: ignore[attr-defined]
    assert len(set(read)) == len(read)  # nothing twice
    assert [entry.terminal for entry in entries].count(True) == 1  # type: ignore[attr-defined]
    kept = await collect(log, "killed")
    lost = [item for item in written.items() if item not in {(e.id, e.data) for e in kept}]  # type: ignore[attr-defined]
    assert len(lost) <= 5, lost  # at most the appends of the moment the primary died
    assert kept[-1].terminal  # type: ignore[attr-defined]
    print(f"acknowledged appends lost on a killed primary: {len(lost)} of {len(written)}")
    cluster.start_node(primary)  # back as a replica of the new primary
    await log.aclose()


@pytest.mark.once  # a primary and a replica of its own
async def test_replicated_durability_acknowledges_only_what_a_replica_has(tmp_path: Path) -> None:
    """durability="replicated": each acknowledged entry is on the replica when append returns; with the
    replica gone, the append fails with EventLogUnavailable instead of acknowledging a write it could lose."""
    primary = RedisServer(tmp_path / "primary", "--repl-diskless-sync-delay", "0")
    (tmp_path / "primary").mkdir()
    (tmp_path / "replica").mkdir()
    primary.start()
    replica = RedisServer(tmp_path / "replica", "--replicaof", "127.0.0.1", str(primary.port))
    replica.start()
    try:
        deadline = time.monotonic() + 20
        while redis.Redis(port=replica.port).info("replication")["master_link_status"] != "up":
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        log = RedisEventLog.from_url(primary.url, durability="replicated", replica_wait=2.0)
        on_replica = redis.Redis(port=replica.port, decode_responses=True)
        lease = await log.claim("kept")
        for number in range(50):
            entry_id = (await log.append(lease, "content.delta", json.dumps({"n": number}))).entry_id
            assert on_replica.xrange("deltaflow:{kept}:log", entry_id, entry_id), entry_id
        await log.finish(lease, '{"ok":true,"outcome":"done"}')
        assert on_replica.hget("deltaflow:{kept}:meta", "finished") == "1"
        replica.stop()
        with pytest.raises(EventLogUnavailable, match="no replica acknowledged"):
            await log.claim("unreplicated")
        await log.aclose()
    finally:
        replica.stop()
        primary.stop()


async def test_replicated_durability_is_refused_on_a_cluster(cluster: RedisClusterProcesses) -> None:
    """A cluster routes WAIT to every primary, not to the write's connection: refused, not pretended."""
    with pytest.raises(ValueError, match="standalone primary"):
        RedisEventLog.from_url(cluster.url, durability="replicated")
