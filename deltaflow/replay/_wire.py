"""What goes on the wire: SSE events and comment lines, and their encoding to bytes."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeAlias

from deltaflow.pipeline._sse import ServerSentEvent

__all__ = ["DONE", "Comment", "ReplayItem", "encode_chunk", "encode_item"]


@dataclass(frozen=True, slots=True)
class Comment:
    """An SSE comment line, sent as ``:`` + ``text`` (keep-alives such as ``: OPENROUTER PROCESSING``).

    Attributes:
        text: everything after the colon, leading space included, so recordings replay byte for byte.
    """

    text: str


ReplayItem: TypeAlias = ServerSentEvent | Comment
"""One thing a scenario sends: an event (counted, paced, subject to faults) or a comment (neither)."""

DONE = ServerSentEvent(data="[DONE]")


def encode_chunk(chunk: Mapping[str, Any]) -> str:
    """Serialize a chunk compactly, the way OpenAI does (no spaces, non-ASCII kept)."""
    return json.dumps(chunk, separators=(",", ":"), ensure_ascii=False)


def encode_item(item: ReplayItem) -> bytes:
    """Encode one event or comment as SSE bytes, ending with the blank line that dispatches it."""
    if isinstance(item, Comment):
        return f":{item.text}\n\n".encode()
    lines = [] if item.event is None else [f"event: {item.event}"]
    if item.id is not None:
        lines.append(f"id: {item.id}")
    lines.extend(f"data: {line}" for line in item.data.split("\n"))
    return ("\n".join(lines) + "\n\n").encode()
