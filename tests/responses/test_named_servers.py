"""Named servers that bend the Responses stream: xAI, LM Studio, vLLM, Ollama, Groq, OpenRouter, litellm.

xAI and LM Studio are real recordings (fetched, not committed: MANIFEST.md "Other servers"; without them their
cases are not generated); vLLM, Ollama,
Groq and OpenRouter are hand-made after their source, threads or documentation (``servers.py``,
``scripted.vllm_reasoning``). Each is read with the real openai client over HTTP from the replay server on
127.0.0.1; where openai's ``client.responses.stream()`` works, deltaflow's events and final response are its,
field for field; everywhere, deltaflow's own events hold the answer's text, reasoning and tool calls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openai
import pytest

from deltaflow import responses
from deltaflow.events import BaseEvent
from deltaflow.replay import ReplayServer, Scenario
from tests.responses.scripted import comparable, openai_helper, served, vllm_reasoning
from tests.responses.servers import (
    groq_reasoning,
    ollama_reasoning,
    ollama_text_then_tool_call,
    openrouter_reasoning,
    recorded,
    reidentified,
    served_with_keepalives,
    vllm_call_without_arguments,
)


@dataclass(frozen=True)
class Answer:
    """What a stream says: its text, its reasoning, its function calls ``(name, arguments)``."""

    text: str
    reasoning: str
    calls: tuple[tuple[str, str], ...] = ()


LMSTUDIO_REASONING = (
    "The user is asking for the weather in San Francisco. I have a weather function available that takes a "
    'location parameter. The user has provided "San Francisco" as the location, so I have all the required '
    "information to make the function call."
)
WEATHER_CALL = ("get_weather", '{"city":"Paris"}')

RECORDED_ANSWERS = {
    "xai-issue-17936-stream": Answer("hello", 'The user says: "Reply with exactly: hello"\n'),
    "lmstudio-tool-call.1": Answer(
        "I'll get the current weather information for San Francisco for you.",
        LMSTUDIO_REASONING,
        (("weather", '{"location":"San Francisco"}'),),
    ),
}
RECORDED = {name: events for name in RECORDED_ANSWERS if (events := recorded(name)) is not None}
"""The real recordings that are here, by name."""

STREAMS: dict[str, tuple[Scenario, Answer]] = {
    **{name: (served(events), RECORDED_ANSWERS[name]) for name, events in RECORDED.items()},
    "vllm-reasoning-parts": (
        served(vllm_reasoning("The user says hello. Say hello in one word.", "Hello!")),
        Answer("Hello!", "The user says hello. Say hello in one word."),
    ),
    "vllm-call-without-arguments": (
        served(vllm_call_without_arguments("noop")),
        Answer("", "", (("noop", ""),)),
    ),
    "ollama-reasoning": (
        served(ollama_reasoning("The user greets me; greet back.", "Hello there, friend.")),
        Answer("Hello there, friend.", "The user greets me; greet back."),
    ),
    "ollama-text-then-tool-call": (
        served(ollama_text_then_tool_call("Let me check the weather.", *WEATHER_CALL)),
        Answer("Let me check the weather.", "", (WEATHER_CALL,)),
    ),
    "litellm-reidentified": (
        served(reidentified(ollama_reasoning("The user greets me; greet back.", "Hello there, friend."))),
        Answer("Hello there, friend.", "The user greets me; greet back."),
    ),
    "groq-reasoning": (
        served(groq_reasoning("A greeting calls for a greeting.", "Hi from Groq.")),
        Answer("Hi from Groq.", "A greeting calls for a greeting."),
    ),
    "openrouter-reasoning": (
        served_with_keepalives(
            openrouter_reasoning("A greeting calls for a greeting.", "Hi from OpenRouter.")
        ),
        Answer("Hi from OpenRouter.", "A greeting calls for a greeting."),
    ),
}

OPENAI_FAILS = {"ollama-text-then-tool-call": (RuntimeError, "Duplicate response output index 0.")}
"""Where openai's helper raises, and what: pinned, so a change in either direction is seen."""


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    with ReplayServer({name: scenario for name, (scenario, _) in STREAMS.items()}) as running:
        yield openai.OpenAI(base_url=running.base_url, api_key="sk-test", max_retries=0)


