"""Every recorded openai-python stream: deltaflow equals openai's ChatCompletionStreamState."""

from __future__ import annotations

import contextlib

import pytest

from deltaflow import ChatStream
from tests.fixtures import load_openai_fixture, openai_fixture_names
from tests.oracle import assert_same, run_deltaflow, run_openai


@pytest.mark.parametrize("name", openai_fixture_names())
def test_events_and_final_completion_match_openai(name: str) -> None:
    """Events of openai's types, their order and fields, the final completion and the error class match."""
    fixture = load_openai_fixture(name)
    expected = run_openai(fixture.chunks, fixture.tools, fixture.response_format)
    actual = run_deltaflow(fixture.chunks, fixture.tools, fixture.response_format)
    assert_same(expected, actual)


@pytest.mark.parametrize("name", openai_fixture_names())
def test_final_completion_matches_recorded_expectations(name: str) -> None:
    """Per-choice content, refusal, parsed value, tool calls and error match openai's own tests."""
    fixture = load_openai_fixture(name)
    stream = ChatStream(iter(fixture.chunks), tools=fixture.tools, response_format=fixture.response_format)
    expected_error = fixture.expected["error"]
    if expected_error:
        with pytest.raises(Exception) as raised:
            stream.get_final_completion()
        assert type(raised.value).__name__ == expected_error
        assert raised.value.completion is not None  # type: ignore[attr-defined]
        return
    completion = stream.get_final_completion()
    for expected_choice in fixture.expected["choices"]:
        choice = completion.choices[expected_choice["index"]]
        message = choice.message
        assert choice.finish_reason == expected_choice["finish_reason"]
        assert message.content == expected_choice["content"]
        assert message.refusal == expected_choice["refusal"]
        parsed = message.parsed.model_dump() if hasattr(message.parsed, "model_dump") else message.parsed
        assert parsed == expected_choice["parsed"]
        if expected_choice["tool_calls"] is None:
            assert message.tool_calls is None
        else:
            calls = [
                {
                    "index": expected["index"],
                    "id": call.id,
                    "type": call.type,
                    "name": call.function.name,
                    "arguments": call.function.arguments,
                    "parsed_arguments": (
                        call.function.parsed_arguments.model_dump()
                        if hasattr(call.function.parsed_arguments, "model_dump")
                        else call.function.parsed_arguments
                    ),
                }
                for call, expected in zip(
                    message.tool_calls or [], expected_choice["tool_calls"], strict=True
                )
            ]
            assert calls == expected_choice["tool_calls"]


def _collect(fixture, read_now: bool) -> list:
    stream = ChatStream(iter(fixture.chunks), tools=fixture.tools, response_format=fixture.response_format)
    wanted = ("chunk", "content.delta", "refusal.delta", "tool_calls.function.arguments.delta")
    kept: list = []
    with contextlib.suppress(Exception):  # error fixtures end early; the events before still count
        kept.extend(_snapshot_of(event) if read_now else event for event in stream if event.type in wanted)
    return kept


def _snapshot_of(event) -> object:
    if event.type == "chunk":
        return event.snapshot.model_dump()
    if event.type == "tool_calls.function.arguments.delta":
        return (event.arguments, event.parsed_arguments)
    return (event.snapshot, getattr(event, "parsed", None))


@pytest.mark.parametrize("name", openai_fixture_names())
def test_snapshots_read_late_show_their_own_moment(name: str) -> None:
    """Snapshots read after the stream ended equal those read as each event arrived."""
    fixture = load_openai_fixture(name)
    read_at_once = _collect(fixture, read_now=True)
    late = [_snapshot_of(event) for event in _collect(fixture, read_now=False)]
    assert late == read_at_once
    assert read_at_once, "the fixture produced no events to compare"
