"""Responses servers that bend the stream, hand-made after the shapes their own threads show.

No public recording of these servers' Responses streams was found; each test names the thread that shows
the shape. Each is read over real HTTP from the replay server, and compared with openai's helper where it works.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest

from deltaflow import responses
from deltaflow.events import BaseEvent
from deltaflow.replay import ReplayServer
from tests.responses.scripted import numbered, openai_helper, response, scripted, served

TEXT = "Servers bend the stream; the answer arrives whole."


def _without_sequence_numbers() -> list[dict[str, Any]]:
    """No ``sequence_number`` anywhere (litellm#28899, Blaizzy/mlx-vlm#494, ggml-org/llama.cpp#24957)."""
    return [{k: v for k, v in event.items() if k != "sequence_number"} for event in scripted(TEXT)]


def _only_done_events() -> list[dict[str, Any]]:
    """``created``, ``output_text.done``, ``completed``: no item, no part, no delta (Sophomoresty/gemini-web2api#57)."""
    final = scripted(TEXT)[-1]
    done = {
        "type": "response.output_text.done",
        "item_id": "msg_1",
        "output_index": 0,
        "content_index": 0,
        "text": TEXT,
    }
    return numbered([{"type": "response.created", "response": response()}, done, final])


def _without_text_done() -> list[dict[str, Any]]:
    """No ``output_text.done`` (ogx-ai/ogx#5309, LlamaStack)."""
    return numbered(e for e in scripted(TEXT) if e["type"] != "response.output_text.done")


def _lifecycle_without_output() -> list[dict[str, Any]]:
    """``in_progress`` without ``output``, items without ``status`` (diegosouzapw/OmniRoute#13964)."""
    events = scripted(TEXT)
    events[1]["response"] = {k: v for k, v in events[1]["response"].items() if k != "output"}
    for event in events:
        if isinstance(event.get("item"), dict):
            event["item"] = {k: v for k, v in event["item"].items() if k != "status"}
    return events


def _arguments_only_at_done() -> list[dict[str, Any]]:
    """A function call whose arguments come only with ``function_call_arguments.done``, no delta."""
    return numbered(
        e
        for e in scripted(None, calls=[("f", '{"x":1}')])
        if e["type"] != "response.function_call_arguments.delta"
    )


SHAPES = {
    "no-sequence-numbers": _without_sequence_numbers(),
    "only-done-events": _only_done_events(),
    "no-text-done": _without_text_done(),
    "lifecycle-without-output": _lifecycle_without_output(),
    "arguments-only-at-done": _arguments_only_at_done(),
}


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    with ReplayServer({name: served(events) for name, events in SHAPES.items()}) as running:
        yield openai.OpenAI(base_url=running.base_url, api_key="sk-test", max_retries=0)


@pytest.mark.parametrize(
    "model", ["no-sequence-numbers", "only-done-events", "no-text-done", "lifecycle-without-output"]
)
def test_the_answer_arrives_whole(client: openai.OpenAI, model: str) -> None:
    """The final response, the chat view and deltaflow's content all hold the whole text."""
    with responses.stream(client, model=model, input="hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    assert final.output_text == TEXT
    (done,) = [e for e in events if e.type == "completion.done"]
    assert done.completion.choices[0].message.content == TEXT
    assert "".join(e.delta for e in events if e.type == "content.delta") == TEXT
    # where openai's helper works, its events are ours, field for field
    expected, oracle, failure = openai_helper(client, model)
    if failure is None:
        ours = [e.model_dump(warnings=False) for e in events if not isinstance(e, BaseEvent)]
        assert ours == [e.model_dump(warnings=False) for e in expected]
        assert oracle.output_text == TEXT


def test_openai_helper_crashes_where_deltaflow_reads_on(client: openai.OpenAI) -> None:
    """What openai's helper does with a stream of only done events, pinned: a bare RuntimeError, the text lost."""
    _, _, failure = openai_helper(client, "only-done-events")
    assert isinstance(failure, RuntimeError)
    assert "before receiving its output item" in str(failure)


def test_arguments_only_at_done_are_a_whole_tool_call(client: openai.OpenAI) -> None:
    """Arguments only in ``function_call_arguments.done``: the tool call is whole, parsed, in the chat view too."""
    with responses.stream(client, model="arguments-only-at-done", input="hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    (call,) = [e for e in events if e.type == "tool_calls.function.arguments.done"]
    assert call.arguments == '{"x":1}'
    assert final.output[0].arguments == '{"x":1}'  # type: ignore[union-attr]
