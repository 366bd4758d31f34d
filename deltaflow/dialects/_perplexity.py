"""Perplexity: cumulative usage on every chunk, role in every delta."""

from __future__ import annotations

from deltaflow.dialects._dialect import Dialect
from deltaflow.dialects._fixes import one_role_per_choice, release_usage_once

__all__ = ["PERPLEXITY"]

PERPLEXITY = Dialect(
    name="perplexity",
    steps=(one_role_per_choice, release_usage_once),
    base_urls=("api.perplexity.ai",),
    include_usage=False,
    aliases=("sonar",),
    quirks=(
        "cumulative `usage` on every chunk: the latest held and released once",
        '`role: "assistant"` in every delta: kept on the first',
        '`finish_reason` key absent until the end; last chunk `object: "chat.completion.done"`',
        "`citations` repeated on every chunk: kept from the first, as OpenAI's extra fields are",
    ),
)
