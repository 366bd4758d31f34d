"""Google Gemini's OpenAI-compatible endpoint: tool calls without ``index``, role in every delta."""

from __future__ import annotations

from deltaflow.dialects._dialect import Dialect
from deltaflow.dialects._fixes import (
    fix_tool_calls,
    one_role_per_choice,
    release_usage_once,
    split_tool_call_finish,
)

__all__ = ["GEMINI"]

GEMINI = Dialect(
    name="gemini",
    steps=(one_role_per_choice, fix_tool_calls, release_usage_once, split_tool_call_finish),
    base_urls=("generativelanguage.googleapis.com", "*-aiplatform.googleapis.com"),
    include_usage=True,
    aliases=("google",),
    quirks=(
        "tool calls without `index` (openai-python #2806), whole or split over index-less deltas: indexed",
        "`extra_content.google.thought_signature` on tool calls: kept on the call",
        "`role` in every delta: kept on the first",
        "`finish_reason` on the chunk with the last content or the whole tool call",
    ),
)
