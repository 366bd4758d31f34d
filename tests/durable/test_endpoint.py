"""durable_endpoint over real HTTP, on both logs: POST/GET/stop, resumption by Last-Event-ID, validation."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount

import deltaflow
from deltaflow.durable import EventLog, MemoryEventLog, RedisEventLog, durable_endpoint
from deltaflow.durable._endpoint import describe_log
from deltaflow.errors import EventLogUnavailable, StreamAborted, StreamInterrupted, StreamNotFound
from deltaflow.pipeline import iter_sse
from deltaflow.recipes import RelayError, arelay_events, relay_events
from deltaflow.recipes._relay_wire import COMPACTED_FIELDS
from deltaflow.replay import Fault, ReplayServer, Scenario
from tests.durable.balancer import CuttingBalancer
from tests.durable.reading import BackgroundReader
from tests.durable.redis_server import RedisServer, free_port
from tests.recipes import MESSAGES, aclient, client
from tests.recipes.test_relay import AppServer

TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
SCENARIOS = {
    "scripted": Scenario.scripted(
        "Hello from upstream, made durable.",
        reasoning="Keep every event.",
        tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}],
    ),
    "slow": Scenario.scripted("word " * 300, chunk_size=5, tokens_per_second=100),
    "brisk": Scenario.scripted("word " * 150, chunk_size=5, tokens_per_second=150),
    "thinking": Scenario.scripted("after a pause", ttft=0.8),
    "failing": Scenario.scripted("Hello world", fault=Fault.error_after(3, message="overloaded")),
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[ReplayServer]:
    with ReplayServer(SCENARIOS) as server:
        yield server


@pytest.fixture(scope="module", params=["memory", "redis"])
def relay(request: pytest.FixtureRequest, upstream: ReplayServer) -> Iterator[str]:
    """A Starlette app with the durable endpoint mounted at /chat (async streams) and /sync; yields its root."""
    if request.param == "memory":
        log: EventLog = MemoryEventLog(lease_time=2)
    else:
        server: RedisServer = request.getfixturevalue("redis_server")
        log = RedisEventLog.from_url(server.url, prefix="endpoint-test:", lease_time=2)
    async_client, sync_client = aclient(upstream), client(upstream)

    def make_async(body: dict[str, Any]) -> deltaflow.AsyncChatStream[Any]:
        model = body.get("model")
        if not isinstance(model, str) or model not in SCENARIOS:
            raise ValueError("model: one of the scenarios' names")
        return deltaflow.astream(async_client, model=body["model"], messages=MESSAGES, tools=TOOLS)

    def make_sync(body: dict[str, Any]) -> deltaflow.ChatStream[Any]:
        return deltaflow.stream(sync_client, model=body["model"], messages=MESSAGES, tools=TOOLS)

    chat = durable_endpoint(make_async, log, keep_alive=0.2, max_body=4096)
    sync = durable_endpoint(make_sync, log)
    app = Starlette(routes=[Mount("/chat", app=chat), Mount("/sync", app=sync)])
    with AppServer(app) as server:
        yield server.url


def direct(upstream: ReplayServer, model: str) -> list[Any]:
    with deltaflow.stream(client(upstream), model=model, messages=MESSAGES, tools=TOOLS) as stream:
        return [event for event in stream if event.type != "chunk"]


def raw_sse(url: str, **headers: str | bytes) -> tuple[httpx2.Response, list[Any]]:
    with httpx2.stream("GET", url, headers=headers, timeout=10) as response:
        return response, list(iter_sse(response.iter_bytes())) if response.status_code == 200 else []


def start(relay: str, model: str, **params: str) -> str:
    response = httpx2.post(
        f"{relay}/chat/", json={"model": model}, headers={"accept": "application/json"}, params=params
    )
    assert response.status_code == 201, response.text
    assert response.headers["location"] == response.json()["url"]
    return str(response.json()["url"])


@pytest.mark.parametrize("path", ["/chat/", "/sync/"])
def test_events_equal_the_direct_stream_and_replay_whole_after_the_end(
    upstream: ReplayServer, relay: str, path: str
) -> None:
    """A POST relays the direct stream's events; a GET after the end replays the same ids and data."""
    expected = direct(upstream, "scripted")
    events = list(relay_events(relay + path, json={"model": "scripted"}))
    assert [event.model_dump() for event in events] == [event.model_dump() for event in expected]
    with httpx2.stream("POST", relay + path, json={"model": "scripted"}) as response:
        location = response.headers["location"]
        assert location.startswith(path)
        assert response.headers["x-stream-id"] in location
        first = list(iter_sse(response.iter_bytes()))
    _, replayed = raw_sse(relay + location)
    assert replayed == first
    assert [sse.event for sse in first][-1] == "done"
    assert sum(sse.event == "done" for sse in first) == 1


