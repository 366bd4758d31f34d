"""recipes.relay_endpoint / relay_events: a stream relayed over SSE and read back as equal events."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Literal

import httpx2
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.routing import Route

import deltaflow
from deltaflow.errors import StreamInterrupted
from deltaflow.events import ErrorReported
from deltaflow.recipes import RelayError, arelay_events, relay_endpoint, relay_events
from deltaflow.replay import Fault, ReplayServer, Scenario
from tests.recipes import MESSAGES, aclient, client

SCENARIOS = {
    "scripted": Scenario.scripted(
        "Hello from upstream, relayed.",
        reasoning="Relay it faithfully.",
        tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}],
    ),
    # long and paced, so the client can leave while the upstream is still streaming
    "slow": Scenario.scripted("word " * 400, chunk_size=5, tokens_per_second=50),
    "failing": Scenario.scripted("Hello world", fault=Fault.error_after(3, message="overloaded")),
}


class AppServer:
    """An ASGI app under uvicorn on loopback, in a background thread."""

    def __init__(self, app: Any, *, lifespan: Literal["on", "off"] = "off") -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(app, log_config=None, log_level="warning", lifespan=lifespan, http="h11")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def __enter__(self) -> AppServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()


@pytest.fixture(scope="module")
def upstream() -> Iterator[ReplayServer]:
    """The replay server the relay streams from, one scenario per model name."""
    with ReplayServer(SCENARIOS) as server:
        yield server


@pytest.fixture(scope="module")
def relay(upstream: ReplayServer) -> Iterator[str]:
    """A Starlette app relaying sync streams on /sync and async streams on /async; yields its root URL."""
    sync_client, async_client = client(upstream), aclient(upstream)

    def make_sync(body: dict[str, Any]) -> deltaflow.ChatStream[Any]:
        return deltaflow.stream(sync_client, model=body["model"], messages=MESSAGES, tools=_TOOLS)

    async def make_async(body: dict[str, Any]) -> deltaflow.AsyncChatStream[Any]:
        return deltaflow.astream(async_client, model=body["model"], messages=MESSAGES, tools=_TOOLS)

    app = Starlette(
        routes=[
            Route("/sync", relay_endpoint(make_sync), methods=["POST"]),
            Route("/async", relay_endpoint(make_async), methods=["POST"]),
        ]
    )
    with AppServer(app) as server:
        yield server.url


_TOOLS = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]


def _direct(upstream: ReplayServer, model: str) -> list[Any]:
    stream: deltaflow.ChatStream[Any] = deltaflow.stream(
        client(upstream), model=model, messages=MESSAGES, tools=_TOOLS
    )
    with stream:
        return [event for event in stream if event.type != "chunk"]


@pytest.mark.parametrize("path", ["/sync", "/async"])
class TestRelay:
    def test_relayed_events_equal_the_direct_stream(
        self, upstream: ReplayServer, relay: str, path: str
    ) -> None:
        """The client side yields the same event types with equal fields, and an equal final completion."""
        expected = _direct(upstream, "scripted")
        relayed = list(relay_events(relay + path, json={"model": "scripted"}))
        assert [event.type for event in relayed] == [event.type for event in expected]
        assert {"reasoning.delta", "content.delta", "tool_calls.function.arguments.done"} <= {
            event.type for event in relayed
        }
        for got, want in zip(relayed, expected, strict=True):
            assert type(got) is type(want)
            assert got.model_dump() == want.model_dump()
        assert relayed[-1].type == "completion.done"
        assert relayed[-1].completion == expected[-1].completion

    def test_the_wire_leaves_running_texts_out_so_traffic_grows_with_the_answer(
        self, upstream: ReplayServer, relay: str, path: str
    ) -> None:
        """No delta event carries its running text (``snapshot``, ``arguments``): a long answer's traffic
        stays linear in its length, and ``relay_events`` rebuilds the texts equal (the test above)."""
        with httpx2.stream("POST", relay + path, json={"model": "slow"}, timeout=30) as response:
            sent = [line for line in response.iter_lines() if line.startswith("data: ")]
        deltas = [line for line in sent if '"type":"content.delta"' in line]
        assert len(deltas) >= 400  # "word " * 400 in chunks of 5 (and the role chunk's empty delta)
        assert not [line for line in deltas if '"snapshot"' in line]
        # each delta line is its own few fields: the whole answer (2,000 characters) appears in none
        assert max(map(len, deltas)) < 300

    async def test_async_client_side_reads_the_same(
        self, upstream: ReplayServer, relay: str, path: str
    ) -> None:
        """``arelay_events`` yields what ``relay_events`` yields."""
        expected = await asyncio.to_thread(_direct, upstream, "scripted")
        relayed = [event async for event in arelay_events(relay + path, json={"model": "scripted"})]
        assert [event.model_dump() for event in relayed] == [event.model_dump() for event in expected]

    def test_an_upstream_error_arrives_as_an_error_event_then_raises(self, relay: str, path: str) -> None:
        """The upstream's failure is yielded as its ``error`` event, then raised with the partial completion."""
        events: list[Any] = []
        with pytest.raises(RelayError) as raised:
            events.extend(relay_events(relay + path, json={"model": "failing"}))
        error_event = events[-1]
        assert isinstance(error_event, ErrorReported)
        assert error_event.code == "provider_error"
        assert "overloaded" in error_event.message
        assert raised.value.error["code"] == "provider_error"  # type: ignore[index]
        assert raised.value.error["type"] == "ProviderError"  # type: ignore[index]
        assert raised.value.completion is not None
        assert raised.value.completion.choices[0].message.content == "Hello wo"

    def test_a_client_that_leaves_makes_the_relay_close_its_upstream(
        self, upstream: ReplayServer, relay: str, path: str
    ) -> None:
        """Closing the client side early closes the relay's upstream request."""
        events = relay_events(relay + path, json={"model": "slow"})
        for event in events:
            if event.type == "content.delta" and event.delta:
                break
        events.close()
        record = upstream.wait_for_disconnect(timeout=10)
        assert record.body["model"] == "slow"
        assert record.events_sent < SCENARIOS["slow"].event_count

    async def test_an_async_client_that_leaves_closes_the_upstream(
        self, upstream: ReplayServer, relay: str, path: str
    ) -> None:
        """The async client side leaving early closes the relay's upstream request too."""
        events = arelay_events(relay + path, json={"model": "slow"})
        async for event in events:
            if event.type == "content.delta" and event.delta:
                break
        await events.aclose()
        record = await asyncio.to_thread(upstream.wait_for_disconnect, 10)
        assert record.events_sent < SCENARIOS["slow"].event_count


