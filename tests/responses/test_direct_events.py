"""deltaflow's events built straight from the Responses events equal those of the chat chunks they stand for.

The oracle is the same ``ResponseStream`` with its direct path turned off (``_state.direct = None``, the
private switch only this test touches): every Responses event then becomes chat-completion chunks that
deltaflow's chat operators turn into events, as before the direct path existed. On every stream the other
tests read (scripted, named servers', fetched recordings, and hypothesis's mutations of them), both give the
same events, dumped field for field whether read at once or at the end (lazy snapshots stay as of their
event), the same chat completion snapshots along the way, and the same end: final response and completion,
or the same error carrying the same partial completion.
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from deltaflow import responses
from deltaflow.events import BaseEvent, ErrorReported
from tests.responses.scripted import fetched, numbered, scripted, vllm_reasoning
from tests.responses.servers import (
    groq_reasoning,
    ollama_reasoning,
    ollama_text_then_tool_call,
    openrouter_reasoning,
    recorded,
    vllm_call_without_arguments,
)
from tests.responses.test_hostile import mutated


class Weather(BaseModel):
    city: str


def _interleaved_calls() -> list[dict[str, Any]]:
    """Two function calls whose arguments stream in turns (both items added first), a parallel-calls shape."""
    events = scripted(None, calls=[("f", '{"a":"one"}'), ("get_weather", '{"city":"Paris"}')])
    added = [event for event in events if event["type"] == "response.output_item.added"]
    deltas = [event for event in events if event["type"] == "response.function_call_arguments.delta"]
    first = [event for event in deltas if event["output_index"] == 0]
    second = [event for event in deltas if event["output_index"] == 1]
    turns = [event for pair in zip(first, second, strict=False) for event in pair]
    rest = [event for event in events[2:] if event not in added and event not in deltas]
    return numbered([*events[:2], *added, *turns, *rest])


STREAMS: dict[str, list[dict[str, Any]]] = {
    "text": scripted("The quick brown fox jumps over the lazy dog."),
    "empty-text": scripted(""),
    "reasoning-then-text": scripted("42.", reasoning="Think: six times seven."),
    "reasoning-text-calls": scripted("Hello, world.", reasoning="plan it", calls=[("f", '{"a":1}')]),
    "tool-calls": scripted(None, calls=[("get_weather", '{"city":"Paris"}'), ("get_time", '{"tz":"CET"}')]),
    "interleaved-calls": _interleaved_calls(),
    "refusal": scripted(None, refusal="I can't help with that."),
    "unicode": scripted("héllo \u2028 wörld 🌍 " * 5, chunk_size=3),
    "incomplete": scripted('{"city":"Par', end="incomplete"),
    "incomplete-filtered": scripted("Some text", end="incomplete", incomplete_reason="content_filter"),
    "failed": scripted("half an answ", end="failed"),
    "structured": scripted('{"city":"Paris"}', chunk_size=2),
    "vllm-reasoning-parts": vllm_reasoning("The user says hello. Say hello in one word.", "Hello!"),
    "vllm-call-without-arguments": vllm_call_without_arguments("noop"),
    "ollama-reasoning": ollama_reasoning("The user greets me; greet back.", "Hello there, friend."),
    "ollama-text-then-tool-call": ollama_text_then_tool_call(
        "Let me check.", "get_weather", '{"city":"Paris"}'
    ),
    "groq-reasoning": groq_reasoning("A greeting calls for a greeting.", "Hi from Groq."),
    "openrouter-reasoning": openrouter_reasoning("A greeting calls for a greeting.", "Hi from OpenRouter."),
    **{
        name: events
        for name in ("xai-issue-17936-stream", "lmstudio-tool-call.1")
        if (events := recorded(name)) is not None
    },
    **{f"fetched-{name}": events for name, events in fetched().items()},
}
TOOLS = [
    {"type": "function", "name": "get_weather", "parameters": {"type": "object"}, "strict": False},
    {"type": "function", "name": "f", "parameters": {"type": "object"}},
]
OPTIONS: dict[str, dict[str, Any]] = {
    "plain": {},
    "tools": {"tools": TOOLS},
    "strict-tool": {"tools": [{"type": "function", "name": "get_weather", "parameters": {}, "strict": True}]},
    "keep-parse-errors": {"parse_errors": "keep", "text_format": Weather},
}


class _Counting:
    """The chain's inlet, counting the chat chunks pushed into it."""

    def __init__(self, inlet: Any) -> None:
        self.inlet = inlet
        self.chunks = 0

    def on_next(self, chunk: Any) -> None:
        self.chunks += 1
        self.inlet.on_next(chunk)

    def on_error(self, error: Exception) -> None:
        self.inlet.on_error(error)

    def on_completed(self) -> None:
        self.inlet.on_completed()


def _dump(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, ErrorReported):
        return {**_dump_model(value), "exception": _error(value.exception)}
    return _dump_model(value)


def _dump_model(model: Any) -> Any:
    return model.model_dump(mode="json", warnings=False)


def _error(error: BaseException | None) -> Any:
    if error is None:
        return None
    return {
        "class": type(error).__name__,
        "message": str(error),
        "completion": _dump(getattr(error, "completion", None)),
        "response": _dump(getattr(error, "response", None)),
    }


def _stream(events: list[dict[str, Any]], direct: bool, options: dict[str, Any]) -> Any:
    stream = responses.ResponseStream([responses.event_from_dict(event) for event in events], **options)
    if not direct:
        stream._state.direct = None  # the oracle: every event through the chat chunks
    stream._inlet = _Counting(stream._inlet)  # to see that the direct path ran
    return stream


