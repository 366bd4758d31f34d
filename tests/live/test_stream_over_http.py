"""deltaflow.stream / astream drive the real openai client against the replay server on loopback."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import openai
import pytest

import deltaflow
from deltaflow.replay import ReplayServer, Scenario
from tests.fixtures import OPENAI_FIXTURES, load_openai_fixture, openai_fixture_names
from tests.oracle import OPENAI_EVENT_FIELDS

MESSAGES = [{"role": "user", "content": "replay"}]


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    """One server replaying every recorded openai-python stream, keyed by fixture name."""
    scenarios = {"scripted": Scenario.scripted("Hello there, world", tokens_per_second=200)}
    if OPENAI_FIXTURES.exists():
        scenarios.update({path.stem: Scenario.from_file(path) for path in OPENAI_FIXTURES.glob("*.sse")})
    with ReplayServer(scenarios) as running:
        yield running


def _client(server: ReplayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def _aclient(server: ReplayServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def _dumps(events: list) -> list[dict]:
    return [event.model_dump(exclude={"snapshot"} if event.type == "chunk" else set()) for event in events]


def _run(stream) -> tuple[list, object]:
    events, outcome = [], None
    try:
        events.extend(stream)
        outcome = stream.get_final_completion().model_dump()
    except Exception as error:  # the error class is part of the comparison
        outcome = type(error)
    return _dumps(events), outcome


@pytest.mark.parametrize("transport", ["fast", "openai"])
@pytest.mark.parametrize("name", openai_fixture_names())
def test_http_stream_equals_in_memory_chunks(server: ReplayServer, name: str, transport: str) -> None:
    """Over HTTP, every fixture gives the same events and final completion as its chunks in memory."""
    fixture = load_openai_fixture(name)
    expected = _run(
        deltaflow.ChatStream(fixture.chunks, tools=fixture.tools, response_format=fixture.response_format)
    )
    live = deltaflow.stream(
        _client(server),
        model=name,
        messages=MESSAGES,
        tools=fixture.tools,
        response_format=fixture.response_format,
        transport=transport,
    )
    assert _run(live) == expected


@pytest.mark.parametrize("name", openai_fixture_names())
async def test_async_http_stream_equals_in_memory_chunks(server: ReplayServer, name: str) -> None:
    """The async client and astream give the same events and final completion too."""
    fixture = load_openai_fixture(name)
    expected = _run(
        deltaflow.ChatStream(fixture.chunks, tools=fixture.tools, response_format=fixture.response_format)
    )
    events, outcome = [], None
    async with deltaflow.astream(
        _aclient(server),
        model=name,
        messages=MESSAGES,
        tools=fixture.tools,
        response_format=fixture.response_format,
    ) as stream:
        try:
            async for event in stream:
                events.append(event)
            outcome = (await stream.get_final_completion()).model_dump()
        except Exception as error:  # the error class is part of the comparison
            outcome = type(error)
    assert (_dumps(events), outcome) == expected


@pytest.mark.parametrize("name", openai_fixture_names())
def test_http_stream_equals_openais_own_helper(server: ReplayServer, name: str) -> None:
    """Against the same server, events of openai's types and the final completion equal openai's .stream()."""
    fixture = load_openai_fixture(name)
    client = _client(server)
    kwargs = {"model": name, "messages": MESSAGES}
    if fixture.tools is not None:
        kwargs["tools"] = fixture.tools
    if fixture.response_format is not None:
        kwargs["response_format"] = fixture.response_format
    theirs, their_outcome = [], None
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Pydantic serializer warnings")
        try:
            with client.chat.completions.stream(**kwargs) as stream:
                theirs.extend(event.model_dump() for event in stream)
                their_outcome = stream.get_final_completion().model_dump()
        except Exception as error:  # the error class is part of the comparison
            their_outcome = type(error)
    ours, our_outcome = [], None
    try:
        with deltaflow.stream(client, **kwargs) as stream:
            ours.extend(
                event.model_dump(include=OPENAI_EVENT_FIELDS[event.type])
                for event in stream
                if event.type in OPENAI_EVENT_FIELDS
            )
            our_outcome = stream.get_final_completion().model_dump()
    except Exception as error:  # the error class is part of the comparison
        our_outcome = type(error)
    assert ours == theirs
    assert our_outcome == their_outcome


class TestRequest:
    def test_request_is_lazy_and_asks_for_usage(self, server: ReplayServer) -> None:
        """Nothing is sent until the stream is consumed; then include_usage is requested."""
        before = len(server.requests)
        pairs = []
        stream = deltaflow.stream(_client(server), model="scripted", messages=MESSAGES, dialect="openai")
        stream.on("content.delta", lambda delta, snapshot: pairs.append(snapshot))
        assert len(server.requests) == before
        stream.until_done()
        assert pairs[-1] == "Hello there, world"
        assert server.requests[-1].body["stream_options"] == {"include_usage": True}
        assert server.requests[-1].body["stream"] is True

    def test_usage_is_not_requested_from_unknown_providers(self, server: ReplayServer) -> None:
        """An unknown base URL gets the generic dialect, which does not send stream_options (some reject it)."""
        deltaflow.stream(_client(server), model="scripted", messages=MESSAGES).until_done()
        assert "stream_options" not in server.requests[-1].body

    def test_callers_stream_options_win(self, server: ReplayServer) -> None:
        """A caller's own stream_options are sent as given."""
        deltaflow.stream(
            _client(server), model="scripted", messages=MESSAGES, stream_options={"include_usage": False}
        ).until_done()
        assert server.requests[-1].body["stream_options"] == {"include_usage": False}

    def test_pydantic_response_format_is_sent_as_strict_schema(self, server: ReplayServer) -> None:
        """A model response_format goes out as openai's strict json_schema, as openai's helper sends it."""
        from tests.conformance.test_openai_fixtures import load_openai_fixture as load  # noqa: PLC0415

        fixture = load("parse_pydantic_model") if OPENAI_FIXTURES.exists() else pytest.skip("no fixtures")
        deltaflow.stream(
            _client(server),
            model="scripted",
            messages=MESSAGES,
            response_format=fixture.response_format,
            parse_errors="keep",  # the scripted answer is not a Location: only the request matters here
        ).until_done()
        sent = server.requests[-1].body["response_format"]
        assert sent["type"] == "json_schema"
        assert sent["json_schema"]["strict"] is True
        assert sent["json_schema"]["name"] == "Location"


