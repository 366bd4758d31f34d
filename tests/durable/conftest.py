"""Fixtures of the durable-stream tests: a real redis-server, and both event-log backends."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from deltaflow.durable import EventLog, MemoryEventLog, RedisEventLog
from tests.durable.redis_server import REDIS_SERVER, RedisServer

needs_redis = pytest.mark.skipif(
    REDIS_SERVER is None, reason="redis-server is not installed (apt-get install redis-server)"
)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server on a free port of 127.0.0.1 for the whole session; skipped when the binary is absent."""
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["memory", "redis"])
async def make_log(request: pytest.FixtureRequest) -> AsyncIterator[type[EventLog]]:
    """Builds logs of one backend (both in turn) with given options; closes them after the test."""
    made: list[EventLog] = []

    def make(**options: object) -> EventLog:
        if request.param == "memory":
            log: EventLog = MemoryEventLog(**options)  # type: ignore[arg-type]
        else:
            server: RedisServer = request.getfixturevalue("redis_server")
            log = RedisEventLog.from_url(server.url, prefix=f"test:{uuid.uuid4().hex[:12]}:", **options)
        made.append(log)
        return log

    yield make  # type: ignore[misc]
    for log in made:
        await log.aclose()
