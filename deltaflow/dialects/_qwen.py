"""Qwen on Alibaba DashScope (compatible mode): ``"id": ""`` repeated on tool-call continuations."""

from __future__ import annotations

from deltaflow.dialects._dialect import Dialect
from deltaflow.dialects._fixes import fix_tool_calls, release_usage_once

__all__ = ["QWEN"]

QWEN = Dialect(
    name="qwen",
    steps=(fix_tool_calls, release_usage_once),
    base_urls=("dashscope.aliyuncs.com", "dashscope-intl.aliyuncs.com", "dashscope-*.aliyuncs.com"),
    include_usage=True,
    aliases=("dashscope", "alibaba"),
    quirks=(
        'tool-call continuations repeat `"id": ""` and `"type": "function"`: dropped',
        'a trailing `arguments: ""` fragment whose choice has no `finish_reason` key',
        "`reasoning_content` with `enable_thinking`; usage on a `choices: []` chunk",
    ),
)