class TestEarlyClose:
    @pytest.mark.parametrize("transport", ["fast", "openai"])
    def test_break_closes_the_connection_within_100_ms(self, server: ReplayServer, transport: str) -> None:
        """Leaving the with block early: the server sees the connection closed within 100 ms."""
        with deltaflow.stream(
            _client(server), model="scripted", messages=MESSAGES, transport=transport
        ) as stream:
            for event in stream:
                if event.type == "content.delta" and event.delta:
                    break
        record = server.wait_for_disconnect(5)
        assert record.disconnected
        assert record.events_sent < 8

    async def test_async_break_closes_the_connection_within_100_ms(self, server: ReplayServer) -> None:
        """The async stream closes its response as promptly when left early."""
        async with deltaflow.astream(_aclient(server), model="scripted", messages=MESSAGES) as stream:
            async for event in stream:
                if event.type == "content.delta" and event.delta:
                    break
        record = server.wait_for_disconnect(5)
        assert record.disconnected
        assert record.events_sent < 8

    async def test_disposing_the_observable_closes_the_response(self, server: ReplayServer) -> None:
        """An Rx subscriber that disposes its subscription closes the HTTP response."""
        import asyncio  # noqa: PLC0415

        request = deltaflow.AsyncChunkRequest(_aclient(server), {"model": "scripted", "messages": MESSAGES})
        first = asyncio.Event()
        subscription = (
            deltaflow.from_chunks(request)
            .pipe(deltaflow.operators.to_events())
            .subscribe(lambda event: first.set() if event.type == "content.delta" else None)
        )
        await asyncio.wait_for(first.wait(), 5)
        subscription.dispose()
        record = await asyncio.to_thread(server.wait_for_disconnect, 5)
        assert record.disconnected


class TestAsyncForms:
    async def test_async_with_await_works_as_well(self, server: ReplayServer) -> None:
        """`async with await deltaflow.astream(...)` and the handler form without a block both work."""
        async with await deltaflow.astream(_aclient(server), model="scripted", messages=MESSAGES) as stream:
            completion = await stream.get_final_completion()
        assert completion.choices[0].message.content == "Hello there, world"
        snapshots = []
        stream = deltaflow.astream(_aclient(server), model="scripted", messages=MESSAGES)
        stream.on("content.delta", lambda delta, snapshot: snapshots.append(snapshot))
        await stream.until_done()
        assert snapshots[-1] == "Hello there, world"

    async def test_openai_transport_async(self, server: ReplayServer) -> None:
        """The openai transport works with the async client too."""
        stream = deltaflow.astream(_aclient(server), model="scripted", messages=MESSAGES, transport="openai")
        completion = await stream.get_final_completion()
        assert completion.choices[0].message.content == "Hello there, world"
        assert completion.usage is not None


class TestCloseFromElsewhere:
    def test_close_from_a_handler_closes_the_response(self, server: ReplayServer) -> None:
        """stream.close() inside an .on handler ends the iteration quietly and closes the connection."""
        stream = deltaflow.stream(_client(server), model="scripted", messages=MESSAGES)
        stream.on("content.delta", lambda delta, snapshot: stream.close() if delta else None)
        seen = [event.type for event in stream]
        assert "completion.done" not in seen
        record = server.wait_for_disconnect(5)
        assert record.disconnected

    def test_close_from_another_thread_closes_the_response(self, server: ReplayServer) -> None:
        """Another thread's close() stops a stream blocked in a read, without an exception."""
        import threading  # noqa: PLC0415

        stream = deltaflow.stream(_client(server), model="scripted", messages=MESSAGES)
        first = threading.Event()

        def consume() -> None:
            for event in stream:
                if event.type == "content.delta" and event.delta:
                    first.set()

        worker = threading.Thread(target=consume)
        worker.start()
        assert first.wait(5)
        stream.close()
        worker.join(5)
        assert not worker.is_alive()
        assert server.wait_for_disconnect(5).disconnected

    async def test_close_from_another_task_closes_the_response(self, server: ReplayServer) -> None:
        """Another task's close() stops an async stream waiting for a read and closes the connection."""
        import asyncio  # noqa: PLC0415

        stream = deltaflow.astream(_aclient(server), model="scripted", messages=MESSAGES)
        first = asyncio.Event()

        async def consume() -> list[str]:
            seen = []
            async for event in stream:
                seen.append(event.type)
                if event.type == "content.delta" and event.delta:
                    first.set()
            return seen

        consumer = asyncio.create_task(consume())
        await asyncio.wait_for(first.wait(), 5)
        await stream.close()
        seen = await asyncio.wait_for(consumer, 5)
        assert "completion.done" not in seen
        record = await asyncio.to_thread(server.wait_for_disconnect, 5)
        assert record.disconnected
