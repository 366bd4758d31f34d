"""The relay's wire and ``relay_events`` agree on every event the library can produce.

Chunks with values a provider may send off-type (a numeric ``finish_reason``, ``logprobs.content``
as an object) or text UTF-8 cannot encode (a lone surrogate) make events in process; each goes
through ``encode_event`` and ``EventDecoder`` (what the relay and its reader use) and must come back
equal; so must a tool loop's result events. One case of each also goes over a real relay on loopback,
read with ``relay_events``.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Route

import deltaflow
from deltaflow import sinks
from deltaflow.events import ToolCallResult
from deltaflow.pipeline import chunk_from_json
from deltaflow.recipes import AsyncToolLoopStream, atool_loop_stream, relay_endpoint, relay_events
from deltaflow.recipes._relay_wire import EventDecoder, encode_event
from deltaflow.replay import ReplayServer, Scenario
from tests.recipes import MESSAGES, aclient
from tests.recipes.test_relay import AppServer

ODD_VALUES = st.one_of(
    st.none(),
    st.integers(-10, 10),
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.text(max_size=5),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
TEXT = st.text(
    alphabet=st.one_of(st.characters(codec="utf-8"), st.sampled_from(["\ud800", "\udfff", "\udc80"])),
    max_size=8,
)
LOGPROB = {"token": "a", "logprob": -0.1, "bytes": [97], "top_logprobs": []}


def _chunk(delta: dict[str, Any], *, finish_reason: object = None, logprobs: object = None) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": logprobs}
    chunk = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", "choices": [choice]}
    return json.dumps(chunk)  # ensure_ascii: a lone surrogate travels as "\ud800", as providers send it


@st.composite
def odd_streams(draw: st.DrawFn) -> list[str]:
    """A stream with text that may hold lone surrogates, off-type logprobs and an off-type finish reason."""
    logprobs = draw(st.sampled_from([None, {"content": [LOGPROB]}, {"content": LOGPROB}, {"content": "x"}]))
    chunks = [_chunk({"role": "assistant", "content": ""})]
    for part in draw(st.lists(TEXT, min_size=1, max_size=3)):
        field = draw(st.sampled_from(["content", "reasoning_content", "refusal"]))
        chunks.append(_chunk({field: part}, logprobs=logprobs))
    finish = draw(st.one_of(st.sampled_from(["stop", "length"]), ODD_VALUES.filter(lambda v: v is not None)))
    chunks.append(_chunk({}, finish_reason=finish))
    return chunks


def _events(chunks: list[str]) -> list[Any]:
    stream = deltaflow.ChatStream([chunk_from_json(chunk) for chunk in chunks], dialect="generic")
    events: list[Any] = []
    # what ended the stream is an event too (the error event came first)
    with contextlib.suppress(deltaflow.errors.DeltaflowError):
        events.extend(stream)
    return events


def _dumped(event: Any) -> Any:
    return event.model_dump(mode="python", warnings=False)


@settings(max_examples=150, deadline=None)
@given(chunks=odd_streams())
def test_every_event_made_in_process_comes_back_equal_over_the_wire(chunks: list[str]) -> None:
    """encode_event then EventDecoder gives the same fields: no 'not a deltaflow event', no lost text."""
    decoder = EventDecoder()
    for event in _events(chunks):
        if event.type == "chunk":
            continue  # not relayed by default (quadratic), and its snapshot is a completion like done's
        back = decoder.decode(event.type, encode_event(event))
        assert type(back) is type(event)
        expected = _dumped(event)
        if event.type == "error":
            expected.pop("exception", None)
        assert _dumped(back) == expected


def test_a_numeric_finish_reason_and_a_lone_surrogate_cross_a_real_relay() -> None:
    """Over HTTP, read with relay_events: the same events, the same text, the stream completed."""
    chunks = [
        _chunk({"role": "assistant", "content": "a\ud800b"}, logprobs={"content": LOGPROB}),
        _chunk({}, finish_reason=5),
    ]
    local = [event for event in _events(chunks) if event.type != "chunk"]

    def make_stream(_body: dict[str, Any]) -> deltaflow.ChatStream[Any]:
        return deltaflow.ChatStream([chunk_from_json(chunk) for chunk in chunks], dialect="generic")

    app = Starlette(routes=[Route("/chat", relay_endpoint(make_stream), methods=["POST"])])
    with AppServer(app) as server:
        relayed = list(relay_events(f"{server.url}/chat", json={}))
    assert [event.type for event in relayed] == [event.type for event in local]
    assert [_dumped(event) for event in relayed] == [_dumped(event) for event in local]
    content = next(event for event in relayed if event.type == "content.done")
    assert content.content == "a\ud800b"
    assert next(event for event in relayed if event.type == "choice.done").finish_reason == 5


@settings(max_examples=100, deadline=None)
@given(
    content=TEXT,
    name=TEXT,
    call_id=TEXT,
    index=st.integers(0, 50),
    error=st.sampled_from([None, "tool_failed", "tool_arguments_invalid", "tool_unknown"]),
    error_type=st.one_of(st.none(), TEXT),
)
def test_a_tool_result_comes_back_equal_over_the_wire(
    content: str, name: str, call_id: str, index: int, error: Any, error_type: str | None
) -> None:
    """A tool loop's result event, whatever its text (lone surrogates too): the same fields back."""
    event = ToolCallResult(
        choice_index=0,
        index=index,
        tool_call_id=call_id,
        name=name,
        content=content,
        is_error=error is not None,
        error_code=error,
        error_type=error_type,
        exception=LookupError("kept in process") if error else None,
    )
    back = EventDecoder().decode(event.type, encode_event(event))
    assert type(back) is ToolCallResult
    assert back.exception is None
    assert _dumped(back) == _dumped(event)  # the exception stays in process (not serialised)


def test_a_tool_loop_served_by_the_relay_reads_back_as_the_observers_saw_it() -> None:
    """``atool_loop_stream`` from ``make_stream``: relay_events gives every step's events and both results."""

    def get_weather(city: str) -> str:
        if city == "Oslo":
            raise LookupError("no station in Oslo")
        return f"sunny in {city}"

    calls = [
        {"name": "get_weather", "arguments": {"city": "Paris"}},
        {"name": "get_weather", "arguments": {"city": "Oslo"}},
    ]

    def route(body: dict[str, Any]) -> Scenario:
        answered = any(message.get("role") == "tool" for message in body["messages"])
        return Scenario.scripted("Paris is sunny.") if answered else Scenario.scripted(None, tool_calls=calls)

    seen: list[Any] = []
    with ReplayServer(route) as upstream:

        def make_stream(body: dict[str, Any]) -> AsyncToolLoopStream:
            observer = sinks.callback(seen.append)
            return atool_loop_stream(
                aclient(upstream),
                body["messages"],
                {"get_weather": get_weather},
                model="m",
                observers=[observer],
            )

        app = Starlette(routes=[Route("/chat", relay_endpoint(make_stream), methods=["POST"])])
        with AppServer(app) as server:
            relayed = list(relay_events(f"{server.url}/chat", json={"messages": MESSAGES}))
    local = [event for event in seen if event.type != "chunk"]
    assert [event.type for event in relayed] == [event.type for event in local]
    assert [_dumped(event) for event in relayed] == [_dumped(event) for event in local]
    results = [event for event in relayed if isinstance(event, ToolCallResult)]
    assert [(result.content, result.is_error, result.error_type) for result in results] == [
        ("sunny in Paris", False, None),
        ("Error: LookupError: no station in Oslo", True, "LookupError"),
    ]
    assert [event.type for event in relayed].count("completion.done") == 2
