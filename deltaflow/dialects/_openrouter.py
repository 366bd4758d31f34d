"""OpenRouter: reasoning under ``reasoning`` / ``reasoning_details``, usage and errors mid-stream."""

from __future__ import annotations

from types import MappingProxyType
from typing import Any

from deltaflow._shown import shown
from deltaflow.dialects._dialect import Dialect
from deltaflow.dialects._fixes import (
    REASONING_FIELD,
    fix_tool_calls,
    move_reasoning,
    one_role_per_choice,
    release_usage_once,
)
from deltaflow.dialects._state import StreamState, Unrecognized

__all__ = ["OPENROUTER", "collect_reasoning_details", "merge_indexed"]

# reasoning_details entry types whose text is reasoning text, and the key holding it
_DETAIL_TEXT = MappingProxyType({"reasoning.text": "text", "reasoning.summary": "summary"})
# keys of a reasoning_details entry that stream in pieces; the others are labels, sent whole
_DETAIL_PIECES = frozenset({"text", "summary", "data", "signature"})


def collect_reasoning_details(chunk: dict[str, Any], state: StreamState) -> None:
    """Merge ``delta.reasoning_details`` across the stream and emit it once, on the finish.

    OpenRouter streams ``reasoning_details: [{"type": "reasoning.text", "text": ..., "index": 0,
    "format": ...}]`` (also ``reasoning.encrypted`` with ``data``, and a ``signature`` in a later
    delta) alongside ``reasoning``, and ``reasoning_details: []`` on most other deltas. The entries
    must be sent back whole on the next turn. Fragments are merged by ``index`` (text pieces
    joined, labels kept) and the merged list goes out once, on the delta that finishes the choice
    (or at the end of the stream), so the message gets it whole. When a delta has no reasoning
    text of its own, the text of its details is used.
    """
    for choice in chunk["choices"]:
        delta = choice["delta"]
        index = choice["index"]
        if "reasoning_details" in delta:
            details = delta.pop("reasoning_details")
            state.changed = True
            if details:
                if not isinstance(details, list):
                    raise Unrecognized(f"delta.reasoning_details must be a list, got {shown(details)}")
                if delta.get(REASONING_FIELD) is None:
                    text = "".join(_detail_text(entry) for entry in details)
                    if text:
                        delta[REASONING_FIELD] = text
                merge_indexed(state.reasoning_details.setdefault(index, []), details)
        if choice.get("finish_reason") and state.reasoning_details.get(index):
            delta["reasoning_details"] = state.reasoning_details.pop(index)
            state.changed = True


def merge_indexed(merged: list[Any], entries: list[Any]) -> None:
    """Merge streamed list entries into ``merged``: by their ``index`` if they have one, else appended."""
    for entry in entries:
        if not isinstance(entry, dict) or type(entry.get("index")) is not int:
            merged.append(entry)
            continue
        target = next(
            (item for item in merged if isinstance(item, dict) and item.get("index") == entry["index"]), None
        )
        if target is None:
            merged.append(dict(entry))
            continue
        for key, value in entry.items():
            previous = target.get(key)
            if key in _DETAIL_PIECES and isinstance(previous, str) and isinstance(value, str):
                target[key] = previous + value
            elif value is not None:
                target[key] = value


def _detail_text(entry: object) -> str:
    if not isinstance(entry, dict):
        return ""
    kind = entry.get("type")
    key = _DETAIL_TEXT.get(kind) if isinstance(kind, str) else None
    text = entry.get(key) if key is not None else None
    return text if isinstance(text, str) else ""


OPENROUTER = Dialect(
    name="openrouter",
    steps=(
        move_reasoning("reasoning"),
        collect_reasoning_details,
        one_role_per_choice,
        fix_tool_calls,
        release_usage_once,
    ),
    base_urls=("openrouter.ai", "*.openrouter.ai"),
    # deprecated and without effect: usage is always sent
    include_usage=True,
    quirks=(
        "reasoning as `delta.reasoning`: moved to `reasoning_content`",
        "`delta.reasoning_details` fragments (text, encrypted, signature): merged, emitted once on the "
        "finish",
        '`role: "assistant"` in every delta: kept on the first',
        "usage on a chunk after the finish chunk",
        "HTTP 200 then a chunk with top-level `error` (and usage): usage kept, then ProviderError",
        "gateways pass upstream tool-call indexes through (sparse, from 1, reused): made dense",
        "`: OPENROUTER PROCESSING` comments (skipped by the SSE decoder)",
    ),
)
