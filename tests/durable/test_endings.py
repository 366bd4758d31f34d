"""Every way a stream ends on Redis, as a user sees it, with relay processes on a real redis-server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from deltaflow.errors import EventLogUnavailable, StreamAborted, StreamNotFound
from deltaflow.pipeline import iter_sse
from deltaflow.recipes import relay_events
from deltaflow.replay import ReplayServer, Scenario
from tests.durable.instances import RelayProcess
from tests.durable.reading import BackgroundReader
from tests.durable.redis_server import RedisServer

SCENARIOS = {
    # about 9 s: longer than the 5 s grace of a stopping instance
    "long": Scenario.scripted("word " * 500, chunk_size=5, tokens_per_second=60),
    # about 1.5 s: ends within the grace
    "short": Scenario.scripted("word " * 80, chunk_size=5, tokens_per_second=60),
}
GRACE = 5.0


@pytest.fixture(scope="module")
def upstream() -> Iterator[ReplayServer]:
    with ReplayServer(SCENARIOS) as server:
        yield server


def arguments(upstream: ReplayServer, redis: RedisServer, *extra: str) -> list[str]:
    return [
        "--redis",
        redis.url,
        "--base-url",
        upstream.base_url,
        "--model",
        "long",
        "--allow-model",
        "short",
        *extra,
    ]


def start(relay: RelayProcess, model: str) -> str:
    started = httpx2.post(
        relay.url + "/chat/",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"accept": "application/json"},
    )
    assert started.status_code == 201, started.text
    return str(started.json()["url"])


def frames(url: str) -> list[Any]:
    with httpx2.stream("GET", url, timeout=60) as response:
        return list(iter_sse(response.iter_bytes()))


def terminal(url: str) -> dict[str, Any]:
    last = frames(url)[-1]
    assert last.event == "done", last
    return dict(json.loads(last.data))


@pytest.mark.once  # relay processes and a stream outlasting the 5 s grace
def test_sigterm_without_readers_waits_the_grace_then_aborts_shutdown(
    upstream: ReplayServer, redis_server: RedisServer
) -> None:
    """SIGTERM with no reader attached: the stream runs on for the grace, then ends aborted (shutdown) with
    what it made meanwhile; no traceback in the relay's log."""
    with (
        RelayProcess(*arguments(upstream, redis_server, "--lease", "120")) as leaving,
        RelayProcess(*arguments(upstream, redis_server)) as other,
    ):
        location = start(leaving, "long")
        time.sleep(0.5)
        stopping = time.monotonic()
        leaving.stop(grace=30)
        stopped_in = time.monotonic() - stopping
        outcome = terminal(other.url + location)
        events = [frame for frame in frames(other.url + location) if frame.event == "content.delta"]
    assert GRACE - 0.5 <= stopped_in < GRACE + 10, stopped_in
    assert outcome["outcome"] == "aborted"
    assert outcome["reason"] == "shutdown"
    # the grace was used: several seconds of a 60-token/s answer, not the first half second
    assert len(events) > 100, len(events)
    assert outcome["completion"]["choices"][0]["message"]["content"].startswith("word word")


@pytest.mark.parametrize("attached", [True, False], ids=["reader-attached", "no-reader"])
def test_sigterm_lets_an_answer_that_finishes_within_the_grace_end_done(
    upstream: ReplayServer, redis_server: RedisServer, attached: bool
) -> None:
    """SIGTERM while a short answer runs: it finishes within the grace and ends done, for a reader on the
    stopping instance as for one reading the log afterwards; no CancelledError traceback."""
    with (
        RelayProcess(*arguments(upstream, redis_server, "--lease", "120")) as leaving,
        RelayProcess(*arguments(upstream, redis_server)) as other,
    ):
        location = start(leaving, "short")
        reader = BackgroundReader(leaving.url + location, enough=3) if attached else None
        if reader is not None:
            assert reader.some.wait(15)
        leaving.stop(grace=30)
        if reader is not None:
            reader.join(15)
            assert reader.failure is None, reader.failure
            assert reader.events[-1].type == "completion.done"
        outcome = terminal(other.url + location)
    assert outcome == {"ok": True, "outcome": "done"}


@pytest.mark.once  # a relay process and a stream outlasting the 5 s grace
def test_sigterm_with_a_reader_attached_ends_it_aborted_shutdown_after_the_grace(
    upstream: ReplayServer, redis_server: RedisServer
) -> None:
    """A reader attached to the stopping instance gets aborted (shutdown) as its last event, not a cut
    connection, and the relay logs no CancelledError traceback."""
    with RelayProcess(*arguments(upstream, redis_server, "--lease", "120")) as leaving:
        location = start(leaving, "long")
        reader = BackgroundReader(leaving.url + location, enough=3)
        assert reader.some.wait(15)
        leaving.stop(grace=30)
        reader.join(15)
    assert isinstance(reader.failure, StreamAborted), reader.failure
    assert reader.failure.reason == "shutdown"


def test_a_killed_producer_with_default_timeouts_gives_producer_lost_within_the_lease(
    upstream: ReplayServer, redis_server: RedisServer
) -> None:
    """kill -9 of the producing instance, with the default keep-alive (15 s, above the lease): a reader on
    another instance gets aborted (producer_lost) within the lease time plus one wait, never a log_error."""
    lease = 3.0
    extra = ("--lease", str(lease))
    with (
        RelayProcess(*arguments(upstream, redis_server, *extra)) as doomed,
        RelayProcess(*arguments(upstream, redis_server, *extra)) as other,
    ):
        location = start(doomed, "long")
        reader = BackgroundReader(other.url + location, enough=5)
        assert reader.some.wait(15)
        doomed.kill()
        killed = time.monotonic()
        reader.join(30)
        noticed = time.monotonic() - killed
    assert isinstance(reader.failure, StreamAborted), reader.failure
    assert reader.failure.reason == "producer_lost"
    assert noticed < lease + lease / 2 + 2, noticed


def test_redis_stopped_then_back_the_relay_recovers_by_itself(upstream: ReplayServer, tmp_path: Path) -> None:
    """Redis stops mid-stream: the reader gets a typed error, the producer stops; Redis returns (empty) on
    the same port and the same relay process serves new streams, without a restart; a reader resuming the
    lost stream gets a clear StreamNotFound."""
    redis = RedisServer(tmp_path)
    redis.start()
    try:
        with RelayProcess(*arguments(upstream, redis, "--lease", "2")) as relay:
            location = start(relay, "long")
            reader = BackgroundReader(relay.url + location, enough=5)
            assert reader.some.wait(15)
            redis.stop()
            reader.join(30)
            assert isinstance(reader.failure, EventLogUnavailable), reader.failure
            upstream.wait_for_disconnect(15)  # the producer stopped, and closed its upstream
            down = httpx2.post(
                relay.url + "/chat/", json={"model": "short", "messages": [{"role": "user", "content": "hi"}]}
            )
            assert down.status_code == 503, down.text
            assert "unavailable" in down.json()["error"]
            time.sleep(0.5)
            redis.start()
            fresh = list(
                relay_events(
                    relay.url + "/chat/",
                    json={"model": "short", "messages": [{"role": "user", "content": "hi"}]},
                )
            )
            assert fresh[-1].type == "completion.done"
            with pytest.raises(StreamNotFound):
                list(relay_events(relay.url + location))
            assert "ended without its terminal entry" in relay.stderr()
    finally:
        redis.stop()
