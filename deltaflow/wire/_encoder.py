"""What a wire format is to the relays: an encoder of deltaflow's events into its SSE frames."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal, Protocol, TypeAlias

__all__ = ["FORMATS", "WireEncoder", "WireFormat", "outcome_of", "sse_data"]

WireFormat: TypeAlias = Literal["deltaflow", "ai-sdk", "ag-ui"]
"""A relay's wire format: deltaflow's own event JSON, the AI SDK UI Message Stream, or AG-UI events."""

FORMATS: tuple[WireFormat, ...] = ("deltaflow", "ai-sdk", "ag-ui")


class WireEncoder(Protocol):
    """Turns one stream's deltaflow events, in order, into a front-end protocol's messages.

    Events come as their type and JSON form (as the durable log holds them: running texts such as
    ``snapshot`` may be absent); the encoder keeps what it needs to open and close the protocol's
    parts. Each method returns the protocol's messages (JSON objects) the input makes, often none.
    """

    headers: list[tuple[bytes, bytes]]
    """Response headers the protocol asks for, beside the SSE ones."""

    def start(self) -> list[dict[str, Any]]:
        """The messages that open the stream."""
        ...

    def event(self, kind: str, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The messages one deltaflow event makes."""
        ...

    def finish(self, outcome: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The messages that close the stream, from the relay's terminal ``done`` payload."""
        ...

    def trailer(self) -> bytes:
        """Bytes sent after the last message (the AI SDK's ``data: [DONE]``)."""
        ...


def sse_data(messages: list[dict[str, Any]], event_id: str | None = None) -> bytes:
    """Messages as ``data:`` events; ``event_id`` goes on the last one (where a reader resumes after)."""
    frames = [f"data: {json.dumps(message, separators=(',', ':'))}\n\n" for message in messages]
    if event_id is not None and frames:
        frames[-1] = f"id: {event_id}\n{frames[-1]}"
    return "".join(frames).encode()


def outcome_of(payload: Mapping[str, Any]) -> str:
    """``done``, ``error`` or ``aborted``: the durable log says it, the plain relay's ``ok`` implies it."""
    outcome = payload.get("outcome")
    if isinstance(outcome, str):
        return outcome
    return "done" if payload.get("ok") else "error"


class GrowthGate:
    """When a value resent whole as it grows is due again: while small always, then each time it grew by 1/4.

    The protocols replace a growing value whole (the AI SDK's data parts; AG-UI's JSON Patch, which cannot
    append to a string). Resent on every change, a value of n characters would cost O(n²) in all; resent at
    sizes growing geometrically, it costs O(n), so each chunk's share of the work stays proportional to the
    chunk. Sizes are the caller's running counts (the text received so far), never measured from the value.
    """

    SMALL = 1024
    GROWTH = 1.25

    def __init__(self) -> None:
        self._sent: dict[object, int] = {}

    def due(self, key: object, size: int) -> bool:
        """Whether the value under ``key``, now ``size`` long, goes out now; if it does, it counts as sent."""
        if size < self.SMALL or size >= self._sent.get(key, 0) * self.GROWTH:
            self._sent[key] = size
            return True
        return False
