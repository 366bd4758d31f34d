"""Mistral: content as a list of typed parts, and whole tool calls without ``index`` or ``type``."""

from __future__ import annotations

from typing import Any

from deltaflow._shown import shown
from deltaflow.dialects._dialect import Dialect
from deltaflow.dialects._fixes import (
    REASONING_FIELD,
    drop_delta_fields,
    fix_tool_calls,
    one_role_per_choice,
    release_usage_once,
    split_tool_call_finish,
)
from deltaflow.dialects._state import StreamState, Unrecognized

__all__ = ["MISTRAL", "split_content_parts"]


def split_content_parts(chunk: dict[str, Any], state: StreamState) -> None:
    """Turn a list-typed ``delta.content`` into content text and reasoning text.

    Magistral streams ``delta.content`` as ``[{"type": "thinking", "thinking": [{"type": "text",
    "text": ...}]}, {"type": "text", "text": ...}]``, mixed with plain string deltas. Thinking
    text moves to ``reasoning_content``, text parts join into a string ``content``; a part of
    another type is not understood.
    """
    for choice in chunk["choices"]:
        delta = choice["delta"]
        content = delta.get("content")
        if not isinstance(content, list):
            continue
        texts: list[str] = []
        thoughts: list[str] = []
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            if isinstance(part, str):
                texts.append(part)
            elif kind == "text":
                texts.append(_text(part))
            elif kind == "thinking":
                thinking = part.get("thinking")
                pieces = thinking if isinstance(thinking, list) else [thinking]
                thoughts.extend(piece if isinstance(piece, str) else _text(piece) for piece in pieces)
            else:
                raise Unrecognized(f"a content part of unknown type {shown(kind)}")
        delta["content"] = "".join(texts) if texts else None
        if thoughts:
            delta[REASONING_FIELD] = (delta.get(REASONING_FIELD) or "") + "".join(thoughts)
        state.changed = True


def _text(part: object) -> str:
    text = part.get("text") if isinstance(part, dict) else None
    if type(text) is not str:
        raise Unrecognized(f"a text content part without a string `text`: {shown(part)}")
    return text


MISTRAL = Dialect(
    name="mistral",
    steps=(
        split_content_parts,
        drop_delta_fields("index"),
        one_role_per_choice,
        fix_tool_calls,
        release_usage_once,
        split_tool_call_finish,
    ),
    base_urls=("api.mistral.ai", "codestral.mistral.ai"),
    # stream_options is rejected with 422 "extra_forbidden"; usage comes on the finish chunk anyway
    include_usage=False,
    quirks=(
        "Magistral `delta.content` as a list of `thinking` / `text` parts: split into reasoning and content",
        "whole tool call in one chunk, no `index`, no `type`, with `finish_reason` and usage: indexed, "
        "typed, and its finish moved to a chunk of its own",
        'incremental calls (model zai-glm-5-2) repeat `name: ""` and carry a stray `delta.index`: dropped',
    ),
)
