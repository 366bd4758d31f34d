"""Operator fusion: chained deltaflow operators behave exactly as when reactivex sits between them."""

from __future__ import annotations

from typing import Any

import openai
import pytest
import reactivex as rx
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel
from reactivex import Observable
from reactivex import operators as rx_ops

from deltaflow import ChatStream
from deltaflow.errors import RefusalError
from deltaflow.events import BaseEvent
from deltaflow.operators import (
    accumulate,
    assemble_tool_calls,
    check_finish_reasons,
    filter_refusals,
    normalize,
    parse_partial_json,
)
from deltaflow.operators._stage import Fused
from deltaflow.pipeline._driver import Driver
from tests.chunks import chunk, text_stream


class Point(BaseModel):
    x: int
    tags: list[str]


TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "lookup",
            "strict": True,
            "parameters": {
                "type": "object",
                "properties": {"q": {"type": "string"}},
                "required": ["q"],
                "additionalProperties": False,
            },
        },
    }
]


def mixed_stream() -> list[ChatCompletionChunk]:
    """Structured content in odd cuts, a tool call on a second choice, a usage chunk."""
    content = text_stream('{"x', '": 4', "2, ", '"tags": ["a', '", "b"]', "}")
    tool = [
        chunk(
            {
                "index": 1,
                "delta": {
                    "role": "assistant",
                    "tool_calls": [
                        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "lookup"}}
                    ],
                },
            }
        ),
        chunk({"index": 1, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"q": "pa'}}]}}),
        chunk({"index": 1, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": 'ris"}'}}]}}),
        chunk({"index": 1, "delta": {}, "finish_reason": "tool_calls"}),
    ]
    return [*content[:3], *tool[:2], *content[3:6], *tool[2:], *content[6:]]


def chain(*, separated: bool) -> list[Any]:
    """``to_events``' operators, with an identity ``map`` between each pair when ``separated``."""
    operators = [
        normalize("generic"),
        accumulate(),
        check_finish_reasons(tools=TOOLS, response_format=Point),
        assemble_tool_calls(tools=TOOLS),
        parse_partial_json(response_format=Point, parsed_done=True),
        filter_refusals("drop"),
    ]
    if not separated:
        return operators
    spaced: list[Any] = []
    for operator in operators:
        spaced += [operator, rx_ops.map(lambda event: event)]
    return spaced


def collect(source: Observable[Any], operators: list[Any]) -> tuple[list[BaseEvent], list[Exception]]:
    events: list[BaseEvent] = []
    errors: list[Exception] = []
    source.pipe(*operators).subscribe(events.append, errors.append)
    # read every lazy field now, as of its event
    return [event.materialize() for event in events], errors


def test_fused_chain_gives_the_events_of_the_separated_one() -> None:
    chunks = mixed_stream()
    fused, fused_errors = collect(rx.from_iterable(chunks), chain(separated=False))
    separated, separated_errors = collect(rx.from_iterable(chunks), chain(separated=True))

    assert fused == separated
    assert not fused_errors
    assert not separated_errors
    types = [event.type for event in fused]
    assert "content.parsed.delta" in types
    assert "content.parsed.done" in types
    assert "tool_calls.function.arguments.done" in types
    assert fused[-1].type == "completion.done"


def test_each_subscription_builds_its_own_stages() -> None:
    chunks = text_stream('{"x": 1, ', '"tags": []}')
    events = rx.from_iterable(chunks).pipe(accumulate(), parse_partial_json(response_format=Point))
    assert isinstance(events, Fused)

    first, _ = collect(events, [])
    second, _ = collect(events, [])

    assert first == second
    done = next(event for event in first if event.type == "content.done")
    assert done.parsed == Point(x=1, tags=[])
    # each subscription accumulates on its own: the events are not the same objects
    assert all(mine is not theirs for mine, theirs in zip(first, second, strict=True))


def test_a_stage_that_ends_the_stream_lets_nothing_through_after_it() -> None:
    # the finish chunk also carries content: openai fails before that chunk's events, and so must
    # the stage, although accumulate upstream goes on handing it the chunk's other events
    chunks = [
        *text_stream('{"x": 1', finish_reason="stop")[:2],
        chunk({"delta": {"content": ", "}, "finish_reason": "length"}),
    ]

    events, errors = collect(rx.from_iterable(chunks), chain(separated=False))

    assert [type(error) for error in errors] == [openai.LengthFinishReasonError]
    assert events[-1].type == "error"
    assert [event.type for event in events].count("error") == 1
    assert all(getattr(event, "delta", None) != ", " for event in events)


def test_chat_stream_over_a_fused_chain_ends_at_the_error_event() -> None:
    chunks = [
        *text_stream('{"x": 1', finish_reason="stop")[:2],
        chunk({"delta": {"content": ", "}, "finish_reason": "length"}),
        chunk({"delta": {"content": "never read"}}),
    ]
    seen: list[BaseEvent] = []

    with pytest.raises(openai.LengthFinishReasonError), ChatStream(chunks, response_format=Point) as stream:
        seen.extend(stream)

    assert seen[-1].type == "error"
    assert all(getattr(event, "delta", None) not in {", ", "never read"} for event in seen)


def test_driver_runs_a_chain_that_is_not_fused_all_the_way() -> None:
    chunks = text_stream('{"x": 3, "tags": ["q"]}')

    def fused(source: Observable[Any]) -> Observable[BaseEvent]:
        return source.pipe(accumulate(), parse_partial_json(response_format=Point))

    def broken(source: Observable[Any]) -> Observable[BaseEvent]:
        # a reactivex operator first: the driver must subscribe, not connect stages
        return source.pipe(
            rx_ops.map(lambda item: item), accumulate(), parse_partial_json(response_format=Point)
        )

    outputs = []
    for make in (fused, broken):
        driver = Driver(make)
        for item in chunks:
            driver.push(item)
        driver.complete()
        assert driver.completed
        outputs.append([event.materialize() for event in driver.events])

    assert outputs[0] == outputs[1]
    assert outputs[0][-1].type == "completion.done"


@pytest.mark.parametrize("fused", [True, False])
def test_the_error_events_that_do_not_end_the_stream_come_out_with_their_chunk(fused: bool) -> None:
    """Fused or subscribed, each chunk's error events are among the events the driver collects for it."""
    tools = [
        {"type": "function", "function": {"name": "f", "strict": True, "parameters": {"type": "object"}}}
    ]
    chunks = [
        chunk({"index": 0, "delta": {"role": "assistant", "content": '{"x": 1'}}),
        chunk({"index": 0, "delta": {"content": "]"}}),  # not JSON: an error event, the stream goes on
        chunk(
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{oops"},
                        }
                    ]
                },
            }
        ),
        chunk({"index": 0, "delta": {}, "finish_reason": "stop"}),
    ]
    first = [] if fused else [rx_ops.map(lambda item: item)]

    def make(source: Observable[Any]) -> Observable[BaseEvent]:
        return source.pipe(
            *first,
            accumulate(),
            assemble_tool_calls(tools=tools),
            parse_partial_json(response_format=Point),
        )

    driver = Driver(make)
    reported_per_chunk = []
    for item in chunks:
        driver.push(item)
        errors = [event for event in driver.events if event.type == "error"]
        reported_per_chunk.append([event.code for event in errors])  # type: ignore[attr-defined]
        driver.events.clear()
    assert reported_per_chunk == [[], ["content_invalid"], [], ["tool_arguments_invalid"]]


def test_after_a_stage_ends_the_stream_mid_chunk_the_stages_above_take_nothing_more() -> None:
    # choice 0 refuses and finishes while choice 1 gets the rest of its JSON in the same chunk:
    # filter_refusals("raise") ends the stream at refusal.done, and parse_partial_json, above it,
    # must not go on to parse choice 1's delta
    chunks = [
        chunk(
            {"index": 0, "delta": {"role": "assistant", "refusal": "no"}},
            {"index": 1, "delta": {"role": "assistant", "content": '{"x": 1'}},
        ),
        chunk({"index": 0, "delta": {}, "finish_reason": "stop"}, {"index": 1, "delta": {"content": "2}"}}),
        chunk({"index": 1, "delta": {}, "finish_reason": "stop"}),
    ]
    stream = ChatStream(chunks, response_format=Point, refusals="raise")

    with pytest.raises(RefusalError):
        stream.until_done()

    snapshot = stream.current_completion_snapshot
    assert snapshot.choices[1].message.content == '{"x": 12}'  # accumulated: the chunk was handled
    assert snapshot.choices[1].message.parsed == {"x": 1}  # but not parsed after the end
