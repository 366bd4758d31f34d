"""The facade itself: resuming after a sequence number, async handlers, closing early, the end of a body."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai.lib.streaming.responses import ResponseStreamState

from deltaflow import errors, responses
from deltaflow.replay import ReplayServer, Scenario
from tests.responses.scripted import scripted, served

TEXT = "Resumed streams skip what the reader already has."


def _raw(events: list[dict[str, Any]]) -> list[Any]:
    return [responses.event_from_dict(event) for event in events]


def test_starting_after_hands_out_only_later_events() -> None:
    """``starting_after=n`` (a resumed background response): openai's events numbered after n, as openai's."""
    raw = _raw(scripted(TEXT))
    state = ResponseStreamState(input_tools=openai.omit, text_format=openai.omit)
    expected = [event for item in raw for event in state.handle_event(item) if event.sequence_number > 5]
    stream = responses.ResponseStream(_raw(scripted(TEXT)), starting_after=5, deltaflow_events=False)
    got = list(stream)
    assert [e.model_dump(warnings=False) for e in got] == [e.model_dump(warnings=False) for e in expected]
    assert stream.get_final_response().output_text == TEXT


def test_resuming_needs_a_response_id_and_nothing_else() -> None:
    """As openai: ``response_id``/``starting_after`` with new-response parameters, or without an id, is refused."""
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-test")
    with pytest.raises(ValueError, match="Cannot provide both"):
        responses.stream(client, response_id="resp_1", model="m", input="hi")
    with pytest.raises(ValueError, match="id must be provided"):
        responses.stream(client, starting_after=3)
    with pytest.raises(ValueError, match="input must be provided"):
        responses.stream(client, model="m")
    with pytest.raises(TypeError, match="Cannot mix and match"):
        responses.stream(client, model="m", input="hi", text_format=dict, text={"format": {"type": "text"}})


def test_async_handlers_are_awaited_in_order() -> None:
    """On ``AsyncResponseStream``, an async ``.on`` handler is awaited before its event is handed out."""
    seen: list[str] = []

    async def events() -> AsyncIterator[Any]:
        for event in _raw(scripted(TEXT, chunk_size=10)):
            yield event

    async def run() -> list[str]:
        async def on_delta(event: Any) -> None:
            await asyncio.sleep(0)
            seen.append(f"handled {event.delta}")

        order: list[str] = []
        stream = responses.AsyncResponseStream(events()).on("content.delta", on_delta)
        async for event in stream:
            if event.type == "content.delta":
                order.append(seen[-1])
        assert (await stream.get_final_response()).output_text == TEXT
        return order

    order = asyncio.run(run())
    assert order == [f"handled {TEXT[i : i + 10]}" for i in range(0, len(TEXT), 10)]


def test_closing_early_closes_the_response() -> None:
    """Leaving the ``with`` block mid-stream closes the HTTP response: the server sees the client leave."""
    slow = served(scripted("word " * 200, chunk_size=5), tokens_per_second=200)
    with ReplayServer(slow) as running:
        client = openai.OpenAI(base_url=running.base_url, api_key="sk-test", max_retries=0)
        with responses.stream(client, model="m", input="hi") as stream:
            for event in stream:
                if event.type == "response.output_text.delta":
                    break
        record = running.wait_for_disconnect()
        assert record.events_sent < 200
        with pytest.raises(errors.StreamClosedError):
            stream.get_final_response()


def test_a_body_that_is_not_an_event_stream_is_typed() -> None:
    """A server answering a Responses request with a chat stream: typed errors, never untyped ones."""
    with ReplayServer(Scenario.scripted("chat chunks, not response events")) as running:
        client = openai.OpenAI(base_url=running.base_url, api_key="sk-test", max_retries=0)
        stream = responses.stream(client, model="m", input="hi")
        with pytest.raises(errors.StreamContractError):
            list(stream)


def _serve_once(body: bytes) -> tuple[str, threading.Thread]:
    """A one-request HTTP server on loopback answering 200 with ``body`` whole (Content-Length), then closing."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        with listener, listener.accept()[0] as connection:
            connection.settimeout(5)
            request = b""
            while b"\r\n\r\n" not in request:
                request += connection.recv(65536)
            head, _, rest = request.partition(b"\r\n\r\n")
            length = int(
                next(
                    line.split(b":")[1]
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length")
                )
            )
            while len(rest) < length:
                rest += connection.recv(65536)
            headers = f"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {len(body)}\r\nconnection: close\r\n\r\n"
            connection.sendall(headers.encode() + body)

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    return f"http://127.0.0.1:{listener.getsockname()[1]}/v1", thread


def test_a_body_cut_mid_event_is_stream_interrupted() -> None:
    """The body ends in the middle of an event's line: ``StreamInterrupted``, what arrived kept."""
    events = scripted(TEXT)
    body = "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events[:6])
    body += 'event: response.output_text.delta\ndata: {"type":"response.output_te'
    url, thread = _serve_once(body.encode())
    client = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0)
    with pytest.raises(errors.StreamInterrupted) as raised:
        list(responses.stream(client, model="m", input="hi"))
    thread.join(5)
    assert raised.value.completion is not None
    assert raised.value.completion.choices[0].message.content == TEXT[:8]
