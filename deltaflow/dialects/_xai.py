"""xAI Grok: whole tool calls in one chunk, all at ``index: 0``; ``finish_reason`` absent until the end."""

from __future__ import annotations

from deltaflow.dialects._dialect import Dialect
from deltaflow.dialects._fixes import fix_tool_calls, release_usage_once, split_tool_call_finish

__all__ = ["XAI"]

XAI = Dialect(
    name="xai",
    steps=(fix_tool_calls, release_usage_once, split_tool_call_finish),
    base_urls=("api.x.ai",),
    include_usage=True,
    aliases=("grok",),
    quirks=(
        "whole tool call in one chunk: a finish on the same chunk moves to a chunk of its own",
        "parallel calls (grok-3) each sent whole at `index: 0` with their own id: numbered 0, 1, 2",
        "`finish_reason` and `logprobs` keys absent on non-final chunks: read as null",
        "`reasoning_content` (grok-3-mini); usage on a `choices: []` chunk with `cost_in_usd_ticks`",
    ),
)
