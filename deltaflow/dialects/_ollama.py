"""Ollama's /v1 endpoint: whole tool calls (without ``index`` before 0.5), ``delta.reasoning``."""

from __future__ import annotations

from deltaflow.dialects._dialect import Dialect
from deltaflow.dialects._fixes import (
    fix_tool_calls,
    move_reasoning,
    release_usage_once,
    split_tool_call_finish,
)

__all__ = ["OLLAMA"]

OLLAMA = Dialect(
    name="ollama",
    steps=(move_reasoning("reasoning"), fix_tool_calls, release_usage_once, split_tool_call_finish),
    base_urls=("localhost:11434", "127.0.0.1:11434", "*:11434", "ollama.com", "*.ollama.com"),
    # older servers reject stream_options; usage comes on the finish chunk when they send it
    include_usage=False,
    quirks=(
        "tool calls arrive whole, historically without `index` (ollama #7881): indexed",
        "reasoning as `delta.reasoning`: moved to `reasoning_content`",
    ),
)
