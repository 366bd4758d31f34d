"""The encoders on deltaflow's own events: the partial value each protocol rebuilds is the parsed value at
every step's end, its cost stays linear in the answer, and steps, tool results, failures and stops map as
documented."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel, ConfigDict

import deltaflow
from deltaflow.events import ToolCallResult
from deltaflow.replay import scripted_chunks
from deltaflow.wire import AgUiEncoder, AiSdkEncoder
from deltaflow.wire._choice import event_data


class Anything(BaseModel):
    """A response format that takes any object: the parsed value is the JSON as it is."""

    model_config = ConfigDict(extra="allow")


def events(
    content: str | None, chunk_size: int = 4, *, structured: bool = True, **script: Any
) -> list[tuple[str, dict[str, Any]]]:
    """A scripted stream's events as an encoder reads them (type, JSON form without running texts)."""
    chunks = [
        ChatCompletionChunk.model_validate(c)
        for c in scripted_chunks(content, chunk_size=chunk_size, **script)
    ]
    stream = deltaflow.ChatStream(chunks, response_format=Anything if structured else None)
    return [(event.type, event_data(event)) for event in stream if event.type != "chunk"]


def encode(
    encoder: Any, stream: list[tuple[str, dict[str, Any]]], outcome: dict[str, Any]
) -> list[dict[str, Any]]:
    # serialised as they come, as the relays do (a message may share containers with later ones), as strict
    # JSON: what a browser's JSON.parse takes (no NaN, no Infinity)
    def frame(message: dict[str, Any]) -> Any:
        return json.loads(json.dumps(message, allow_nan=False))

    out = [frame(message) for message in encoder.start()]
    for kind, data in stream:
        out += [frame(message) for message in encoder.event(kind, data)]
    return out + [frame(message) for message in encoder.finish(outcome)]


def apply_patch(document: Any, patch: list[dict[str, Any]]) -> Any:
    """RFC 6902 add / replace / remove, as AG-UI's client applies them (fast-json-patch)."""
    for operation in patch:
        steps = [step.replace("~1", "/").replace("~0", "~") for step in operation["path"].split("/")[1:]]
        parent = document
        for step in steps[:-1]:
            parent = parent[int(step)] if isinstance(parent, list) else parent[step]
        last: Any = steps[-1]
        if isinstance(parent, list):
            last = len(parent) if last == "-" else int(last)
        if operation["op"] == "remove":
            del parent[last]
        elif operation["op"] == "add" and isinstance(parent, list):
            parent.insert(last, operation["value"])
        else:
            parent[last] = operation["value"]
    return document


json_objects = st.dictionaries(
    st.text("abcdef~/ ", min_size=1, max_size=6),
    st.recursive(
        st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats(-1e6, 1e6, allow_nan=False)
        | st.text("xyz é\"\\\n", max_size=30),
        lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text("ghij", min_size=1, max_size=3), children, max_size=3),
        max_leaves=10,
    ),
    min_size=1,
    max_size=4,
)  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(value=json_objects, chunk_size=st.integers(1, 9))
def test_both_protocols_rebuild_the_parsed_value(value: dict[str, Any], chunk_size: int) -> None:
    """The AI SDK's last partial object and AG-UI's state from its patches alone equal the parsed
    value, and the final parts carry the validated one, whatever the value and the chunking."""
    stream = events(json.dumps(value), chunk_size)
    (done,) = [data for kind, data in stream if kind == "content.done"]
    ai_sdk = encode(AiSdkEncoder(), stream, {"ok": True})
    partials = [part["data"] for part in ai_sdk if part["type"] == "data-partial-object"]
    assert partials[-1] == json.loads(json.dumps(value))
    assert [part["data"] for part in ai_sdk if part["type"] == "data-object"] == [done["parsed"]]
    ag_ui = encode(AgUiEncoder(), stream, {"ok": True})
    state: dict[str, Any] = {}
    for event in ag_ui:
        if event["type"] == "STATE_DELTA":
            state = apply_patch(state, event["delta"])
    assert state == {"output": json.loads(json.dumps(value))}
    assert [event["snapshot"] for event in ag_ui if event["type"] == "STATE_SNAPSHOT"] == [
        {"output": done["parsed"]}
    ]