def _run(events: list[dict[str, Any]], direct: bool, options: dict[str, Any], read: str) -> dict[str, Any]:
    """Everything observable of one run: events, snapshots along the way, the end, and chunks pushed."""
    stream = _stream(events, direct, options)
    seen: list[Any] = []
    snapshots: list[Any] = []
    error: BaseException | None = None
    try:
        for number, event in enumerate(stream):
            seen.append(_dump(event) if read == "now" else event)
            if read == "snapshots" and number % 3 == 0 and isinstance(event, BaseEvent):
                snapshots.append(_dump(stream.current_completion_snapshot))
        final: Any = (_dump(stream.get_final_response()), _dump(stream.get_final_completion()))
    except Exception as raised:
        error = raised
        final = None
    if read != "now":
        seen = [_dump(event) for event in seen]
    return {
        "events": seen,
        "snapshots": snapshots,
        "final": final,
        "error": _error(error),
        "chunks": stream._inlet.chunks,
    }


def _same(events: list[dict[str, Any]], options: dict[str, Any], read: str) -> tuple[int, int]:
    direct, oracle = _run(events, True, options, read), _run(events, False, options, read)
    chunks = direct.pop("chunks"), oracle.pop("chunks")
    assert direct == oracle
    return chunks


@pytest.mark.parametrize("read", ["now", "late", "snapshots"])
@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("name", sorted(STREAMS))
def test_direct_events_equal_the_chat_chunks_events(name: str, option: str, read: str) -> None:
    """Events, snapshots read at once or late, snapshots along the way and the end: as the chat chunks give."""
    _same(STREAMS[name], OPTIONS[option], read)


@pytest.mark.parametrize("option", ["plain", "tools"])
def test_the_direct_path_runs_on_text_reasoning_and_arguments(option: str) -> None:
    """Text, reasoning and (no tool parsed) arguments deltas reach the chat chain as a few catch-up chunks."""
    arguments = '{"a":"' + "x" * 100 + '"}'
    events = scripted(
        "The quick brown fox jumps over the lazy dog. " * 10,
        reasoning="Think it through. " * 10,
        calls=[("f", arguments), ("get_weather", arguments)],
    )
    deltas = sum(event["type"].endswith(".delta") for event in events)
    direct, oracle = _same(events, OPTIONS[option], "now")
    assert oracle > deltas
    assert direct < 16


def test_parsed_arguments_take_the_chat_chunks() -> None:
    """A strict tool's arguments are parsed by the chat chain, which sees every fragment."""
    events = scripted(None, calls=[("get_weather", '{"city":"' + "x" * 100 + '"}')])
    arguments = sum(event["type"] == "response.function_call_arguments.delta" for event in events)
    direct, oracle = _same(events, OPTIONS["strict-tool"], "now")
    assert direct == oracle > arguments


def test_a_structured_output_takes_the_chat_chunks() -> None:
    """With a ``text_format`` the content is parsed by the chat chain, which sees every delta."""
    events = STREAMS["structured"]
    direct, oracle = _same(events, {"text_format": Weather}, "now")
    assert direct == oracle


def test_an_observer_or_a_chunk_handler_gets_every_chunk() -> None:
    """A sink subscribed, or a handler of ``chunk`` events, gets one ``chunk`` per chat chunk, as before."""
    events = scripted("The quick brown fox jumps over the lazy dog.", reasoning="Think it through.")
    deltas = sum(event["type"].endswith(".delta") for event in events)

    def chunks(direct: bool, attach: Callable[[Any, list[Any]], None]) -> list[Any]:
        stream = _stream(events, direct, {})
        got: list[Any] = []
        attach(stream, got)
        list(stream)
        return [_dump(event) for event in got]

    def subscribe(stream: Any, got: list[Any]) -> None:
        class Sink:
            def on_next(self, event: Any) -> None:
                got.append(event)

            def on_error(self, error: Exception) -> None: ...

            def on_completed(self) -> None: ...

        stream.subscribe(Sink())

    def on_chunk(stream: Any, got: list[Any]) -> None:
        stream.on("chunk", got.append)

    for attach in (subscribe, on_chunk):
        direct, oracle = chunks(True, attach), chunks(False, attach)
        assert direct == oracle
        assert sum(event["type"] == "chunk" for event in direct) > deltas


def test_deltaflow_events_only_are_the_chat_chunks_events() -> None:
    """``openai_events=False`` hands out the ``chunk`` events: every delta is a chunk, as before."""
    events = STREAMS["reasoning-then-text"]
    direct, oracle = _same(events, {"openai_events": False}, "now")
    assert direct == oracle


def test_async_twin_gives_the_same() -> None:
    """``AsyncResponseStream`` shares the direct path: the same events as the chat chunks give."""

    async def run(direct: bool) -> list[Any]:
        async def source() -> AsyncIterator[Any]:
            for event in STREAMS["reasoning-text-calls"]:
                yield responses.event_from_dict(event)

        stream = responses.AsyncResponseStream(source(), tools=TOOLS)
        if not direct:
            stream._state.direct = None  # the oracle
        seen = [_dump(event) async for event in stream]
        return [*seen, _dump(await stream.get_final_completion())]

    assert asyncio.run(run(True)) == asyncio.run(run(False))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(), st.sampled_from(sorted(OPTIONS)), st.sampled_from(["now", "late", "snapshots"]))
def test_mutated_streams_give_the_same(events: list[dict[str, Any]], option: str, read: str) -> None:
    """Dropped, duplicated, swapped, retyped or broken events: the same events and end either way."""
    _same(copy.deepcopy(events), OPTIONS[option], read)
