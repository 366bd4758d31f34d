"""Operators see only what flows through them: chains sharing one ``accumulate()`` never leak into each other."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel
from reactivex import Observable
from reactivex import operators as rx_ops

import deltaflow
from deltaflow import operators as ops
from deltaflow.errors import RefusalError
from deltaflow.events import BaseEvent
from tests.chunks import chunk
from tests.operators.test_stage import TOOLS, Point, mixed_stream

Operator = Callable[[Observable[Any]], Observable[Any]]


class Other(BaseModel):
    """A second model for the same content: fields of its own, validated differently."""

    x: float
    tags: tuple[str, ...] = ()


def run_alone(
    chunks: list[ChatCompletionChunk], *downstream: Operator
) -> tuple[list[dict[str, Any]], list[str]]:
    """The chain ``accumulate() + downstream`` subscribed on its own."""
    return collect(deltaflow.from_chunks(chunks).pipe(ops.accumulate(), *downstream))


def run_shared(
    chunks: list[ChatCompletionChunk], *branches: list[Operator]
) -> list[tuple[list[Any], list[str]]]:
    """One ``accumulate()`` published to every branch, each branch its own operators."""
    shared = deltaflow.from_chunks(chunks).pipe(ops.accumulate(), rx_ops.publish())
    outputs: list[tuple[list[BaseEvent], list[Exception]]] = []
    for branch in branches:
        events: list[BaseEvent] = []
        errors: list[Exception] = []
        shared.pipe(*branch).subscribe(events.append, errors.append)
        outputs.append((events, errors))
    shared.connect()
    return [dump(events, errors) for events, errors in outputs]


def collect(events: Observable[BaseEvent]) -> tuple[list[dict[str, Any]], list[str]]:
    seen: list[BaseEvent] = []
    errors: list[Exception] = []
    events.subscribe(seen.append, errors.append)
    return dump(seen, errors)


def dump(events: list[BaseEvent], errors: list[Exception]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every field of every event, lazy ones read (snapshots, parsed values), and the errors' shape."""
    described = [f"{type(error).__name__}: {error}; completion={_completion(error)}" for error in errors]
    return [event.model_dump(mode="json", exclude={"exception"}) for event in events], described


def _completion(error: Exception) -> object:
    completion = getattr(error, "completion", None)
    return completion.model_dump(mode="json") if completion is not None else None


def test_a_branch_that_parses_leaves_a_plain_branch_untouched() -> None:
    """The issue's case: the plain branch gets no parsed value, the parsing one gets its model."""
    chunks = mixed_stream()
    plain_alone = run_alone(chunks)
    parsed_alone = run_alone(chunks, ops.parse_partial_json(response_format=Point))

    plain, parsed = run_shared(chunks, [], [ops.parse_partial_json(response_format=Point)])

    assert plain == plain_alone
    assert parsed == parsed_alone
    # the check has teeth: the two differ exactly where parsing shows
    final_plain = plain[0][-1]["completion"]["choices"][0]["message"]["parsed"]
    final_parsed = parsed[0][-1]["completion"]["choices"][0]["message"]["parsed"]
    assert final_plain is None
    assert final_parsed == {"x": 42, "tags": ["a", "b"]}
    assert any(event.get("parsed") for event in parsed[0] if event["type"] == "content.delta")
    assert not any(event.get("parsed") for event in plain[0] if event["type"] == "content.delta")


def test_two_models_on_one_upstream_each_get_their_own() -> None:
    chunks = mixed_stream()
    first = [ops.parse_partial_json(response_format=Point, parsed_done=True)]
    second = [ops.parse_partial_json(response_format=Other)]

    shared = run_shared(chunks, first, second)

    assert shared == [run_alone(chunks, *first), run_alone(chunks, *second)]
    assert shared[0] != shared[1]


def test_tool_parsing_and_refusal_filters_stay_in_their_branch() -> None:
    """assemble_tool_calls and filter_refusals on one branch; nothing of it on the other."""
    chunks = mixed_stream()
    with_tools = [ops.assemble_tool_calls(tools=TOOLS), ops.filter_refusals("drop")]
    everything = [
        ops.check_finish_reasons(tools=TOOLS, response_format=Point),
        ops.assemble_tool_calls(tools=TOOLS),
        ops.parse_partial_json(response_format=Point),
    ]

    shared = run_shared(chunks, [], with_tools, everything)

    assert shared == [run_alone(chunks), run_alone(chunks, *with_tools), run_alone(chunks, *everything)]
    done = [event for event in shared[1][0] if event["type"] == "tool_calls.function.arguments.done"]
    assert done[0]["parsed_arguments"] == {"q": "paris"}
    plain_done = [event for event in shared[0][0] if event["type"] == "tool_calls.function.arguments.done"]
    assert plain_done[0]["parsed_arguments"] is None


def test_a_branch_that_raises_on_refusal_does_not_end_the_other() -> None:
    chunks = [
        chunk({"delta": {"role": "assistant", "refusal": "I can't"}}),
        chunk({"delta": {"refusal": " help."}}),
        chunk({"delta": {}, "finish_reason": "stop"}),
    ]
    raising = [ops.filter_refusals("raise")]

    kept, raised = run_shared(chunks, [ops.filter_refusals("keep")], raising)

    assert kept == run_alone(chunks)
    assert raised == run_alone(chunks, *raising)
    assert raised[1]
    assert raised[1][0].startswith(RefusalError.__name__)
    assert kept[0][-1]["type"] == "completion.done"
