"""Groq: reasoning under ``delta.reasoning``, usage under ``x_groq``, whole tool calls in one chunk."""

from __future__ import annotations

from typing import Any

from deltaflow.dialects._dialect import Dialect
from deltaflow.dialects._fixes import (
    drop_delta_fields,
    move_reasoning,
    release_usage_once,
    split_tool_call_finish,
)
from deltaflow.dialects._state import StreamState

__all__ = ["GROQ", "lift_x_groq_usage"]


def lift_x_groq_usage(chunk: dict[str, Any], state: StreamState) -> None:
    """Use ``x_groq.usage`` as the chunk's usage when the top-level ``usage`` is missing.

    Groq reports usage (with queue / prompt / completion times) in ``x_groq.usage`` on the finish
    chunk; current versions duplicate it as the top-level ``usage``, older ones did not.
    """
    x_groq = chunk.get("x_groq")
    if isinstance(x_groq, dict) and x_groq.get("usage") is not None and chunk.get("usage") is None:
        chunk["usage"] = x_groq["usage"]
        state.changed = True


GROQ = Dialect(
    name="groq",
    steps=(
        lift_x_groq_usage,
        move_reasoning("reasoning"),
        drop_delta_fields("channel"),
        release_usage_once,
        split_tool_call_finish,
    ),
    base_urls=("api.groq.com",),
    # rejected with "property 'stream_options' is unsupported" in 2024; accepted since 2025
    include_usage=True,
    quirks=(
        "reasoning as `delta.reasoning`: moved to `reasoning_content`",
        'gpt-oss labels reasoning deltas `delta.channel: "analysis"`: dropped',
        "usage in `x_groq.usage` (duplicated as top-level `usage` by current versions)",
        "whole tool call in one chunk: its finish_reason, if on the same chunk, moves to its own chunk",
        "mid-stream `event: error` with no `[DONE]`: a ProviderError (raised by the SSE decoder)",
    ),
)