async def test_the_async_client_follows_a_stream_by_its_url(upstream: ReplayServer, relay: str) -> None:
    """arelay_events with no body GETs a stream by its URL, whole, and after a given id."""
    url = relay + start(relay, "scripted")
    expected = await asyncio.to_thread(direct, upstream, "scripted")
    events = [event async for event in arelay_events(url)]
    assert [event.model_dump() for event in events] == [event.model_dump() for event in expected]
    _, frames = raw_sse(url)
    rest = [event async for event in arelay_events(url, last_event_id=frames[2].id)]
    # running texts are rebuilt from the deltas a reader saw: from where this one joined
    assert [without_running_text(event) for event in rest] == [without_running_text(e) for e in expected[3:]]


def without_running_text(event: Any) -> dict[str, Any]:
    left_out = COMPACTED_FIELDS.get(event.type, ("",))[0]
    return {key: value for key, value in event.model_dump().items() if key != left_out}


def test_the_log_leaves_running_texts_out_and_the_client_rebuilds_them(
    upstream: ReplayServer, relay: str
) -> None:
    """Delta events go out without their snapshot (the log stays linear); relay_events rebuilds it exactly."""
    url = relay + start(relay, "brisk")
    _, frames = raw_sse(url)
    deltas = [json.loads(frame.data) for frame in frames if frame.event == "content.delta"]
    assert len(deltas) > 50
    assert all("snapshot" not in delta for delta in deltas)
    events = [event for event in relay_events(url) if event.type == "content.delta"]
    assert [event.snapshot for event in events] == [
        e.snapshot for e in direct(upstream, "brisk") if e.type == "content.delta"
    ]


def test_leaving_does_not_stop_the_generation(upstream: ReplayServer, relay: str) -> None:
    """A reader that leaves mid-stream, then comes back with its last id, gets the rest and the whole answer."""
    expected = direct(upstream, "brisk")
    with httpx2.stream("POST", relay + "/chat/", json={"model": "brisk"}) as response:
        location = response.headers["location"]
        frames = []
        for sse in iter_sse(response.iter_bytes()):
            frames.append(sse)
            if len(frames) == 5:
                break
    rest = list(relay_events(relay + location, last_event_id=frames[-1].id))
    assert rest[-1].type == "completion.done"
    assert rest[-1].completion == expected[-1].completion
    assert len(rest) == len(expected) - 5


def test_a_stop_request_ends_the_generation_with_what_was_made(upstream: ReplayServer, relay: str) -> None:
    """POST <id>/stop: the reader gets StreamAborted('stopped') with the partial completion; upstream is closed."""
    url = relay + start(relay, "slow")
    reader = BackgroundReader(url, enough=4)
    assert reader.some.wait(10)
    stop = httpx2.post(url + "/stop")
    assert stop.status_code == 202, stop.text
    reader.join(10)
    stopped = reader.failure
    assert isinstance(stopped, StreamAborted)
    assert stopped.reason == "stopped"
    assert stopped.completion is not None
    content = stopped.completion.choices[0].message.content or ""
    assert content.startswith("word word")
    assert len(content) < len("word " * 300)
    upstream.wait_for_disconnect(10)
    assert httpx2.post(url + "/stop").status_code == 409


def test_an_upstream_failure_is_the_error_outcome(relay: str) -> None:
    """The upstream's error is relayed as its event, then RelayError with the partial completion; it replays too."""
    url = relay + start(relay, "failing")
    outcomes = []
    for _ in range(2):  # live, then replayed from the log after the end
        events: list[Any] = []
        with pytest.raises(RelayError) as raised:
            events.extend(relay_events(url))
        assert events[-1].type == "error"
        assert raised.value.completion is not None
        outcomes.append(([event.model_dump() for event in events], raised.value.error))
    assert outcomes[0] == outcomes[1]


def test_an_idle_stream_sends_keep_alive_comments(relay: str) -> None:
    """While the model thinks, comments keep the connection busy; the answer follows."""
    url = relay + start(relay, "thinking")
    with httpx2.stream("GET", url, timeout=10) as response:
        body = b"".join(response.iter_bytes())
    head, _, rest = body.partition(b"id: ")
    assert head.count(b": keep-alive\n\n") >= 2
    assert b"after a pause" in rest


