"""What the replay server does differently for the Responses API (``POST /v1/responses``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any, Unpack

from deltaflow.pipeline._sse import ServerSentEvent

from ._scenario import Scenario, ScenarioOptions
from ._wire import ReplayItem, encode_chunk

__all__ = [
    "RESPONSES_PATHS",
    "completed_response",
    "response_error_event",
    "retrieve_body",
    "scripted_response",
]

RESPONSES_PATHS = ("/v1/responses", "/responses")


def _payloads(events: tuple[ReplayItem, ...]) -> list[dict[str, Any]]:
    payloads = []
    for item in events:
        if isinstance(item, ServerSentEvent):
            with contextlib.suppress(ValueError):
                payload = json.loads(item.data)
                if isinstance(payload, dict):
                    payloads.append(payload)
    return payloads


def response_error_event(
    error: Mapping[str, Any], events: tuple[ReplayItem, ...], sent: int
) -> ServerSentEvent:
    """An ``error`` event as OpenAI sends one mid-stream, numbered after the ``sent`` events before it."""
    payload = {
        "type": "error",
        "code": error.get("code"),
        "message": error.get("message", "replay: injected error"),
        "param": error.get("param"),
        "sequence_number": sent,
    }
    return ServerSentEvent(event="error", data=encode_chunk(payload))


def retrieve_body(response_id: str, query: Mapping[str, str]) -> dict[str, Any]:
    """A ``GET /v1/responses/{id}`` as a request body: the id stands for the model (the scenario)."""
    return {"model": response_id, "response_id": response_id, "stream": query.get("stream") == "true"}


def completed_response(events: tuple[ReplayItem, ...]) -> dict[str, Any] | None:
    """The non-streaming answer: the response the last lifecycle event carries, or None."""
    for payload in reversed(_payloads(events)):
        if payload.get("type") in ("response.completed", "response.incomplete", "response.failed"):
            response = payload.get("response")
            return response if isinstance(response, dict) else None
    return None


def _response(
    status: str, output: list[Any], model: str, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    return {
        "id": "resp_replay_1",
        "object": "response",
        "created_at": 1767225600,
        "status": status,
        "model": model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }


def scripted_response(
    text: str, *, model: str = "replay-1", chunk_size: int = 4, **options: Unpack[ScenarioOptions]
) -> Scenario:
    """A Responses-API answer of ``text`` as OpenAI streams it: named events, numbered, no ``[DONE]``."""
    item = {
        "id": "msg_replay_1",
        "type": "message",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    common = {"item_id": "msg_replay_1", "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response("in_progress", [], model)},
        {"type": "response.in_progress", "response": _response("in_progress", [], model)},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.content_part.added", **common, "part": part},
    ]
    events += [
        {"type": "response.output_text.delta", **common, "delta": text[i : i + chunk_size], "logprobs": []}
        for i in range(0, len(text), chunk_size)
    ]
    done = {**part, "text": text}
    finished = {**item, "status": "completed", "content": [done]}
    usage = {"input_tokens": 12, "output_tokens": len(events) - 4, "total_tokens": len(events) + 8}
    events += [
        {"type": "response.output_text.done", **common, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **common, "part": done},
        {"type": "response.output_item.done", "output_index": 0, "item": finished},
        {"type": "response.completed", "response": _response("completed", [finished], model, usage)},
    ]
    items = tuple(
        ServerSentEvent(data=encode_chunk({**event, "sequence_number": number}), event=event["type"])
        for number, event in enumerate(events)
    )
    return Scenario(items, **options)
