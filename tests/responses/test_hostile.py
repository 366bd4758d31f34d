"""Hostile event streams: mutated recordings end in typed errors or are tolerated, never untyped."""

from __future__ import annotations

import copy
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deltaflow import errors, responses
from tests.responses.scripted import fetched, numbered, response, scripted, vllm_reasoning

RECORDINGS = [
    scripted("Hello, hostile world.", reasoning="plan", calls=[("f", '{"a":1}')]),
    scripted(None, refusal="no"),
    scripted('{"a":[1,2]}', end="incomplete"),
    vllm_reasoning("think", "ok"),
    *fetched().values(),
]
TYPED = (errors.DeltaflowError, openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError)
"""What a hostile stream may end in: deltaflow's errors, and openai's where openai raises them."""

_JUNK = st.one_of(
    st.none(), st.integers(-2, 99), st.text(max_size=5), st.lists(st.none(), max_size=2), st.just({})
)


@st.composite
def mutated(draw: st.DrawFn) -> list[dict[str, Any]]:
    events = copy.deepcopy(draw(st.sampled_from(RECORDINGS)))
    for _ in range(draw(st.integers(1, 4))):
        if not events:
            break
        index = draw(st.integers(0, len(events) - 1))
        action = draw(
            st.sampled_from(["drop", "duplicate", "swap", "null_item", "retype", "reindex", "unset", "junk"])
        )
        event = events[index]
        if action == "drop":
            del events[index]
        elif action == "duplicate":
            events.insert(index, copy.deepcopy(event))
        elif action == "swap" and index + 1 < len(events):
            events[index], events[index + 1] = events[index + 1], events[index]
        elif action == "null_item":
            event["item"] = None
        elif action == "retype":
            event["type"] = draw(
                st.sampled_from(["response.brand_new.delta", "response.output_text.delta", "error"])
            )
        elif action == "reindex":
            event["output_index"] = draw(st.integers(0, 99))
        elif action in ("unset", "junk"):
            keys = sorted(key for key in event if key != "type")
            if keys:
                key = draw(st.sampled_from(keys))
                if action == "unset":
                    del event[key]
                else:
                    event[key] = draw(_JUNK)
    return events


def _consume(events: list[dict[str, Any]]) -> None:
    stream = responses.ResponseStream([responses.event_from_dict(event) for event in events])
    try:
        list(stream)
        stream.get_final_response()
    except TYPED:
        pass


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_streams_end_typed_or_tolerated(events: list[dict[str, Any]]) -> None:
    """Dropped, duplicated, swapped, null, retyped, reindexed or broken events: never an untyped error."""
    _consume(events)


def test_output_item_added_missing_is_tolerated() -> None:
    """vLLM once skipped ``output_item.added`` (vllm-project/agentic-api#66): the text still arrives."""
    events = [
        e
        for e in scripted("no item announced")
        if e["type"] not in ("response.output_item.added", "response.content_part.added")
    ]
    stream = responses.ResponseStream([responses.event_from_dict(event) for event in events])
    got = list(stream)
    assert stream.get_final_response().output_text == "no item announced"
    assert next(e for e in got if e.type == "content.done").content == "no item announced"


def test_null_item_is_tolerated() -> None:
    """``item: null`` (openai-python#3125) is not handed out and breaks nothing."""
    events = scripted("fine")
    events.insert(
        2, {"type": "response.output_item.added", "output_index": 5, "item": None, "sequence_number": 99}
    )
    stream = responses.ResponseStream([responses.event_from_dict(event) for event in events])
    list(stream)
    assert stream.get_final_response().output_text == "fine"


def test_events_before_response_created_are_tolerated() -> None:
    """A server that never sends ``response.created``: openai's helper raises RuntimeError, deltaflow reads on."""
    events = scripted("late start")[2:]
    with pytest.raises(RuntimeError):
        state = openai.lib.streaming.responses.ResponseStreamState(
            input_tools=openai.omit, text_format=openai.omit
        )
        for event in events:
            state.handle_event(responses.event_from_dict(event))
    stream = responses.ResponseStream([responses.event_from_dict(event) for event in events])
    list(stream)
    assert stream.get_final_response().output_text == "late start"


def test_text_for_a_function_call_is_a_contract_error() -> None:
    """Text deltas for an output that is a function call: ``ResponseContractError``, the response kept."""
    events = scripted(None, calls=[("f", "{}")])
    events.insert(
        3,
        {
            "type": "response.output_text.delta",
            "output_index": 0,
            "content_index": 0,
            "item_id": "fc_0",
            "delta": "x",
            "logprobs": [],
        },
    )
    stream = responses.ResponseStream([responses.event_from_dict(event) for event in numbered(events)])
    with pytest.raises(responses.ResponseContractError) as raised:
        list(stream)
    assert raised.value.response is not None
    assert raised.value.response.output[0].type == "function_call"


def test_not_an_event_is_a_contract_error() -> None:
    """JSON that is not an object with a type: ``ResponseContractError`` keeping what was sent."""
    with pytest.raises(responses.ResponseContractError) as raised:
        responses.event_from_json("[1, 2]")
    assert raised.value.event == [1, 2]
    with pytest.raises(responses.ResponseContractError):
        responses.event_from_json("{not json")
    assert responses.event_from_dict({"type": "x"}).type == "x"
    assert response()["status"] == "in_progress"
