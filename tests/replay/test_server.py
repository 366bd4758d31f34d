"""Server behaviour: disconnect detection, request records, routing, lifecycle."""

from __future__ import annotations

import asyncio
import threading

import openai
import pytest

from deltaflow.replay import Fault, ReplayServer, Scenario

# The close is noticed at once, not when the server next writes: the stream stalls after two events for far
# longer than the generous wait, so only the disconnect watcher can end the wait, and no event follows the close.
STALLED = Scenario.scripted(
    "one two three four five six", chunk_size=2, tokens_per_second=20, fault=Fault.stall_after(2, seconds=600)
)


def test_early_close_is_noticed_mid_stream() -> None:
    """Closing a stream after two chunks is noticed server-side while it stalls, and nothing more is sent."""
    with (
        ReplayServer(STALLED) as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
    ):
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        chunks = iter(stream)
        next(chunks)
        next(chunks)
        stream.close()
        record = server.wait_for_disconnect(timeout=30)
    assert record.disconnected
    assert record.events_sent == 2
    assert record.wait()
    assert record.finished_at is not None


async def test_async_early_close_is_noticed_mid_stream() -> None:
    """Breaking out of an async stream and closing it is noticed server-side while it stalls."""
    async with (
        ReplayServer(STALLED) as server,
        openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
    ):
        stream = await client.chat.completions.create(model="m", messages=[], stream=True)
        received = 0
        async for _ in stream:
            received += 1
            if received == 2:
                break
        await stream.close()
        record = await asyncio.to_thread(server.wait_for_disconnect, 30)
    assert record.disconnected
    assert record.events_sent == 2


def test_disconnect_during_ttft_is_noticed_before_any_event() -> None:
    """A client that leaves while the server waits out ``ttft`` is noticed before anything was sent."""
    with (
        ReplayServer(Scenario.scripted("late", ttft=30)) as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
    ):
        client.chat.completions.create(model="m", messages=[], stream=True).close()
        record = server.wait_for_disconnect()
    assert record.events_sent == 0
    assert record.disconnected


def test_request_is_recorded_with_headers_and_body() -> None:
    """The record keeps method, path, the Authorization header and the JSON body."""
    with (
        ReplayServer(Scenario.scripted("ok")) as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-secret-123", max_retries=0) as client,
    ):
        list(
            client.chat.completions.create(
                model="gpt-x", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
        record = server.requests[-1]
        assert record.wait()
    assert record.method == "POST"
    assert record.path == "/v1/chat/completions"
    assert record.headers["authorization"] == "Bearer sk-secret-123"
    assert record.body == {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    assert record.status == 200
    assert record.events_sent == Scenario.scripted("ok").event_count
    assert not record.disconnected
    assert record.finished_at is not None
    assert record.finished_at >= record.started_at


def test_unknown_model_is_a_404_not_found() -> None:
    """A model missing from the scenario mapping raises ``openai.NotFoundError`` with ``model_not_found``."""
    with (
        ReplayServer({"known": Scenario.scripted("hi")}) as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
    ):
        with pytest.raises(openai.NotFoundError) as excinfo:
            client.chat.completions.create(model="unknown", messages=[], stream=True)
        known = list(client.chat.completions.create(model="known", messages=[], stream=True))
        statuses = [record.status for record in server.requests]
    assert excinfo.value.code == "model_not_found"
    assert excinfo.value.type == "invalid_request_error"
    assert "unknown" in excinfo.value.message
    assert known
    assert statuses == [404, 200]


def test_api_key_when_set_is_checked_like_openai() -> None:
    """With ``api_key=``, a wrong key is openai's ``AuthenticationError`` (401 ``invalid_api_key``); the right one streams."""
    with (
        ReplayServer(Scenario.scripted("welcome"), api_key="sk-right") as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-wrong", max_retries=0) as wrong,
        openai.OpenAI(base_url=server.base_url, api_key="sk-right", max_retries=0) as right,
    ):
        with pytest.raises(openai.AuthenticationError) as excinfo:
            wrong.chat.completions.create(model="m", messages=[], stream=True)
        chunks = list(right.chat.completions.create(model="m", messages=[], stream=True))
        statuses = [record.status for record in server.requests]
    assert excinfo.value.status_code == 401
    assert excinfo.value.code == "invalid_api_key"
    assert "".join(choice.delta.content or "" for chunk in chunks for choice in chunk.choices) == "welcome"
    assert statuses == [401, 200]


def test_callable_routes_on_the_request_body() -> None:
    """A routing function sees the request body; returning None is a 404."""

    def route(body: dict[str, object]) -> Scenario | None:
        return Scenario.scripted(f"echo {body['model']}") if body["model"] != "missing" else None

    with (
        ReplayServer(route) as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
    ):
        completion = client.chat.completions.create(model="abc", messages=[])
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="missing", messages=[])
    assert completion.choices[0].message.content == "echo abc"


def test_path_without_v1_is_served() -> None:
    """``/chat/completions`` answers too, for clients configured with the bare root."""
    with (
        ReplayServer(Scenario.scripted("root")) as server,
        openai.OpenAI(base_url=server.url, api_key="sk-test", max_retries=0) as client,
    ):
        completion = client.chat.completions.create(model="m", messages=[])
        path = server.requests[-1].path
    assert completion.choices[0].message.content == "root"
    assert path == "/chat/completions"


def test_body_that_is_not_json_is_a_400() -> None:
    """A request body that is not JSON gets an OpenAI-style 400."""
    with (
        ReplayServer(Scenario.scripted("x")) as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
        pytest.raises(openai.BadRequestError, match="not JSON"),
    ):
        client.post("/chat/completions", content=b"{oops", cast_to=object)


def test_stop_ends_a_stalled_stream_and_leaves_no_thread() -> None:
    """Stopping mid-stall cuts the stream (the client sees an incomplete body) and joins the server thread."""
    server = ReplayServer(Scenario.scripted("Hello world", fault=Fault.stall_after(1, seconds=60)))
    with server, openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client:
        chunks = iter(client.chat.completions.create(model="m", messages=[], stream=True))
        next(chunks)
        server.stop()
        with pytest.raises(openai.APIConnectionError):
            next(chunks)
    record = server.requests[-1]
    assert record.wait(0)
    assert record.events_sent == 1
    assert not any(thread.name.startswith("deltaflow-replay") for thread in threading.enumerate())


async def test_async_context_manager_serves() -> None:
    """``async with ReplayServer(...)`` serves an ``AsyncOpenAI`` client."""
    async with (
        ReplayServer(Scenario.scripted("async hello")) as server,
        openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
    ):
        completion = await client.chat.completions.create(model="m", messages=[])
    assert completion.choices[0].message.content == "async hello"


def test_servers_get_distinct_free_ports_and_can_restart() -> None:
    """Two servers run side by side on different ports; a stopped server streams again after a restart."""
    first, second = ReplayServer(Scenario.scripted("a")), ReplayServer(Scenario.scripted("b"))
    with first, second:
        assert first.port != second.port
        assert first.base_url == f"http://127.0.0.1:{first.port}/v1"
    with first, openai.OpenAI(base_url=first.base_url, api_key="sk-test", max_retries=0) as client:
        chunks = list(client.chat.completions.create(model="m", messages=[], stream=True))
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices) == "a"
    assert len(first.requests) == 1


def test_starting_twice_is_refused() -> None:
    """``start`` on a running server raises instead of leaking a second thread."""
    with ReplayServer(Scenario.scripted("x")) as server, pytest.raises(RuntimeError, match="already running"):
        server.start()
