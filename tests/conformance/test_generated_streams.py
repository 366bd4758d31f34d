"""Generated OpenAI-conformant streams: deltaflow equals openai's ChatCompletionStreamState on each."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings

from deltaflow import ChatStream
from tests.oracle import assert_same, run_deltaflow, run_openai
from tests.strategies import GeneratedStream, chat_streams, content_streams, tool_call_streams

# openai's ParsedChatCompletionMessage types `parsed` loosely, so dumping a parsed model warns (its typing)
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")


def _events_and_final(stream: GeneratedStream) -> tuple[list[Any], Any]:
    """Deltaflow's events (snapshots read as each arrives) and its final completion."""
    chat = ChatStream(iter(stream.chunks()), tools=stream.tools, response_format=stream.response_format)
    events = [event.materialize() for event in chat]
    return events, chat.get_final_completion()


@settings(max_examples=300, deadline=None)
@given(chat_streams())
def test_generated_streams_match_openai(stream: GeneratedStream) -> None:
    """On any conformant stream, deltaflow's events, final completion and error class equal openai's."""
    expected = run_openai(stream.chunks(), stream.tools, stream.response_format)
    actual = run_deltaflow(stream.chunks(), stream.tools, stream.response_format)
    assert_same(expected, actual)


@settings(max_examples=150, deadline=None)
@given(content_streams())
def test_content_deltas_build_the_snapshots_and_final_content(stream: GeneratedStream) -> None:
    """Each content.delta carries the sent delta and the prefix so far; the final content is their join."""
    sent: dict[int, list[str]] = defaultdict(list)
    for chunk in stream.chunk_dicts:
        for choice in chunk["choices"]:
            if choice["delta"].get("content") is not None:
                sent[choice["index"]].append(choice["delta"]["content"])

    events, completion = _events_and_final(stream)
    received: dict[int, list[str]] = defaultdict(list)
    for event in events:
        if event.type == "content.delta":
            received[event.choice_index].append(event.delta)
            assert event.snapshot == "".join(received[event.choice_index])
    assert received == sent
    assert [choice.message.content for choice in completion.choices] == [
        "".join(sent[plan.index]) for plan in stream.choices
    ]
    assert [plan.text for plan in stream.choices] == ["".join(sent[plan.index]) for plan in stream.choices]


@settings(max_examples=150, deadline=None)
@given(tool_call_streams())
def test_tool_call_done_events_carry_the_generated_calls(stream: GeneratedStream) -> None:
    """Each arguments.done event names its choice and a tool call with the generated id, name, arguments."""
    events, completion = _events_and_final(stream)
    done: dict[int, list[Any]] = defaultdict(list)
    for event in events:
        if event.type == "tool_calls.function.arguments.done":
            done[event.choice_index].append(event)

    assert sorted(done) == [plan.index for plan in stream.choices]
    for plan in stream.choices:
        assert [event.index for event in done[plan.index]] == [call.index for call in plan.tool_calls]
        for event, call in zip(done[plan.index], plan.tool_calls, strict=True):
            expected_parsed = call.tool.parsed_arguments(call.arguments)
            assert (event.name, event.arguments) == (call.tool.name, call.arguments)
            assert event.parsed_arguments == expected_parsed
            tool_call = event.tool_call
            assert (tool_call.id, tool_call.type) == (call.id, "function")
            assert (tool_call.function.name, tool_call.function.arguments) == (call.tool.name, call.arguments)
            assert tool_call.function.parsed_arguments == expected_parsed
        final_calls = completion.choices[plan.index].message.tool_calls or []
        assert [(c.id, c.function.name, c.function.arguments) for c in final_calls] == [
            (call.id, call.tool.name, call.arguments) for call in plan.tool_calls
        ]
