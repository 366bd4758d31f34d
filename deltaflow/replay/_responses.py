"""What the replay server does differently for the Responses API (``POST /v1/responses``)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from typing import Any

from deltaflow.pipeline._sse import ServerSentEvent

from ._wire import ReplayItem, encode_chunk

__all__ = ["RESPONSES_PATHS", "completed_response", "response_error_event"]

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


def completed_response(events: tuple[ReplayItem, ...]) -> dict[str, Any] | None:
    """The non-streaming answer: the response the last lifecycle event carries, or None."""
    for payload in reversed(_payloads(events)):
        if payload.get("type") in ("response.completed", "response.incomplete", "response.failed"):
            response = payload.get("response")
            return response if isinstance(response, dict) else None
    return None