def resent_bytes(scale: int) -> tuple[int, int, int]:
    """The value's size, and the bytes of the AI SDK's partial objects and of AG-UI's patches for it."""
    value = {
        "title": "x" * 10_000 * scale,
        "items": [f"item {n}" for n in range(1500 * scale)],
        "body": "y" * 10_000 * scale,
    }
    stream = events(json.dumps(value), 8)
    ai_sdk = encode(AiSdkEncoder(), stream, {"ok": True})
    partials = [part for part in ai_sdk if part["type"] == "data-partial-object"]
    assert partials[-1]["data"] == value
    patches = [
        event for event in encode(AgUiEncoder(), stream, {"ok": True}) if event["type"] == "STATE_DELTA"
    ]
    return len(json.dumps(value)), len(json.dumps(partials)), len(json.dumps(patches))


def test_a_growing_value_costs_linear_bytes_in_both_protocols() -> None:
    """A 38 KB object, then a 78 KB one, 8 characters a chunk: resent whole on every change, the AI SDK's
    partial objects would be ~90 MB, then four times that; gated, twice the value costs under 2.5 times
    the bytes in each protocol (linear, not quadratic), and the AI SDK's stay under 12 times the value."""
    size, ai_sdk, ag_ui = resent_bytes(1)
    double_size, double_ai_sdk, double_ag_ui = resent_bytes(2)
    assert double_size > 2 * size - 100
    assert double_ai_sdk < 2.5 * ai_sdk, (ai_sdk, double_ai_sdk)
    assert double_ag_ui < 2.5 * ag_ui, (ag_ui, double_ag_ui)
    assert double_ai_sdk < 12 * double_size


def test_each_completion_of_a_stream_is_a_step() -> None:
    """Two completions' events in one stream (a tool call, then the answer): the AI SDK gets two steps
    with their own part and call ids, AG-UI two text messages and its call without a parent."""
    first = events(None, tool_calls=[{"name": "lookup", "arguments": {"q": "x"}}], structured=False)
    second = events("The answer.", structured=False)
    ai_sdk = encode(AiSdkEncoder("m"), first + second, {"ok": True})
    kinds = [part["type"] for part in ai_sdk]
    assert kinds.count("start-step") == kinds.count("finish-step") == 2
    assert kinds[-1] == "finish"
    assert [part["toolCallId"] for part in ai_sdk if part["type"] == "tool-input-available"] == ["call-1-0-0"]
    assert [part["id"] for part in ai_sdk if part["type"] == "text-start"] == ["text-2-0"]
    ag_ui = encode(AgUiEncoder("t", "r"), first + second, {"ok": True})
    (start,) = [event for event in ag_ui if event["type"] == "TOOL_CALL_START"]
    assert "parentMessageId" not in start, "no text came with the call"
    steps = [(event["type"], event["stepName"]) for event in ag_ui if event["type"].startswith("STEP_")]
    assert steps == [
        ("STEP_STARTED", "completion-1"), ("STEP_FINISHED", "completion-1"),
        ("STEP_STARTED", "completion-2"), ("STEP_FINISHED", "completion-2"),
    ]  # fmt: skip
    texts = [event["messageId"] for event in ag_ui if event["type"] == "TEXT_MESSAGE_START"]
    assert texts == ["text-r-2-0"]
    assert ag_ui[-1]["result"] == {"finishReason": "tool_calls"}, "the first completion's reason is kept"


def test_failures_and_stops_end_each_protocol_as_documented() -> None:
    """A failed stream: the AI SDK's ``error`` then ``finish`` (reason error), AG-UI's RUN_ERROR with
    deltaflow's code; a stopped one: ``abort`` with the reason, and RUN_FINISHED ``cancelled``."""
    stream = events("Partial answer", structured=False)[:3]
    failed = {
        "ok": False,
        "error": {"type": "ProviderError", "code": "provider_error", "message": "overloaded"},
    }
    ai_sdk = encode(AiSdkEncoder(), stream, failed)
    assert ai_sdk[-2] == {"type": "error", "errorText": "provider_error: overloaded"}
    assert ai_sdk[-3]["data"] == failed["error"], "the typed error stays with the message"
    assert ai_sdk[-1]["type"] == "finish"
    assert ai_sdk[-1]["finishReason"] == "error"
    assert "text-end" in [part["type"] for part in ai_sdk], "open parts are closed before the end"
    ag_ui = encode(AgUiEncoder(), stream, failed)
    assert ag_ui[-1] == {"type": "RUN_ERROR", "message": "overloaded", "code": "provider_error"}
    assert [event["type"] for event in ag_ui[-3:-1]] == ["TEXT_MESSAGE_END", "STEP_FINISHED"]
    stopped = {"ok": False, "outcome": "aborted", "reason": "stopped", "usage": None}
    assert encode(AiSdkEncoder(), stream, stopped)[-1] == {"type": "abort", "reason": "stopped"}
    cancelled = encode(AgUiEncoder(), stream, stopped)[-1]
    assert cancelled["type"] == "RUN_FINISHED"
    assert cancelled["outcome"] == {"type": "cancelled"}


