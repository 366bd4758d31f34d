"""deltaflow's sinks and relay take a Responses stream unchanged: the same events as Chat Completions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from deltaflow import ChatStream, responses, sinks
from deltaflow.recipes import relay_endpoint, relay_events
from deltaflow.replay import ReplayServer, Scenario
from tests.recipes.test_relay import AppServer
from tests.responses.scripted import scripted, served
from tests.sinks.otel_capture import Telemetry

ANSWER = "Streams of events, the same from both APIs."


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    def route(body: dict[str, Any]) -> Scenario:
        if "input" in body:
            return served(scripted(ANSWER, reasoning="short"))
        return Scenario.scripted(ANSWER, reasoning="short")

    with ReplayServer(route) as running:
        yield running


def _client(server: ReplayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def _semantic(events: list[Any]) -> dict[str, Any]:
    """What the events say, without what differs by API (ids, timestamps, raw chunks, how text was cut)."""
    said: dict[str, Any] = {"content": "", "reasoning": ""}
    for event in events:
        if event.type == "content.delta":
            said["content"] += event.delta
        elif event.type == "reasoning.delta":
            said["reasoning"] += event.delta
        elif event.type in ("content.done", "reasoning.done", "choice.done"):
            said[event.type] = event.model_dump(exclude={"type", "choice_index"})
        elif event.type == "completion.done":
            said[event.type] = event.completion.choices[0].message.content
    return said


def test_deltaflow_view_equals_a_chat_stream(server: ReplayServer) -> None:
    """With ``openai_events=False`` a Responses stream says what the same answer over Chat Completions says."""
    client = _client(server)
    ours = list(responses.stream(client, model="m", input="hi", openai_events=False))
    chat = list(ChatStream(client.chat.completions.create(model="m", messages=[], stream=True)))
    said = _semantic(ours)
    assert said == _semantic(chat)
    assert said["content"] == ANSWER
    assert said["reasoning"] == "short"
    assert {e.type for e in ours} <= {e.type for e in chat} | {"usage"}
    assert "chunk" in {e.type for e in ours}


def test_otel_sink_records_the_span(server: ReplayServer) -> None:
    """``sinks.otel`` over a Responses stream: one span, ended ok, with the usage as token attributes."""
    telemetry = Telemetry()
    with responses.stream(_client(server), model="m", input="hi") as stream:
        stream.subscribe(telemetry.sink()).until_done()
    span = telemetry.only_span()
    assert span.attributes is not None
    assert span.attributes["gen_ai.usage.input_tokens"] == 11
    assert span.attributes["gen_ai.usage.output_tokens"] == 7
    assert span.status.is_ok


def test_jsonl_sink_writes_deltaflow_events(server: ReplayServer, tmp_path: Path) -> None:
    """``sinks.jsonl`` gets deltaflow's events, each one line, the last ``completion.done``."""
    path = tmp_path / "events.jsonl"
    with responses.stream(_client(server), model="m", input="hi") as stream:
        stream.subscribe(sinks.jsonl(str(path))).until_done()
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert lines[-1]["type"] == "completion.done"
    assert "".join(line["delta"] for line in lines if line["type"] == "content.delta") == ANSWER


def test_relay_reads_back_equal_events(server: ReplayServer) -> None:
    """``relay_endpoint`` relays a Responses stream as is; ``relay_events`` reads back deltaflow's events."""
    client = _client(server)

    def make(body: dict[str, Any]) -> Any:
        return responses.stream(client, model="m", input=body["input"], openai_events=False)

    app = Starlette(routes=[Route("/relay", relay_endpoint(make), methods=["POST"])])
    with AppServer(app) as relay:
        back = list(relay_events(f"{relay.url}/relay", json={"input": "hi"}))
    assert _semantic(back) == _semantic(list(make({"input": "hi"})))
    assert back[-1].type == "completion.done"


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_the_relay_takes_either_twin_as_made_with_openai_events(server: ReplayServer, twin: str) -> None:
    """A Responses stream as ``responses.stream``/``astream`` make it (openai's events in): the relay
    sends deltaflow's events only, read back equal to what a ``ChatStream`` of the same answer gives."""

    def make(body: dict[str, Any]) -> Any:
        if twin == "async":
            client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
            return responses.astream(client, model="m", input=body["input"])
        return responses.stream(_client(server), model="m", input=body["input"])

    app = Starlette(routes=[Route("/relay", relay_endpoint(make), methods=["POST"])])
    with AppServer(app) as relay:
        back = list(relay_events(f"{relay.url}/relay", json={"input": "hi"}))
    expected = list(responses.stream(_client(server), model="m", input="hi", openai_events=False))
    assert _semantic(back) == _semantic(expected)
    assert [event.type for event in back] == [event.type for event in expected if event.type != "chunk"]
