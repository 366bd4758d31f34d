"""Two (and three) relay instances as separate uvicorn processes sharing one real redis-server.

A round-robin TCP balancer sits in front; it cuts the client's connection at every event position
in turn, and the client reconnects through it to the other instance.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest

from deltaflow.errors import StreamAborted
from deltaflow.recipes import relay_events
from deltaflow.replay import ReplayServer, Scenario
from tests.durable.balancer import CuttingBalancer
from tests.durable.instances import RelayProcess
from tests.durable.reading import BackgroundReader
from tests.durable.redis_server import RedisServer

MESSAGES = [{"role": "user", "content": "hi"}]
SCENARIOS = {
    # short answers, some paced so that cuts fall in the live tail as well as in the catch-up
    "plain": Scenario.scripted("Durable streams resume exactly.", chunk_size=3),
    "reasoning": Scenario.scripted(
        "An answer after thought.", reasoning="Think first.", chunk_size=4, tokens_per_second=400
    ),
    "tools": Scenario.scripted(
        None,
        tool_calls=[{"name": "lookup", "arguments": {"q": "resumable", "n": 2}}],
        chunk_size=4,
        tokens_per_second=400,
    ),
    "unicode": Scenario.scripted("Ünïcödé ✓ 日本語 survives cuts.", chunk_size=2),
    "slow": Scenario.scripted("word " * 400, chunk_size=5, tokens_per_second=60),
}
MODELS = ["plain", "reasoning", "tools", "unicode"]
STREAMS = 200


@pytest.fixture(scope="module")
def upstream() -> Iterator[ReplayServer]:
    with ReplayServer(SCENARIOS) as server:
        yield server


def relay_arguments(upstream: ReplayServer, redis: RedisServer, *extra: str) -> list[str]:
    allowed = [argument for model in SCENARIOS for argument in ("--allow-model", model)]
    return ["--redis", redis.url, "--base-url", upstream.base_url, "--model", "plain", *allowed, *extra]


@pytest.fixture(scope="module")
def instances(
    upstream: ReplayServer, redis_server: RedisServer
) -> Iterator[tuple[RelayProcess, RelayProcess]]:
    """Two relay processes on one Redis."""
    arguments = relay_arguments(upstream, redis_server, "--lease", "2")
    with RelayProcess(*arguments) as first, RelayProcess(*arguments) as second:
        yield first, second


def body(model: str) -> dict[str, Any]:
    return {"model": model, "messages": MESSAGES}


def test_cut_at_every_event_position_and_resumed_on_the_other_instance(
    instances: tuple[RelayProcess, RelayProcess],
) -> None:
    """200 streams, each cut once at the next position in turn (on a frame boundary or inside a frame):
    after reconnecting to the other instance, no event is lost or repeated, order holds, and the final
    completion equals the uncut run's."""
    first, second = instances
    with CuttingBalancer([first.port, second.port]) as balancer:
        url = balancer.url + "/chat/"
        uncut = {
            model: [event.model_dump() for event in relay_events(url, json=body(model))] for model in MODELS
        }
        assert balancer.cuts == 0
        positions = {model: len(events) + 1 for model, events in uncut.items()}  # + the terminal entry
        expected_cuts = 0
        for number in range(STREAMS):
            model = MODELS[number % len(MODELS)]
            position = (number // len(MODELS)) % (positions[model] + 1)
            balancer.cut_next(position, into=0 if number % 2 else 9)
            connections = len(balancer.connections)
            events = [event.model_dump() for event in relay_events(url, json=body(model), retry_delay=0.01)]
            assert events == uncut[model], (model, position)
            used = balancer.connections[connections:]
            if position < positions[model]:
                expected_cuts += 1
                assert len(used) == 2, (model, position)
                assert used[0] != used[1]  # resumed on the other instance
        assert balancer.cuts == expected_cuts
        assert expected_cuts > 150
    assert (
        uncut["tools"][-1]["completion"]["choices"][0]["message"]["tool_calls"][0]["function"]["name"]
        == "lookup"
    )


def test_a_finished_stream_replays_whole_from_the_other_instance(
    instances: tuple[RelayProcess, RelayProcess],
) -> None:
    """Started on one instance, read to its end, then replayed whole by the other one."""
    first, second = instances
    with httpx2.stream("POST", first.url + "/chat/", json=body("reasoning")) as response:
        location = response.headers["location"]
        events = list(relay_events(first.url + location))
    replayed = list(relay_events(second.url + location))
    assert [event.model_dump() for event in replayed] == [event.model_dump() for event in events]
    assert replayed[-1].type == "completion.done"


def test_a_stop_request_to_the_other_instance_ends_the_generation(
    upstream: ReplayServer, instances: tuple[RelayProcess, RelayProcess]
) -> None:
    """Stopping on instance B a stream produced on A: the reader gets aborted (stopped) with the partial answer."""
    first, second = instances
    started = httpx2.post(first.url + "/chat/", json=body("slow"), headers={"accept": "application/json"})
    location = started.json()["url"]
    reader = BackgroundReader(first.url + location, enough=5)
    assert reader.some.wait(15)
    assert httpx2.post(second.url + location + "/stop").status_code == 202
    reader.join(15)
    stopped = reader.failure
    assert isinstance(stopped, StreamAborted)
    assert stopped.reason == "stopped"
    assert stopped.completion is not None
    text = stopped.completion.choices[0].message.content or ""
    assert text.startswith("word word")
    assert len(text) < len("word " * 400)
    assert text == "".join(event.delta for event in reader.events if event.type == "content.delta")
    upstream.wait_for_disconnect(15)


def test_a_killed_producer_process_leaves_readers_aborted_within_the_lease(
    upstream: ReplayServer, redis_server: RedisServer, instances: tuple[RelayProcess, RelayProcess]
) -> None:
    """SIGKILL the instance producing a stream: a reader on another instance gets aborted (producer_lost)."""
    _, second = instances
    with RelayProcess(*relay_arguments(upstream, redis_server, "--lease", "1")) as doomed:
        started = httpx2.post(
            doomed.url + "/chat/", json=body("slow"), headers={"accept": "application/json"}
        )
        location = started.json()["url"]
        events = relay_events(second.url + location)
        received = [next(events) for _ in range(3)]
        assert all(event.type for event in received)
        doomed.kill()

        def drain() -> None:
            for _ in events:
                pass

        with ThreadPoolExecutor(1) as pool, pytest.raises(StreamAborted) as aborted:
            # a generous wait: the lease is 1 s and readers check it every half lease; a hang fails here
            pool.submit(drain).result(timeout=30)
    assert aborted.value.reason == "producer_lost"
    # the loss is the stream's terminal entry: a later reader replays it the same way
    with pytest.raises(StreamAborted) as replayed:
        list(relay_events(second.url + location))
    assert replayed.value.reason == "producer_lost"


def test_an_instance_stopped_for_a_deploy_ends_its_streams_aborted_shutdown(
    upstream: ReplayServer, redis_server: RedisServer, instances: tuple[RelayProcess, RelayProcess]
) -> None:
    """SIGTERM the instance producing a stream: its shutdown writes aborted (shutdown) at once for readers elsewhere."""
    _, second = instances
    with RelayProcess(*relay_arguments(upstream, redis_server, "--lease", "120")) as leaving:
        started = httpx2.post(
            leaving.url + "/chat/", json=body("slow"), headers={"accept": "application/json"}
        )
        location = started.json()["url"]
        reader = BackgroundReader(second.url + location, enough=3)
        assert reader.some.wait(15)
        stopping = time.monotonic()
        leaving.stop(grace=60)
        stopped_in = time.monotonic() - stopping
        # generous waits for a loaded machine; with a lease of 120 s, an answer within them comes from the
        # shutdown, not from reaping
        assert stopped_in < 59, f"the instance did not stop on SIGTERM: {leaving.stderr()}"
        reader.join(60)
    assert isinstance(reader.failure, StreamAborted)
    assert reader.failure.reason == "shutdown"
    assert reader.failure.completion is not None