def test_a_stream_id_is_single_use_while_retained(relay: str) -> None:
    """A POST with a stream id already in use is refused with 409; the first stream is untouched."""
    url = start(relay, "scripted", stream_id="chosen-id")
    assert url.endswith("/chat/chosen-id")
    again = httpx2.post(relay + "/chat/", json={"model": "scripted"}, params={"stream_id": "chosen-id"})
    assert again.status_code == 409
    assert list(relay_events(relay + url))[-1].type == "completion.done"


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/chat/", {"content": b"not json"}, 400),
        ("POST", "/chat/", {"json": [1, 2]}, 400),
        ("POST", "/chat/", {"json": {"model": "x" * 5000}}, 413),
        ("POST", "/chat/", {"json": {"model": "unknown"}}, 422),
        ("POST", "/chat/?stream_id=bad%20id", {"json": {"model": "scripted"}}, 400),
        ("GET", "/chat/no-such-stream", {}, 404),
        ("GET", "/chat/a/b/c", {}, 404),
        ("PUT", "/chat/", {}, 405),
        ("GET", "/chat/x/stop", {}, 405),
        ("POST", "/chat/no-such-stream/stop", {}, 404),
        ("DELETE", "/chat/some-id", {}, 405),
    ],
)
def test_bad_requests_get_clear_statuses(
    relay: str, method: str, path: str, kwargs: Any, status: int
) -> None:
    """Each malformed request is answered with its own 4xx and a JSON error, never a 500."""
    response = httpx2.request(method, relay + path, **kwargs)
    assert response.status_code == status
    assert "error" in response.json()


def test_the_page_is_served_at_the_endpoint(relay: str, request: pytest.FixtureRequest) -> None:
    """GET on the endpoint itself serves the browser page."""
    response = httpx2.get(relay + "/chat/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert b"EventSource" in response.content
    # the page says which log serves the streams: this instance's memory, or where the Redis is
    shown = re.search(r'<dd id="event-log">([^<]*)</dd>', response.text)
    assert shown is not None
    if request.node.callspec.params["relay"] == "memory":
        assert shown.group(1) == "in memory (this instance&#x27;s streams only)"
    else:
        assert shown.group(1).startswith("RedisEventLog at 127.0.0.1:")


def test_the_page_names_a_redis_log_without_its_credentials() -> None:
    """Where the log writes, for whoever debugs a stream; never the password of its URL."""
    log = RedisEventLog.from_url("redis://:hunter2@127.0.0.1:6390/0")
    described = describe_log(log)
    assert described == "RedisEventLog at 127.0.0.1:6390 (acknowledged)"
    assert "hunter2" not in described


@pytest.fixture(scope="module")
def finished_stream(relay: str) -> tuple[str, list[Any]]:
    url = relay + start(relay, "scripted")
    _, frames = raw_sse(url)
    return url, frames


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    last_event_id=st.text(
        st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"), max_size=30
    )
    | st.from_regex(r"[0-9]{1,3}-[0-9]{1,3}", fullmatch=True)
)
def test_any_last_event_id_header_is_answered_without_a_server_error(
    finished_stream: tuple[str, list[Any]], last_event_id: str
) -> None:
    """Whatever Last-Event-ID says, the relay answers 200 from the next event, 204 at the end, or 400/404."""
    url, frames = finished_stream
    generation = int(frames[0].id.split("-")[0])
    # HTTP strips a header value's outer whitespace (and httpx refuses to send it)
    stripped = last_event_id.strip(" \t")
    response, received = raw_sse(url, **({"last-event-id": stripped.encode("latin-1")} if stripped else {}))
    parsed = re.fullmatch(r"(\d{1,19})-(\d{1,19})", stripped)
    if not stripped:
        assert response.status_code == 200
        assert received == frames
    elif parsed is None:
        assert response.status_code == 400
    elif int(parsed[1]) == generation and int(parsed[2]) <= len(frames):
        # <generation>-0 is the position before the first event; the last event's id leaves nothing
        after = int(parsed[2])
        assert response.status_code == (204 if after == len(frames) else 200)
        assert received == frames[after:]
    else:
        assert response.status_code == 404  # another answer's id, or past the end


def test_a_trimmed_range_arrives_as_a_gap(upstream: ReplayServer, redis_server: RedisServer) -> None:
    """With MAXLEN 5, a reader from the start gets an explicit gap event; the Python client raises EventsTrimmed."""
    from deltaflow.errors import EventsTrimmed  # noqa: PLC0415

    log = RedisEventLog.from_url(redis_server.url, prefix="gap-test:", max_length=5)

    def make(body: dict[str, Any]) -> deltaflow.AsyncChatStream[Any]:
        return deltaflow.astream(aclient(upstream), model="scripted", messages=MESSAGES, tools=TOOLS)

    app = Starlette(routes=[Mount("/chat", app=durable_endpoint(make, log))])
    with AppServer(app) as server:
        url = server.url + start(server.url, "scripted")
        raw_sse(url)  # to the end: the stream is finished, and all but its last 5 entries trimmed
        _, frames = raw_sse(url)
        assert frames[0].event == "gap"
        gap = json.loads(frames[0].data)
        assert gap["missing"] > 0
        assert gap["next"] == frames[1].id
        sequences = [int(frame.id.split("-")[1]) for frame in frames[1:]]
        assert sequences == list(range(gap["missing"] + 1, gap["missing"] + 6))
        assert frames[-1].event == "done"
        with pytest.raises(EventsTrimmed) as trimmed:
            list(relay_events(url))
        assert trimmed.value.missing > 0
        with pytest.raises(StreamNotFound):
            list(relay_events(server.url + "/chat/never-was"))


