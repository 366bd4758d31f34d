"""Scripted scenarios are OpenAI-conformant streams the real client and its helpers accept."""

from __future__ import annotations

import json

import openai
import pytest

from deltaflow.replay import ReplayServer, Scenario, scripted_chunks


def stream_chunks(scenario: Scenario) -> list[openai.types.chat.ChatCompletionChunk]:
    with (
        ReplayServer(scenario) as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
    ):
        return list(client.chat.completions.create(model="replay-1", messages=[], stream=True))


def test_content_is_split_into_chunk_size_deltas() -> None:
    """The content deltas are ``chunk_size`` characters each and reassemble to the script."""
    chunks = stream_chunks(Scenario.scripted("Hello world", chunk_size=4))
    deltas = [chunk.choices[0].delta.content for chunk in chunks if chunk.choices]
    assert deltas[0] == ""
    assert [delta for delta in deltas if delta] == ["Hell", "o wo", "rld"]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_usage_chunk_ends_the_stream_with_no_choices() -> None:
    """With usage on, the last chunk has ``choices: []`` and token counts that add up."""
    last = stream_chunks(Scenario.scripted("Hi"))[-1]
    assert last.choices == []
    assert last.usage is not None
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens


def test_usage_off_ends_with_the_finish_chunk() -> None:
    """With usage off, the finish chunk is the last one."""
    last = stream_chunks(Scenario.scripted("Hi", usage=False))[-1]
    assert last.choices[0].finish_reason == "stop"
    assert last.usage is None


def test_tool_calls_arrive_as_fragments_with_parseable_arguments() -> None:
    """openai's stream helper rebuilds both tool calls, with arguments that parse back to the script."""
    calls = [
        {"name": "get_weather", "arguments": {"city": "Paris", "units": "c"}},
        {"name": "get_time", "arguments": {"zone": "Europe/Paris"}},
    ]
    with (
        ReplayServer(Scenario.scripted(None, tool_calls=calls)) as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
        client.chat.completions.stream(model="replay-1", messages=[]) as stream,
    ):
        final = stream.get_final_completion()
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    rebuilt = [
        (call.function.name, json.loads(call.function.arguments)) for call in choice.message.tool_calls or []
    ]
    assert rebuilt == [(call["name"], call["arguments"]) for call in calls]
    assert all((call.id or "").startswith("call_") for call in choice.message.tool_calls or [])


def test_tool_call_name_and_id_only_on_first_fragment() -> None:
    """The first fragment of a call carries index, id, type and name; later ones only arguments."""
    chunks = scripted_chunks(None, tool_calls=[{"name": "f", "arguments": '{"a": 1}'}], chunk_size=3)
    fragments = [chunk["choices"][0]["delta"]["tool_calls"][0] for chunk in chunks[1:-2]]
    assert set(fragments[0]) == {"index", "id", "type", "function"}
    assert fragments[0]["function"] == {"name": "f", "arguments": ""}
    assert all(set(fragment) == {"index", "function"} for fragment in fragments[1:])
    assert "".join(fragment["function"]["arguments"] for fragment in fragments) == '{"a": 1}'


def test_reasoning_content_comes_before_content() -> None:
    """Reasoning arrives as ``delta.reasoning_content`` (an extra field), all of it before the content."""
    chunks = stream_chunks(Scenario.scripted("Answer.", reasoning="Let me think."))
    kinds = []
    reasoning = ""
    for chunk in chunks:
        if not chunk.choices:
            continue
        delta = chunk.choices[0].delta
        if piece := (delta.model_extra or {}).get("reasoning_content"):
            reasoning += piece
            kinds.append("reasoning")
        if delta.content:
            kinds.append("content")
    assert reasoning == "Let me think."
    assert kinds == sorted(kinds, key=lambda kind: kind == "content")
    assert "content" in kinds


def test_refusal_streams_as_refusal_deltas() -> None:
    """A scripted refusal reassembles from ``delta.refusal``."""
    chunks = stream_chunks(Scenario.scripted(None, refusal="I can't help with that."))
    refusal = "".join(chunk.choices[0].delta.refusal or "" for chunk in chunks if chunk.choices)
    assert refusal == "I can't help with that."


def test_scripted_ids_are_deterministic() -> None:
    """The same script gives identical chunks, a different script a different id."""
    first = scripted_chunks("Hello", tool_calls=[{"name": "f", "arguments": {}}])
    again = scripted_chunks("Hello", tool_calls=[{"name": "f", "arguments": {}}])
    other = scripted_chunks("Hello!")
    assert first == again
    assert first[0]["id"].startswith("chatcmpl-replay-")
    assert other[0]["id"] != first[0]["id"]


def test_explicit_finish_reason_is_used() -> None:
    """``finish_reason`` overrides the default."""
    chunks = scripted_chunks("cut", finish_reason="length", usage=False)
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"


def test_chunk_size_must_be_positive() -> None:
    """A zero chunk size is refused."""
    with pytest.raises(ValueError, match="chunk_size"):
        scripted_chunks("x", chunk_size=0)


def test_non_streaming_scripted_answer() -> None:
    """A ``stream: false`` request to a scripted scenario gets the whole message and usage."""
    with (
        ReplayServer(Scenario.scripted("Hello world")) as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
    ):
        completion = client.chat.completions.create(model="replay-1", messages=[])
    assert completion.choices[0].message.content == "Hello world"
    assert completion.choices[0].message.role == "assistant"
    assert completion.usage is not None
