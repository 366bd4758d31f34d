"""DeepSeek: ``reasoning_content`` (the spelling deltaflow uses), usage on the finish chunk."""

from __future__ import annotations

from deltaflow.dialects._dialect import Dialect
from deltaflow.dialects._fixes import release_usage_once

__all__ = ["DEEPSEEK"]

DEEPSEEK = Dialect(
    name="deepseek",
    # reasoning_content, `: keep-alive` comments, content + finish + usage on one chunk: all read as
    # they are; only usage needs watching
    steps=(release_usage_once,),
    base_urls=("api.deepseek.com",),
    # accepted, though usage still comes on the finish chunk rather than a chunk of its own
    include_usage=True,
    quirks=(
        '`delta.reasoning_content` (first delta `""`, then `null` once content starts): read as it is',
        "usage on the finish chunk, even with `include_usage`; extra `prompt_cache_hit_tokens` kept",
        "the finish chunk can carry content, `finish_reason` and usage together",
    ),
)
