"""Zhipu GLM / Z.ai: role in every delta, whole tool calls, ``finish_reason`` absent until the end."""

from __future__ import annotations

from deltaflow.dialects._dialect import Dialect
from deltaflow.dialects._fixes import (
    fix_tool_calls,
    one_role_per_choice,
    release_usage_once,
    split_tool_call_finish,
)

__all__ = ["ZHIPU"]

ZHIPU = Dialect(
    name="zhipu",
    steps=(one_role_per_choice, fix_tool_calls, release_usage_once, split_tool_call_finish),
    base_urls=("open.bigmodel.cn", "api.z.ai"),
    # stream_options is not supported; usage comes on the finish chunk
    include_usage=False,
    aliases=("glm", "zai", "z.ai", "bigmodel"),
    quirks=(
        '`role: "assistant"` in every delta: kept on the first',
        "`finish_reason` key absent (not null) until the last chunk: read as null",
        "whole tool call in one chunk unless `tool_stream=true`: its finish moves to a chunk of its own",
        'incremental calls repeat `name: ""`: dropped',
        "`reasoning_content`; usage on the finish chunk",
    ),
)
