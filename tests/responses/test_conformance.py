"""Conformance with openai's own helper: the same events and final response, over real HTTP on loopback.

The oracle is ``client.responses.stream()`` (openai's ``ResponseStreamState``) reading the same bytes
from the same replay server; deltaflow's stream must give the same events, field for field, and the
same final response, on every recording where openai's helper works.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from deltaflow import responses
from deltaflow.events import BaseEvent
from deltaflow.replay import ReplayServer, Scenario
from tests.responses.scripted import (
    comparable,
    dumped,
    fetched,
    openai_helper,
    scripted,
    served,
    vllm_reasoning,
)

SCRIPTED: dict[str, list[dict[str, Any]]] = {
    "text": scripted("The quick brown fox jumps over the lazy dog."),
    "reasoning-then-text": scripted("42.", reasoning="Think: six times seven."),
    "tool-calls": scripted(None, calls=[("get_weather", '{"city":"Paris"}'), ("get_time", '{"tz":"CET"}')]),
    "refusal": scripted(None, refusal="I can't help with that."),
    "unicode": scripted("héllo \u2028 wörld 🌍 " * 5, chunk_size=3),
    "vllm-reasoning-parts": vllm_reasoning("The user says hello. Say hello in one word.", "Hello!"),
}
RECORDINGS = {**SCRIPTED, **{f"fetched-{name}": events for name, events in fetched().items()}}


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    scenarios = {name: served(events) for name, events in RECORDINGS.items()}
    with ReplayServer(scenarios) as running:
        yield running


def _client(server: ReplayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


@pytest.mark.parametrize("name", sorted(RECORDINGS))
def test_same_events_and_final_response_as_openai(server: ReplayServer, name: str) -> None:
    """openai's events, field for field, and its final response, wherever openai's helper works."""
    client = _client(server)
    expected, final, failure = openai_helper(client, name)
    if failure is not None:
        pytest.skip(f"openai's helper fails on this recording: {failure!r}"[:200])
    with responses.stream(client, model=name, input="hi", deltaflow_events=False) as stream:
        events = list(stream)
        mine, theirs = comparable(events, expected)
        assert mine == theirs
        known = [
            (a, b)
            for a, b in zip(events, expected, strict=True)
            if not isinstance(a, responses.UnknownResponseEvent)
        ]
        assert all(type(a) is type(b) for a, b in known)
        got = stream.get_final_response()
    assert got.model_dump(mode="json", warnings=False) == final.model_dump(mode="json", warnings=False)
    assert got.output_text == final.output_text
    # and with deltaflow's events beside them (the default): openai's are the same, in the same order
    with responses.stream(client, model=name, input="hi") as both:
        theirs_among = [event for event in both if not isinstance(event, BaseEvent)]
        assert comparable(theirs_among, expected)[0] == comparable(events, expected)[0]
        assert both.get_final_response().model_dump(warnings=False) == got.model_dump(warnings=False)


@pytest.mark.parametrize("name", ["text", "tool-calls", "reasoning-then-text"])
def test_async_twin_gives_the_same_as_openai(server: ReplayServer, name: str) -> None:
    """``astream`` over ``AsyncOpenAI``: openai's events and final response, as the sync twin."""

    async def both() -> tuple[list[Any], Any, list[Any], Any]:
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
        async with client.responses.stream(model=name, input="hi") as theirs:
            expected = [event async for event in theirs]
            final = await theirs.get_final_response()
        async with responses.astream(client, model=name, input="hi", deltaflow_events=False) as ours:
            got = [event async for event in ours]
            mine = await ours.get_final_response()
        await client.close()
        return expected, final, got, mine

    expected, final, got, mine = asyncio.run(both())
    assert dumped(got) == dumped(expected)
    assert mine.model_dump(warnings=False) == final.model_dump(warnings=False)


class Weather(BaseModel):
    city: str
    temperature: float
    tags: list[str]


def test_text_format_parses_as_openai_and_incrementally() -> None:
    """``text_format=Model``: ``output_parsed`` as openai's, and ``content.parsed.delta`` along the way."""
    text = '{"city":"Paris","temperature":21.5,"tags":["sunny","warm"]}'
    with ReplayServer(served(scripted(text, chunk_size=3))) as running:
        client = _client(running)
        with client.responses.stream(model="m", input="hi", text_format=Weather) as theirs:
            expected = list(theirs)
            final = theirs.get_final_response()
        with responses.stream(client, model="m", input="hi", text_format=Weather) as ours:
            events = list(ours)
            mine = ours.get_final_response()
    assert (
        mine.output_parsed
        == final.output_parsed
        == Weather(city="Paris", temperature=21.5, tags=["sunny", "warm"])
    )
    theirs_done = [e for e in expected if e.type == "response.output_text.done"]
    ours_done = [e for e in events if e.type == "response.output_text.done"]
    assert [e.parsed for e in ours_done] == [e.parsed for e in theirs_done]
    paths = [e.path for e in events if e.type == "content.parsed.delta"]
    assert ("city",) in paths
    assert ("tags", 1) in paths
    (done,) = [e for e in events if e.type == "content.done"]
    assert done.parsed == final.output_parsed
    # the last partial value before the end is the whole value: each character was parsed once, in order
    partials = [e.parsed for e in events if e.type == "content.delta"]
    assert partials[-1] == final.output_parsed.model_dump()