def _ours(client: openai.OpenAI, model: str) -> tuple[list[Any], Any]:
    with responses.stream(client, model=model, input="hi") as stream:
        events = list(stream)
        return events, stream.get_final_response()


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_openai_helper_fails_only_where_pinned(client: openai.OpenAI, name: str) -> None:
    """openai's helper reads every stream but those in ``OPENAI_FAILS``, and there it raises what is pinned."""
    _, _, failure = openai_helper(client, name)
    if name in OPENAI_FAILS:
        kind, message = OPENAI_FAILS[name]
        assert isinstance(failure, kind)
        assert str(failure) == message
    else:
        assert failure is None


@pytest.mark.parametrize("name", sorted(set(STREAMS) - set(OPENAI_FAILS)))
def test_same_events_and_final_response_as_openai(client: openai.OpenAI, name: str) -> None:
    """Where openai's helper works: its events, field for field, and its final response."""
    expected, final, failure = openai_helper(client, name)
    assert failure is None
    events, got = _ours(client, name)
    mine, theirs = comparable([e for e in events if not isinstance(e, BaseEvent)], expected)
    assert mine == theirs
    assert got.model_dump(mode="json", warnings=False) == final.model_dump(mode="json", warnings=False)
    assert got.output_text == final.output_text == STREAMS[name][1].text


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_deltaflow_events_hold_the_answer(client: openai.OpenAI, name: str) -> None:
    """content, reasoning and tool-call events, and the chat view, hold the text, reasoning and arguments."""
    answer = STREAMS[name][1]
    events, _ = _ours(client, name)
    by_type: dict[str, list[Any]] = {}
    for event in events:
        by_type.setdefault(event.type, []).append(event)
    assert "".join(e.delta for e in by_type.get("content.delta", [])) == answer.text
    assert [e.content for e in by_type.get("content.done", [])] == ([answer.text] if answer.text else [])
    assert "".join(e.delta for e in by_type.get("reasoning.delta", [])) == answer.reasoning
    assert [e.reasoning for e in by_type.get("reasoning.done", [])] == (
        [answer.reasoning] if answer.reasoning else []
    )
    calls = [(e.name, e.arguments) for e in by_type.get("tool_calls.function.arguments.done", [])]
    assert calls == list(answer.calls)
    assert events[-1].type == "completion.done"
    (choice,) = events[-1].completion.choices
    assert choice.message.content == (answer.text or None)
    assert [(c.function.name, c.function.arguments) for c in choice.message.tool_calls or []] == list(
        answer.calls
    )
    assert choice.finish_reason == ("tool_calls" if answer.calls else "stop")


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_final_response_keeps_the_streamed_text(client: openai.OpenAI, name: str) -> None:
    """The final response holds the text that was streamed, as the chat view does: Ollama's completed output
    leaves out the message a tool call follows, and the final response puts it back before the call."""
    answer = STREAMS[name][1]
    _, final = _ours(client, name)
    assert final.output_text == answer.text
    function_calls = [(o.name, o.arguments) for o in final.output if o.type == "function_call"]
    assert function_calls == list(answer.calls)


@pytest.mark.parametrize(
    "name",
    sorted(RECORDED)
    or [
        pytest.param("", marks=pytest.mark.skip(reason="no fetched recordings (MANIFEST.md, Other servers)"))
    ],
)
def test_async_twin_gives_what_openai_gives(client: openai.OpenAI, name: str) -> None:
    """``astream`` over ``AsyncOpenAI`` on the real recordings: openai's final response, field for field."""

    async def both() -> tuple[Any, Any]:
        async_client = openai.AsyncOpenAI(base_url=str(client.base_url), api_key="sk-test", max_retries=0)
        async with async_client.responses.stream(model=name, input="hi") as theirs:
            _ = [event async for event in theirs]
            final = await theirs.get_final_response()
        async with responses.astream(async_client, model=name, input="hi") as ours:
            _ = [event async for event in ours]
            mine = await ours.get_final_response()
        await async_client.close()
        return final, mine

    final, mine = asyncio.run(both())
    assert mine.model_dump(mode="json", warnings=False) == final.model_dump(mode="json", warnings=False)
    assert mine.output_text == STREAMS[name][1].text
