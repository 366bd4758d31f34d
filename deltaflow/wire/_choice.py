"""Choosing a wire format per endpoint or per request, and what each needs from the request."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from deltaflow._asgi import Send, respond_json
from deltaflow.events import BaseEvent
from deltaflow.wire._ag_ui import AgUiEncoder
from deltaflow.wire._ai_sdk import AiSdkEncoder
from deltaflow.wire._encoder import FORMATS, WireEncoder, WireFormat
from deltaflow.wire._requests import ag_ui_request, ai_sdk_request

__all__ = ["check_format", "encoder_for", "event_data", "request_for", "stream_key", "wire_request"]


def check_format(value: str) -> WireFormat:
    """``value`` as a wire format.

    Raises:
        ValueError: it names none.
    """
    for known in FORMATS:
        if value == known:
            return known
    raise ValueError(f"wire: one of {', '.join(FORMATS)}")


def request_for(wire: WireFormat, body: Mapping[str, Any]) -> dict[str, Any]:
    """The body ``make_stream`` gets: its protocol's messages as chat messages (deltaflow's: as it is).

    Raises:
        ValueError: the body is not its protocol's request.
    """
    if wire == "ai-sdk":
        return ai_sdk_request(body)
    if wire == "ag-ui":
        return ag_ui_request(body)
    return dict(body)


async def wire_request(
    send: Send, asked: str | None, default: WireFormat, body: Mapping[str, Any]
) -> tuple[WireFormat, dict[str, Any]] | None:
    """A request's wire format (its ``?wire=``, else ``default``) and the body ``make_stream`` gets.

    Answers 422 itself and returns None when the format is unknown or the body not its protocol's.
    """
    try:
        wire = check_format(asked or default)
        return wire, request_for(wire, body)
    except ValueError as error:
        await respond_json(send, 422, {"error": str(error)[:2000]})
        return None


def stream_key(wire: WireFormat, body: Mapping[str, Any]) -> str | None:
    """The id a durable stream of this request takes: the AI SDK's chat id, AG-UI's thread id."""
    key = body.get("id") if wire == "ai-sdk" else body.get("threadId") if wire == "ag-ui" else None
    return key if isinstance(key, str) else None


def encoder_for(wire: WireFormat, ids: Mapping[str, Any]) -> WireEncoder | None:
    """The encoder of a wire format (None for deltaflow's own), with the ids its stream keeps."""
    if wire == "ai-sdk":
        return AiSdkEncoder(_text(ids.get("messageId")))
    if wire == "ag-ui":
        return AgUiEncoder(_text(ids.get("threadId")), _text(ids.get("runId")))
    return None


_UNREAD = {"content.delta": "parsed", "tool_calls.function.arguments.delta": "parsed_arguments"}
"""Fields the encoders never read from a delta: each is the whole value so far, O(answer) to serialise."""


def event_data(event: BaseEvent) -> dict[str, Any]:
    """An event's JSON form as an encoder reads it: without running texts and values so far.

    Serialising those would cost each chunk the whole answer so far; the encoders rebuild what
    they need from the deltas (the parsed value from ``content.parsed.delta``).
    """
    # imported here: deltaflow.recipes imports this module (its relay speaks the wire formats)
    from deltaflow.recipes._relay_wire import COMPACTED_FIELDS, encode_event  # noqa: PLC0415

    running = COMPACTED_FIELDS.get(event.type)
    unread = _UNREAD.get(event.type)
    exclude = {field for field in (running[0] if running else None, unread) if field is not None}
    # encode_event: off-type values and lone surrogates go out as on deltaflow's own wire
    loaded: dict[str, Any] = json.loads(encode_event(event, exclude=exclude or None))
    return loaded


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
