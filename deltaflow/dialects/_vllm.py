"""vLLM: ``reasoning_content`` turning into ``reasoning``, optional cumulative usage."""

from __future__ import annotations

from deltaflow.dialects._dialect import Dialect
from deltaflow.dialects._fixes import fix_tool_calls, move_reasoning, release_usage_once

__all__ = ["VLLM"]

VLLM = Dialect(
    name="vllm",
    steps=(move_reasoning("reasoning"), fix_tool_calls, release_usage_once),
    # self-hosted: no fixed host, pick it by name
    base_urls=(),
    include_usage=True,
    aliases=("sglang",),
    quirks=(
        "reasoning as `reasoning_content` (with `--reasoning-parser`), newer releases `reasoning` too",
        "`continuous_usage_stats`: cumulative usage on every chunk, released once",
        "two fragments with the same `index` in one chunk (speculative decoding): read in order",
        "`stop_reason` and `token_ids` extras on the choice: kept",
    ),
)
