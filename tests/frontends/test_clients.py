"""The AI SDK's and AG-UI's own clients, from npm and unmodified, read deltaflow's relay: the messages
they build equal what deltaflow's own events say about the same recorded stream; a tool loop served by
the relay gives them its tools' outputs and errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

import deltaflow
from deltaflow.events import ChoiceDone, ContentDone, ReasoningDone, ToolCallDone, UsageReported
from deltaflow.recipes import AsyncToolLoopStream, atool_loop_stream, relay_endpoint
from deltaflow.replay import ReplayServer
from tests.frontends.conftest import run_node
from tests.frontends.scenario import (
    LOOP_ANSWER,
    LOOP_RESULTS,
    LOOP_TOOLS,
    REASONING,
    STRUCTURED,
    TOOL_CALLS,
    TOOLS,
    Summary,
    scenarios,
    tool_loop_route,
)
from tests.recipes import MESSAGES, aclient, client
from tests.recipes.test_relay import AppServer

pytestmark = pytest.mark.once

USER_TEXT = MESSAGES[0]["content"]
SEEN: list[dict[str, Any]] = []
"""The bodies ``make_stream`` was given, latest last."""


@pytest.fixture(scope="module")
def upstream() -> Iterator[ReplayServer]:
    with ReplayServer(scenarios()) as server:
        yield server


@pytest.fixture(scope="module")
def relay(upstream: ReplayServer) -> Iterator[str]:
    """The plain relay in both front-end formats: /ai-sdk and /ag-ui (and /events, deltaflow's own)."""
    async_client = aclient(upstream)

    def make_stream(body: dict[str, Any]) -> deltaflow.AsyncChatStream[Any]:
        SEEN.append(body)
        model = body.get("model") or (body.get("forwardedProps") or {}).get("model") or "full"
        return deltaflow.astream(
            async_client, model=model, messages=body["messages"], tools=TOOLS, response_format=Summary
        )

    routes = [
        Route("/ai-sdk", relay_endpoint(make_stream, wire="ai-sdk"), methods=["POST"]),
        Route("/ag-ui", relay_endpoint(make_stream, wire="ag-ui"), methods=["POST"]),
        Route("/events", relay_endpoint(make_stream), methods=["POST"]),
    ]
    with AppServer(Starlette(routes=routes)) as server:
        yield server.url


def direct(upstream: ReplayServer, model: str = "full") -> dict[str, Any]:
    """What deltaflow's own events say about the stream, read straight from the replay server."""
    with deltaflow.stream(
        client(upstream), model=model, messages=MESSAGES, tools=TOOLS, response_format=Summary
    ) as stream:
        events = [event for event in stream if event.type != "chunk"]
    (content,) = [event for event in events if isinstance(event, ContentDone)]
    (reasoning,) = [event for event in events if isinstance(event, ReasoningDone)]
    (usage,) = [event for event in events if isinstance(event, UsageReported)]
    (choice,) = [event for event in events if isinstance(event, ChoiceDone)]
    return {
        "content": content.content,
        "parsed": content.parsed.model_dump() if isinstance(content.parsed, Summary) else None,
        "reasoning": reasoning.reasoning,
        "tools": [event for event in events if isinstance(event, ToolCallDone)],
        "usage": usage.usage.model_dump(mode="json"),
        "finish_reason": choice.finish_reason,
    }


def ui_request(chat_id: str, **extra: Any) -> dict[str, Any]:
    user = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": USER_TEXT}]}
    return {"id": chat_id, "messages": [user], **extra}


def test_read_ui_message_stream_builds_the_message_deltaflow_events_describe(
    node_modules: Path, relay: str, upstream: ReplayServer
) -> None:
    """``ai``'s DefaultChatTransport + readUIMessageStream: text, reasoning, both tool calls with their
    parsed input, the growing object and the validated one, usage and finish reason."""
    expected = direct(upstream)
    assert expected["reasoning"] == REASONING
    assert expected["parsed"] == STRUCTURED
    read = run_node(node_modules, "read_ui_stream.mjs", f"{relay}/ai-sdk", json.dumps(ui_request("chat-1")))
    assert read["error"] is None
    chunks = read["chunks"]
    assert chunks[0] == "start"
    assert chunks[1] == "start-step"
    assert chunks[-2:] == ["finish-step", "finish"]
    for kind in (
        "reasoning-delta",
        "text-delta",
        "tool-input-start",
        "tool-input-delta",
        "tool-input-available",
    ):
        assert kind in chunks
    assert chunks.count("tool-input-available") == 2
    assert chunks.count("data-partial-object") > 3, "the object grows in several steps"
    message = read["message"]
    assert message["role"] == "assistant"
    parts = message["parts"]
    by_type: dict[str, list[dict[str, Any]]] = {}
    for part in parts:
        by_type.setdefault(part["type"], []).append(part)
    assert [part["text"] for part in by_type["reasoning"]] == [expected["reasoning"]]
    assert [part["text"] for part in by_type["text"]] == [expected["content"]]
    tools = by_type["dynamic-tool"]
    assert [(tool["toolName"], tool["input"], tool["state"]) for tool in tools] == [
        (event.name, json.loads(event.arguments), "input-available") for event in expected["tools"]
    ]
    assert [tool["toolMetadata"]["toolCallId"] for tool in tools] == [
        event.tool_call.id for event in expected["tools"]
    ]
    assert [part["data"] for part in by_type["data-partial-object"]] == [expected["parsed"]]
    assert [part["data"] for part in by_type["data-object"]] == [expected["parsed"]]
    assert message["metadata"] == {"finishReason": expected["finish_reason"], "usage": expected["usage"]}


def test_a_failed_stream_is_an_error_chunk_with_the_typed_error(node_modules: Path, relay: str) -> None:
    """An upstream that fails mid-stream: the AI SDK's parser reports the error, the text so far is kept."""
    request = ui_request("chat-2", model="failing")
    read = run_node(node_modules, "read_ui_stream.mjs", f"{relay}/ai-sdk", json.dumps(request))
    assert read["chunks"][-2:] == ["error", "finish"]
    assert "overloaded" in (read["error"] or "")
    errors = [part for part in read["message"]["parts"] if part["type"] == "data-deltaflow-error"]
    assert errors
    assert "overloaded" in errors[-1]["data"]["message"]
    (failure,) = [
        part["data"] for part in read["message"]["parts"] if part["type"] == "data-deltaflow-failure"
    ]
    assert failure["code"] == errors[-1]["data"]["code"]
    assert failure["type"] == "ProviderError"


def test_the_ag_ui_client_builds_the_messages_and_state_deltaflow_events_describe(
    node_modules: Path, relay: str, upstream: ReplayServer
) -> None:
    """``@ag-ui/client``'s HttpAgent: the assistant message with its two tool calls, the reasoning
    message, the structured output as the run's state, usage and finish reason in RUN_FINISHED."""
    expected = direct(upstream)
    run_input = {
        "threadId": "thread-1",
        "runId": "run-1",
        "messages": [{"id": "u1", "role": "user", "content": USER_TEXT}],
        "state": {},
    }
    ran = run_node(node_modules, "run_ag_ui.mjs", f"{relay}/ag-ui", json.dumps(run_input))
    assert ran["error"] is None, ran
    events = ran["events"]
    assert events[0] == "RUN_STARTED"
    assert events[-1] == "RUN_FINISHED"
    assert events.count("TOOL_CALL_START") == 2
    assert "STATE_DELTA" in events
    assert "REASONING_START" in events
    messages = ran["messages"]
    assert messages[0] == {"id": "u1", "role": "user", "content": USER_TEXT}
    (reasoning,) = [message for message in messages if message["role"] == "reasoning"]
    assert reasoning["content"] == expected["reasoning"]
    (assistant,) = [message for message in messages if message["role"] == "assistant"]
    assert assistant["content"] == expected["content"]
    assert [(call["function"]["name"], call["function"]["arguments"]) for call in assistant["toolCalls"]] == [
        (event.name, event.arguments) for event in expected["tools"]
    ]
    assert ran["state"] == {"output": expected["parsed"]}
    finished = ran["finished"]
    assert finished["outcome"] == {"type": "success"}
    assert finished["result"] == {"finishReason": expected["finish_reason"]}
    usage = expected["usage"]
    assert finished["usage"][0]["inputTokens"] == usage["prompt_tokens"]
    assert finished["usage"][0]["outputTokens"] == usage["completion_tokens"]


def test_the_ag_ui_client_sees_a_failed_stream_as_run_error(node_modules: Path, relay: str) -> None:
    """An upstream failure: RUN_ERROR with deltaflow's code and the provider's message."""
    run_input = {
        "threadId": "thread-2",
        "runId": "run-2",
        "messages": [{"id": "u1", "role": "user", "content": USER_TEXT}],
        "forwardedProps": {"model": "failing"},
    }
    ran = run_node(node_modules, "run_ag_ui.mjs", f"{relay}/ag-ui", json.dumps(run_input))
    assert ran["error"] is not None
    assert "overloaded" in ran["error"]["message"]
    assert ran["events"][-1] == "RUN_ERROR"


def test_tool_outputs_the_ai_sdk_client_adds_go_back_as_tool_messages(
    node_modules: Path, relay: str, upstream: ReplayServer
) -> None:
    """The client runs the tools (``onToolCall`` / ``addToolOutput`` set a part's output) and sends the
    conversation again: ``make_stream`` gets the assistant's tool calls and one tool message each."""
    expected = direct(upstream)
    first = run_node(node_modules, "read_ui_stream.mjs", f"{relay}/ai-sdk", json.dumps(ui_request("tools")))
    assistant = first["message"]
    outputs = [{"facts": 2}, "18 °C"]
    tool_parts = [part for part in assistant["parts"] if part["type"] == "dynamic-tool"]
    for part, output in zip(tool_parts, outputs, strict=True):
        part.update(state="output-available", output=output)
    request = ui_request("tools")
    request["messages"].append(assistant)
    run_node(node_modules, "read_ui_stream.mjs", f"{relay}/ai-sdk", json.dumps(request))
    calls = [
        {
            "id": part["toolCallId"],
            "type": "function",
            "function": {"name": part["toolName"], "arguments": json.dumps(part["input"])},
        }
        for part in tool_parts
    ]
    assert SEEN[-1]["messages"] == [
        {"role": "user", "content": USER_TEXT},
        {"role": "assistant", "content": expected["content"], "tool_calls": calls},
        {"role": "tool", "tool_call_id": tool_parts[0]["toolCallId"], "content": json.dumps(outputs[0])},
        {"role": "tool", "tool_call_id": tool_parts[1]["toolCallId"], "content": outputs[1]},
    ]
    assert SEEN[-1]["id"] == "tools"


def test_tool_results_the_ag_ui_client_adds_go_back_as_tool_messages(node_modules: Path, relay: str) -> None:
    """AG-UI's messages after a run, with a tool message per call, sent as the next run's input: the
    reasoning message is the front-end's own, the rest maps one to one."""
    run_input = {
        "threadId": "tools",
        "runId": "run-a",
        "messages": [{"id": "u1", "role": "user", "content": USER_TEXT}],
    }
    ran = run_node(node_modules, "run_ag_ui.mjs", f"{relay}/ag-ui", json.dumps(run_input))
    (assistant,) = [message for message in ran["messages"] if message["role"] == "assistant"]
    results = [
        {"id": f"result-{n}", "role": "tool", "toolCallId": call["id"], "content": f"result {n}"}
        for n, call in enumerate(assistant["toolCalls"])
    ]
    again = {"threadId": "tools", "runId": "run-b", "messages": [*ran["messages"], *results]}
    run_node(node_modules, "run_ag_ui.mjs", f"{relay}/ag-ui", json.dumps(again))
    calls = [
        {"id": call["id"], "type": "function", "function": call["function"]}
        for call in assistant["toolCalls"]
    ]
    assert SEEN[-1]["messages"] == [
        {"role": "user", "content": USER_TEXT},
        {"role": "assistant", "content": assistant["content"], "tool_calls": calls},
        *(
            {"role": "tool", "tool_call_id": result["toolCallId"], "content": result["content"]}
            for result in results
        ),
    ]
    assert (SEEN[-1]["threadId"], SEEN[-1]["runId"]) == ("tools", "run-b")


@pytest.fixture(scope="module")
def loop_relay() -> Iterator[str]:
    """A tool loop served by the plain relay (``atool_loop_stream``): /ai-sdk and /ag-ui."""
    with ReplayServer(tool_loop_route()) as upstream:
        async_client = aclient(upstream)

        def make_stream(body: dict[str, Any]) -> AsyncToolLoopStream:
            return atool_loop_stream(async_client, body["messages"], LOOP_TOOLS, model="loop")

        routes = [
            Route("/ai-sdk", relay_endpoint(make_stream, wire="ai-sdk"), methods=["POST"]),
            Route("/ag-ui", relay_endpoint(make_stream, wire="ag-ui"), methods=["POST"]),
        ]
        with AppServer(Starlette(routes=routes)) as server:
            yield server.url


def test_read_ui_message_stream_shows_a_tool_loops_outputs_and_errors(
    node_modules: Path, loop_relay: str
) -> None:
    """Two steps in one message: the tool parts end ``output-available`` with the parsed JSON and
    ``output-error`` with the error's text, then the answer's text."""
    read = run_node(
        node_modules, "read_ui_stream.mjs", f"{loop_relay}/ai-sdk", json.dumps(ui_request("loop-1"))
    )
    assert read["error"] is None
    chunks = read["chunks"]
    assert chunks.count("start-step") == chunks.count("finish-step") == 2
    assert chunks.count("tool-output-available") == chunks.count("tool-output-error") == 1
    # the outputs come after the step that called them, before the next one
    first_end = chunks.index("finish-step")
    assert chunks[first_end + 1 : first_end + 4] == [
        "tool-output-available",
        "tool-output-error",
        "start-step",
    ]
    tools = [part for part in read["message"]["parts"] if part["type"] == "dynamic-tool"]
    assert [(tool["toolName"], tool["input"], tool["state"]) for tool in tools] == [
        ("lookup", TOOL_CALLS[0]["arguments"], "output-available"),
        ("weather", TOOL_CALLS[1]["arguments"], "output-error"),
    ]
    assert tools[0]["output"] == json.loads(LOOP_RESULTS[0])
    assert tools[1]["errorText"] == LOOP_RESULTS[1].removeprefix("Error: ")
    texts = [part["text"] for part in read["message"]["parts"] if part["type"] == "text"]
    assert texts == [LOOP_ANSWER]
    assert read["message"]["metadata"]["finishReason"] == "tool_calls"  # the first step's, as documented


def test_the_ag_ui_client_puts_a_tool_loops_results_after_their_calls(
    node_modules: Path, loop_relay: str
) -> None:
    """HttpAgent's reducer: the assistant's two calls, a tool message per call right after them (the
    error's text included), then the answer; the error's code as deltaflow.tool_error."""
    run_input = {
        "threadId": "loop-thread",
        "runId": "loop-run",
        "messages": [{"id": "u1", "role": "user", "content": USER_TEXT}],
    }
    ran = run_node(node_modules, "run_ag_ui.mjs", f"{loop_relay}/ag-ui", json.dumps(run_input))
    assert ran["error"] is None, ran
    assert ran["events"].count("TOOL_CALL_RESULT") == 2
    assert ran["finished"]["outcome"] == {"type": "success"}
    user, calling, *rest = ran["messages"]
    assert user["role"] == "user"
    assert [call["function"]["name"] for call in calling["toolCalls"]] == ["lookup", "weather"]
    results, answer = rest[:2], rest[2:]
    assert [(message["role"], message["toolCallId"], message["content"]) for message in results] == [
        ("tool", call["id"], content)
        for call, content in zip(calling["toolCalls"], LOOP_RESULTS, strict=True)
    ]
    assert [(message["role"], message["content"]) for message in answer] == [("assistant", LOOP_ANSWER)]