def test_deltaflow_events_say_what_the_response_says(server: ReplayServer) -> None:
    """content, reasoning, usage and completion.done on a Responses stream, as for Chat Completions."""
    client = _client(server)
    with responses.stream(client, model="reasoning-then-text", input="hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    by_type: dict[str, list[Any]] = {}
    for event in events:
        by_type.setdefault(event.type, []).append(event)
    assert by_type["content.delta"][-1].snapshot == final.output_text == "42."
    assert by_type["reasoning.done"][0].reasoning == "Think: six times seven."
    (usage,) = by_type["usage"]
    assert (usage.usage.prompt_tokens, usage.usage.completion_tokens, usage.usage.total_tokens) == (11, 7, 18)
    assert usage.usage.completion_tokens_details.reasoning_tokens == 3
    (done,) = by_type["completion.done"]
    assert done.completion.choices[0].message.content == "42."
    assert done.completion.choices[0].finish_reason == "stop"
    assert done.completion.id == final.id
    assert events[-1].type == "completion.done"


def test_vllm_reasoning_parts_become_reasoning_events(server: ReplayServer) -> None:
    """vLLM's ``reasoning_part.*`` pass through typed and its ``reasoning_text`` deltas are reasoning."""
    with responses.stream(_client(server), model="vllm-reasoning-parts", input="hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    parts = [e for e in events if e.type.startswith("response.reasoning_part.")]
    assert [type(e) for e in parts] == [responses.UnknownResponseEvent] * 2
    assert [e.reasoning for e in events if e.type == "reasoning.done"] == [
        "The user says hello. Say hello in one word."
    ]
    assert final.output_text == "Hello!"


def test_tool_calls_come_with_parsed_arguments(server: ReplayServer) -> None:
    """Each function call becomes deltaflow's tool-call events, arguments parsed for a pydantic tool."""

    class GetWeather(BaseModel):
        city: str

    tool = openai.pydantic_function_tool(GetWeather, name="get_weather")
    client = _client(server)
    with responses.stream(client, model="tool-calls", input="hi", tools=[tool]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    done = [e for e in events if e.type == "tool_calls.function.arguments.done"]
    assert [(e.name, e.index, e.arguments) for e in done] == [
        ("get_weather", 0, '{"city":"Paris"}'),
        ("get_time", 1, '{"tz":"CET"}'),
    ]
    assert done[0].parsed_arguments == GetWeather(city="Paris")
    assert done[0].tool_call.id == "call_0"
    assert final.output[0].parsed_arguments == GetWeather(city="Paris")  # type: ignore[union-attr]
    (choice,) = [e for e in events if e.type == "choice.done"]
    assert choice.finish_reason == "tool_calls"


def test_on_handlers_get_events_or_their_fields(server: ReplayServer) -> None:
    """``.on`` for openai's and deltaflow's types alike; a two-parameter callback gets delta and snapshot."""
    seen: list[tuple[str, str]] = []
    texts: list[str] = []
    client = _client(server)
    stream = responses.stream(client, model="text", input="hi")
    stream.on("content.delta", lambda delta, snapshot: seen.append((delta, snapshot)))
    stream.on("response.output_text.delta", lambda event: texts.append(event.snapshot))
    final = stream.until_done().get_final_response()
    assert seen[-1][1] == texts[-1] == final.output_text
    assert "".join(delta for delta, _ in seen) == final.output_text


def test_unknown_event_types_pass_through_typed() -> None:
    """vLLM's ``response.reasoning_part.*`` (unknown to openai's SDK) arrive typed and feed reasoning."""
    events = scripted("ok")
    vllm = [
        {"type": "response.reasoning_part.added", "item_id": "rs", "output_index": 9, "part": {"text": ""}},
        {"type": "response.reasoning_part.delta", "item_id": "rs", "output_index": 9, "delta": "hmm"},
        {"type": "response.reasoning_part.done", "item_id": "rs", "output_index": 9, "text": "hmm"},
    ]
    raws = [responses.event_from_dict(event) for event in [events[0], *vllm, *events[1:]]]
    stream = responses.ResponseStream(raws)
    got = list(stream)
    unknown = [e for e in got if isinstance(e, responses.UnknownResponseEvent)]
    assert [e.type for e in unknown] == [v["type"] for v in vllm]
    assert unknown[1].delta == "hmm"  # type: ignore[attr-defined]
    assert [e.reasoning for e in got if e.type == "reasoning.done"] == ["hmm"]
    assert stream.get_final_response().output_text == "ok"


def test_replay_serves_a_non_streaming_response(server: ReplayServer) -> None:
    """``responses.create`` without ``stream`` gets the recording's final response."""
    final = _client(server).responses.create(model="text", input="hi")
    assert final.output_text == "The quick brown fox jumps over the lazy dog."


def test_a_scenario_without_a_response_is_a_server_error() -> None:
    """A non-streaming request for a scenario with no lifecycle event is answered 500, not made up."""
    with ReplayServer(Scenario.scripted("chat only")) as running, pytest.raises(openai.InternalServerError):
        _client(running).responses.create(model="m", input="hi")


def test_resuming_a_stored_response_matches_openai(server: ReplayServer) -> None:
    """``response_id`` + ``starting_after`` (GET /v1/responses/{id}): the same later events as openai's helper."""
    client = _client(server)
    with client.responses.stream(response_id="reasoning-then-text", starting_after=6) as theirs:
        expected = list(theirs)
        final = theirs.get_final_response()
    with responses.stream(
        client, response_id="reasoning-then-text", starting_after=6, deltaflow_events=False
    ) as ours:
        got = list(ours)
        mine = ours.get_final_response()
    assert dumped(got) == dumped(expected)
    assert min(event.sequence_number for event in got) == 7
    assert mine.model_dump(warnings=False) == final.model_dump(warnings=False)
    assert server.requests[-1].method == "GET"
