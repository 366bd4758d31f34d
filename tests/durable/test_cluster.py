"""The event log on a real Redis Cluster (3 primaries, 3 replicas) made by the tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deltaflow.durable import RedisEventLog
from deltaflow.durable._follow import Idle, follow, start_position
from deltaflow.errors import LeaseConflict, LeaseLost
from tests.durable.redis_cluster import REDIS_CLI, RedisClusterProcesses
from tests.durable.redis_server import REDIS_SERVER

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
