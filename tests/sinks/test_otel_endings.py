"""sinks.otel over real HTTP: the span ends exactly once, with the right status and usage, however a stream ends.

Each test streams from the replay server through the real openai client, ends the stream one way, and
reads the span and the metrics back from the SDK's in-memory exporters. "Exactly once" is checked on
both: one span exported, one duration recorded.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from opentelemetry.trace import SpanKind, StatusCode

import deltaflow
from deltaflow.errors import ProviderError, StreamInterrupted, StreamTimeout
from deltaflow.recipes import relay_endpoint, relay_events
from deltaflow.replay import FAULT_HEADER, ReplayServer, Scenario
from tests.recipes.test_relay import AppServer
from tests.sinks.otel_capture import Telemetry, telemetry

__all__ = ["telemetry"]

MESSAGES = [{"role": "user", "content": "endings"}]
DURATION = "gen_ai.client.operation.duration"
TEXT = "The quick brown fox jumps over the lazy dog"
CHUNK_SIZE = 5


SCENARIO = Scenario.scripted(TEXT, chunk_size=CHUNK_SIZE)


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    """A replay server with a scripted answer; faults are chosen per request by header."""
    with ReplayServer(SCENARIO) as running:
        yield running


API_KEY = "sk-otel-endings-0123456789"


def _client(server: ReplayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0)


def _aclient(server: ReplayServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=0)


def _stream(server: ReplayServer, telemetry: Telemetry, fault: str | None = None, **options: Any) -> Any:
    headers = {FAULT_HEADER: fault} if fault else {}
    stream = deltaflow.stream(
        _client(server), model="replay-1", messages=MESSAGES, extra_headers=headers, **options
    )
    return stream.subscribe(telemetry.sink(base_url=server.base_url))


def _astream(server: ReplayServer, telemetry: Telemetry, fault: str | None = None, **options: Any) -> Any:
    headers = {FAULT_HEADER: fault} if fault else {}
    stream = deltaflow.astream(
        _aclient(server), model="replay-1", messages=MESSAGES, extra_headers=headers, **options
    )
    return stream.subscribe(telemetry.sink(base_url=server.base_url))


def _ended_once(telemetry: Telemetry) -> Any:
    """The one span, after checking the duration was recorded once too."""
    span = telemetry.only_span()
    assert sum(point.count for point in telemetry.histogram(DURATION)) == 1
    return span


def _assert_closed(span: Any, outcome: str = "closed") -> None:
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["deltaflow.stream.outcome"] == outcome
    assert "error.type" not in span.attributes
    # a choice that never finished reads `error`, as the conventions ask; no usage had come yet
    assert span.attributes["gen_ai.response.finish_reasons"] == ("error",)
    assert "gen_ai.usage.output_tokens" not in span.attributes


def test_completed(server: ReplayServer, telemetry: Telemetry) -> None:
    """Drained to the end: status unset, the final usage and finish reason, time to first chunk."""
    with _stream(server, telemetry) as stream:
        stream.until_done()
    span = _ended_once(telemetry)
    assert span.kind is SpanKind.CLIENT
    assert span.name == "chat replay-1"
    assert span.status.status_code is StatusCode.UNSET
    attributes = span.attributes
    assert attributes["deltaflow.stream.outcome"] == "completed"
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.response.model"] == "replay-1"
    assert attributes["gen_ai.usage.input_tokens"] > 0
    assert attributes["gen_ai.usage.output_tokens"] > 0
    assert attributes["gen_ai.request.stream"] is True
    assert attributes["server.address"] == "127.0.0.1"
    assert attributes["server.port"] == server.port
    assert 0 < attributes["gen_ai.response.time_to_first_chunk"] <= (span.end_time - span.start_time) / 1e9
    # nothing of the request's credentials anywhere: attributes, metric attributes
    recorded = [*attributes.values(), *(point.attributes for point in telemetry.histogram(DURATION))]
    assert API_KEY not in repr(recorded)
    assert "Bearer" not in repr(recorded)


def test_break_out_of_the_loop(server: ReplayServer, telemetry: Telemetry) -> None:
    """``break`` in a ``with`` block once usage is known: closed, status unset, that usage kept."""
    with _stream(server, telemetry) as stream:
        for event in stream:
            if event.type == "usage":
                break
        assert telemetry.spans() == ()  # still open inside the block: the loop could resume
    span = _ended_once(telemetry)
    assert span.status.status_code is StatusCode.UNSET
    assert span.attributes["deltaflow.stream.outcome"] == "closed"
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    usage = SCENARIO.chunks()[-1]["usage"]
    assert span.attributes["gen_ai.usage.input_tokens"] == usage["prompt_tokens"]
    assert span.attributes["gen_ai.usage.output_tokens"] == usage["completion_tokens"]
    (point,) = telemetry.histogram(DURATION)
    assert "error.type" not in point.attributes


def test_break_before_usage_arrives(server: ReplayServer, telemetry: Telemetry) -> None:
    """``break`` mid-text: closed, the choice unfinished, no usage made up."""
    with _stream(server, telemetry) as stream:
        for event in stream:
            if event.type == "content.delta" and event.delta:
                break
    _assert_closed(_ended_once(telemetry))


def test_close(server: ReplayServer, telemetry: Telemetry) -> None:
    """``close()`` called from inside the loop, no ``with``: closed, once."""
    stream = _stream(server, telemetry)
    for event in stream:
        if event.type == "content.delta" and event.delta:
            stream.close()
    span = _ended_once(telemetry)
    _assert_closed(span)
    assert span.attributes["deltaflow.stream.chunks"] == 2  # the role chunk, then the first text


def test_leaving_with_early(server: ReplayServer, telemetry: Telemetry) -> None:
    """A ``with`` block left after one event, without iterating to the end: closed, once."""

    def first_event() -> str:
        with _stream(server, telemetry) as stream:
            return str(next(stream).type)

    assert first_event() == "chunk"
    span = _ended_once(telemetry)
    _assert_closed(span)
    assert span.attributes["deltaflow.stream.chunks"] == 1


def test_exception_in_the_consumers_loop(server: ReplayServer, telemetry: Telemetry) -> None:
    """An exception raised in the loop leaves the ``with`` block: failed with that exception's type."""

    class ConsumerError(Exception):
        pass

    with pytest.raises(ConsumerError), _stream(server, telemetry) as stream:
        for event in stream:
            if event.type == "content.delta" and event.delta:
                raise ConsumerError("the consumer gave up")
    span = _ended_once(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"].endswith("ConsumerError")
    assert span.attributes["deltaflow.stream.outcome"] == "failed"
    assert "the consumer gave up" in span.status.description
    (point,) = telemetry.histogram(DURATION)
    assert point.attributes["error.type"] == span.attributes["error.type"]


async def test_exception_in_the_async_consumers_loop(server: ReplayServer, telemetry: Telemetry) -> None:
    """The same through ``async with``: failed with the consumer's exception."""
    with pytest.raises(KeyError):
        async with _astream(server, telemetry) as stream:
            async for event in stream:
                if event.type == "content.delta" and event.delta:
                    raise KeyError(event.delta)
    span = _ended_once(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "KeyError"


async def test_break_out_of_async_with(server: ReplayServer, telemetry: Telemetry) -> None:
    """``break`` out of an ``async with`` block: closed, once."""
    async with _astream(server, telemetry) as stream:
        async for event in stream:
            if event.type == "content.delta" and event.delta:
                break
    _assert_closed(_ended_once(telemetry))


async def _reading_after_three_chunks(stream: Any) -> asyncio.Task[None]:
    """A task iterating ``stream``, once three chunks have come (the provider then stalls)."""
    three_chunks = asyncio.Event()

    async def consume() -> None:
        chunks = 0
        async for event in stream:
            chunks += event.type == "chunk"
            if chunks == 3:
                three_chunks.set()

    task = asyncio.ensure_future(consume())
    await asyncio.wait_for(three_chunks.wait(), 10)
    return task


async def test_task_cancellation(server: ReplayServer, telemetry: Telemetry) -> None:
    """A task cancelled while it waits for the next chunk (no ``async with``): cancelled, status unset."""
    stream = _astream(server, telemetry, fault="stall-after=3;stall=30")
    task = await _reading_after_three_chunks(stream)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    span = _ended_once(telemetry)
    _assert_closed(span, outcome="cancelled")
    assert span.attributes["deltaflow.stream.chunks"] == 3


async def test_close_from_another_task_mid_read(server: ReplayServer, telemetry: Telemetry) -> None:
    """``close()`` from another task while a read waits: closed, not failed by the read it cut short."""
    stream = _astream(server, telemetry, fault="stall-after=3;stall=30")
    task = await _reading_after_three_chunks(stream)
    await asyncio.sleep(0.05)  # the consumer is back in the read by now; closing cuts it either way
    await stream.close()
    await asyncio.wait_for(task, 10)
    span = _ended_once(telemetry)
    _assert_closed(span)
    assert span.attributes["deltaflow.stream.chunks"] == 3


@pytest.mark.parametrize(
    ("fault", "error_class", "idle_timeout"),
    [
        pytest.param("error-after=3", ProviderError, None, id="provider-error-mid-stream"),
        pytest.param("drop-after=3", StreamInterrupted, None, id="dropped-connection"),
        pytest.param("stall-after=3;stall=5", StreamTimeout, 0.3, id="idle-timeout"),
    ],
)
def test_a_failure_mid_stream(
    server: ReplayServer,
    telemetry: Telemetry,
    fault: str,
    error_class: type[Exception],
    idle_timeout: float | None,
) -> None:
    """The stream's typed error: status error, ``error.type`` its class, what arrived before it kept."""
    stream = _stream(server, telemetry, fault=fault, idle_timeout=idle_timeout)
    with pytest.raises(error_class):
        stream.until_done()
    span = _ended_once(telemetry)
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == error_class.__qualname__
    assert span.attributes["deltaflow.stream.outcome"] == "failed"
    assert span.attributes["deltaflow.stream.chunks"] == 3
    assert span.attributes["gen_ai.response.model"] == "replay-1"
    assert span.attributes["gen_ai.response.finish_reasons"] == ("error",)
    assert span.attributes["gen_ai.response.time_to_first_chunk"] > 0


async def test_async_dropped_connection(server: ReplayServer, telemetry: Telemetry) -> None:
    """The async facade reports a dropped connection the same way."""
    with pytest.raises(StreamInterrupted):
        async with _astream(server, telemetry, fault="drop-after=3") as stream:
            await stream.until_done()
    span = _ended_once(telemetry)
    assert span.attributes["error.type"] == "StreamInterrupted"
    assert span.status.status_code is StatusCode.ERROR


def test_garbage_collected_unfinished(server: ReplayServer, telemetry: Telemetry) -> None:
    """A stream read part way, never closed, then dropped: the span ends when it is collected."""
    stream = _stream(server, telemetry)
    for _ in range(3):
        next(stream)
    assert telemetry.spans() == ()
    del stream
    gc.collect()
    span = _ended_once(telemetry)
    _assert_closed(span)


@pytest.mark.parametrize("facade", ["sync", "async"])
def test_on_a_relay_producer(server: ReplayServer, telemetry: Telemetry, facade: str) -> None:
    """A relay's stream carries the sink: relayed to the end, the span is the upstream's, completed."""
    app = relay_endpoint(
        lambda body: _stream(server, telemetry) if facade == "sync" else _astream(server, telemetry)
    )
    with AppServer(app) as relay:
        events = list(relay_events(relay.url, json={}))
    assert events[-1].type == "completion.done"
    span = _ended_once(telemetry)
    assert span.attributes["deltaflow.stream.outcome"] == "completed"
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)


def test_a_relay_whose_client_leaves(telemetry: Telemetry) -> None:
    """The relay's client goes away mid-stream: the relay cancels its pump, the span ends, cancelled."""
    slow = Scenario.scripted("word " * 400, chunk_size=5, tokens_per_second=50)
    with ReplayServer(slow) as upstream:
        app = relay_endpoint(lambda body: _astream(upstream, telemetry))
        with AppServer(app) as relay:
            events = relay_events(relay.url, json={})
            for event in events:
                if event.type == "content.delta" and event.delta:
                    break
            events.close()
            upstream.wait_for_disconnect(timeout=10)
            span = _wait_for_span(telemetry)
    _assert_closed(span, outcome="cancelled")
    assert 0 < span.attributes["deltaflow.stream.chunks"] < slow.event_count


def _wait_for_span(telemetry: Telemetry, timeout: float = 10) -> Any:
    """The one span, once the relay's server thread has ended it."""
    deadline = time.monotonic() + timeout
    while not telemetry.spans() and time.monotonic() < deadline:
        time.sleep(0.01)
    return _ended_once(telemetry)


def test_on_a_durable_producer(server: ReplayServer, telemetry: Telemetry) -> None:
    """A stream produced into the durable log carries the sink too: the span ends once, completed."""
    from deltaflow.durable import MemoryEventLog, durable_endpoint  # noqa: PLC0415

    app = durable_endpoint(lambda body: _astream(server, telemetry), MemoryEventLog())
    with AppServer(app) as relay:
        events = list(relay_events(relay.url, json={}))
    assert events[-1].type == "completion.done"
    span = _wait_for_span(telemetry)
    assert span.attributes["deltaflow.stream.outcome"] == "completed"
    assert span.attributes["gen_ai.response.finish_reasons"] == ("stop",)