def test_redis_restarted_mid_stream_gives_typed_errors_on_both_sides(
    upstream: ReplayServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis goes away (and comes back empty): the reader raises a typed error, the producer stops with one
    and closes its upstream, nothing hangs; new streams work once Redis is back."""
    redis = RedisServer(tmp_path)
    redis.start()
    log = RedisEventLog.from_url(redis.url, lease_time=1)

    def make(body: dict[str, Any]) -> deltaflow.AsyncChatStream[Any]:
        return deltaflow.astream(aclient(upstream), model=body["model"], messages=MESSAGES, tools=TOOLS)

    caplog.set_level(logging.WARNING, logger="deltaflow.durable")
    app = Starlette(routes=[Mount("/chat", app=durable_endpoint(make, log))])
    try:
        with AppServer(app) as server, ThreadPoolExecutor(1) as pool:
            url = server.url + start(server.url, "slow")
            events = relay_events(url, retry_delay=0.05)
            assert [next(events).type for _ in range(3)]
            redis.restart()

            def drain() -> None:
                for _ in events:
                    pass

            with pytest.raises((EventLogUnavailable, StreamNotFound)):
                pool.submit(drain).result(timeout=30)
            upstream.wait_for_disconnect(30)
            deadline = time.monotonic() + 30
            while not any("ended without its terminal entry" in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline, "the producer did not report the lost log"
                time.sleep(0.05)
            producer_error = next(r for r in caplog.records if "terminal entry" in r.getMessage())
            assert (
                "EventLogUnavailable" in producer_error.getMessage()
                or "LeaseLost" in producer_error.getMessage()
            )
            fresh = list(relay_events(server.url + "/chat/", json={"model": "scripted"}))
            assert fresh[-1].type == "completion.done"
    finally:
        redis.stop()


@pytest.mark.parametrize("twin", ["sync", "async"])
@pytest.mark.parametrize(("retries", "resumes"), [(3, True), (2, False)])
def test_reconnections_are_bounded_in_a_row(
    upstream: ReplayServer, relay: str, twin: str, retries: int, resumes: bool
) -> None:
    """Cut after 4 events, the next two reconnections land on a dead backend and the third on the relay:
    with 3 retries the client resumes (nothing lost or repeated), with 2 it raises StreamInterrupted."""
    relay_port = int(relay.rsplit(":", 1)[1])
    expected = [event.model_dump() for event in direct(upstream, "scripted")]
    with CuttingBalancer([relay_port, free_port(), free_port(), relay_port]) as balancer:
        balancer.cut_next(4, into=3)
        url, body = balancer.url + "/chat/", {"model": "scripted"}
        received: list[Any] = []

        async def read_async() -> None:
            async for event in arelay_events(url, json=body, retries=retries, retry_delay=0.01):
                received.append(event.model_dump())

        def read() -> None:
            if twin == "async":
                asyncio.run(read_async())
            else:
                received.extend(
                    e.model_dump() for e in relay_events(url, json=body, retries=retries, retry_delay=0.01)
                )

        if resumes:
            read()
            assert received == expected
            assert len(balancer.connections) == 4
        else:
            with pytest.raises(StreamInterrupted, match="2 reconnections failed"):
                read()
            assert received == expected[:4]
            assert len(balancer.connections) == 3


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=64)
    | json_values.map(lambda value: json.dumps(value).encode())
    | st.dictionaries(st.sampled_from(["model", "messages", "x"]), json_values, max_size=3).map(
        lambda value: json.dumps(value).encode()
    )
)
def test_any_post_body_is_answered_without_a_server_error(relay: str, body: bytes) -> None:
    """Whatever the POST body, the endpoint answers 201 (a stream started), or 400/413/422 with a JSON error."""
    response = httpx2.post(relay + "/chat/", content=body, headers={"accept": "application/json"})
    assert response.status_code in (201, 400, 413, 422), response.text
    if response.status_code == 201:
        assert json.loads(body)["model"] in SCENARIOS
    else:
        assert "error" in response.json()