class TestRelayWire:
    def test_the_wire_format(self, relay: str) -> None:
        """Events go out as ``id:``/``event:``/``data:`` frames numbered from 1, ending with ``event: done``."""
        response = httpx2.post(relay + "/async", json={"model": "scripted"}, timeout=10)
        assert response.headers["content-type"].startswith("text/event-stream")
        frames = [frame for frame in response.text.split("\n\n") if frame]
        first = frames[0].split("\n")
        assert first[0] == "id: 1"
        assert first[1].startswith("event: ")
        assert first[2].startswith("data: {")
        assert frames[-1] == 'event: done\ndata: {"ok": true}'
        ids = [int(frame.split("\n")[0].removeprefix("id: ")) for frame in frames[:-1]]
        assert ids == list(range(1, len(frames)))
        assert "event: chunk" not in response.text

    def test_a_body_that_is_not_a_json_object_is_refused(self, relay: str) -> None:
        """The endpoint answers 400 to a body that is not a JSON object; the client raises RelayError."""
        with pytest.raises(RelayError) as raised:
            list(relay_events(relay + "/sync", json=["not", "an", "object"]))
        assert raised.value.status_code == 400

    def test_a_relay_without_done_is_an_interruption(self) -> None:
        """A response that ends before ``event: done`` raises StreamInterrupted."""

        async def truncated(scope: Any, receive: Any, send: Any) -> None:
            headers = [(b"content-type", b"text/event-stream")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            body = b'id: 1\nevent: usage\ndata: {"type": "usage", "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}}\n\n'
            await send({"type": "http.response.body", "body": body})

        with AppServer(truncated) as server:
            events = relay_events(server.url, json={})
            assert next(events).type == "usage"
            with pytest.raises(StreamInterrupted):
                next(events)

    def test_the_endpoint_serves_on_its_own(self, upstream: ReplayServer) -> None:
        """Served as the whole app, lifespan included, the endpoint relays as it does under a route."""
        endpoint = relay_endpoint(
            lambda body: deltaflow.stream(client(upstream), model="scripted", messages=MESSAGES)
        )
        with AppServer(endpoint, lifespan="on") as server:
            events = list(relay_events(server.url, json={}))
        assert events[-1].type == "completion.done"
        assert "".join(event.delta for event in events if event.type == "content.delta") == (
            "Hello from upstream, relayed."
        )