def _result(index: int, content: str, *, error: str | None = None) -> tuple[str, dict[str, Any]]:
    event = ToolCallResult(
        choice_index=0, index=index, tool_call_id=f"provider-{index}", name="lookup", content=content,
        is_error=error is not None, error_code=error, error_type="LookupError" if error else None,
    )  # fmt: skip
    return event.type, event_data(event)


def test_a_tool_loops_results_are_outputs_of_their_calls_outside_the_steps() -> None:
    """After the calling step: JSON text is the AI SDK's parsed output, other text the string, an error
    its text without ``Error: ``; AG-UI's TOOL_CALL_RESULT has the text as sent, an error also its code.
    A result of a call the stream left out opens that call first (no input, no arguments), so the client files
    it; the calls of one completion share an AG-UI parent message."""
    calls = [{"name": "lookup", "arguments": {"q": "x"}}, {"name": "lookup", "arguments": {"q": "y"}}]
    first = events(None, tool_calls=calls, structured=False)
    results = [_result(0, '{"facts": [1]}'), _result(1, "Error: LookupError: down", error="tool_failed")]
    stray = [_result(7, "no such call")]
    loop = first + results + stray + events("The answer.", structured=False)
    ai_sdk = encode(AiSdkEncoder("m"), loop, {"ok": True})
    kinds = [part["type"] for part in ai_sdk]
    end = kinds.index("finish-step")
    assert ai_sdk[end + 1 : end + 3] == [
        {
            "type": "tool-output-available",
            "toolCallId": "call-1-0-0",
            "output": {"facts": [1]},
            "dynamic": True,
        },
        {
            "type": "tool-output-error",
            "toolCallId": "call-1-0-1",
            "errorText": "LookupError: down",
            "dynamic": True,
        },
    ]
    stray_call = {"toolCallId": "call-provider-7", "toolName": "lookup", "dynamic": True}
    assert ai_sdk[end + 3 : end + 6] == [
        {"type": "tool-input-start", **stray_call},
        {"type": "tool-input-available", **stray_call, "input": None},
        {
            "type": "tool-output-available",
            "toolCallId": "call-provider-7",
            "output": "no such call",
            "dynamic": True,
        },
    ]
    assert kinds[end + 6] == "start-step"
    texts = ["sunny, 21 °C", "NaN", "-Infinity", "[1, NaN]"]
    plain = encode(AiSdkEncoder("m"), [*first, *(_result(0, text) for text in texts)], {"ok": True})
    # JSON's readers take no NaN: such text stays text, and every frame parses as strict JSON
    assert [part["output"] for part in plain if part["type"] == "tool-output-available"] == texts
    ag_ui = encode(AgUiEncoder("t", "r"), loop, {"ok": True})
    starts = [event for event in ag_ui if event["type"] == "TOOL_CALL_START"]
    assert [start.get("parentMessageId") for start in starts] == [
        None,
        "call-r-1-0-0",
        None,
    ]  # the stray's last
    finished = [event["type"] for event in ag_ui].index("STEP_FINISHED")
    assert ag_ui[finished + 1 : finished + 4] == [
        {"type": "TOOL_CALL_RESULT", "messageId": "result-call-r-1-0-0", "toolCallId": "call-r-1-0-0",
         "content": '{"facts": [1]}', "role": "tool"},
        {"type": "TOOL_CALL_RESULT", "messageId": "result-call-r-1-0-1", "toolCallId": "call-r-1-0-1",
         "content": "Error: LookupError: down", "role": "tool"},
        {"type": "CUSTOM", "name": "deltaflow.tool_error",
         "value": {"toolCallId": "call-r-1-0-1", "code": "tool_failed", "type": "LookupError"}},
    ]  # fmt: skip
    assert ag_ui[finished + 4 : finished + 7] == [
        {"type": "TOOL_CALL_START", "toolCallId": "call-r-provider-7", "toolCallName": "lookup"},
        {"type": "TOOL_CALL_END", "toolCallId": "call-r-provider-7"},
        {"type": "TOOL_CALL_RESULT", "messageId": "result-call-r-provider-7", "toolCallId": "call-r-provider-7",
         "content": "no such call", "role": "tool"},
    ]  # fmt: skip
    assert ag_ui[finished + 7]["type"] == "STEP_STARTED"
