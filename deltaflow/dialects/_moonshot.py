"""Moonshot / Kimi: usage inside the finishing choice."""

from __future__ import annotations

from deltaflow.dialects._dialect import Dialect
from deltaflow.dialects._fixes import lift_choice_usage, release_usage_once

__all__ = ["MOONSHOT"]

MOONSHOT = Dialect(
    name="moonshot",
    steps=(lift_choice_usage, release_usage_once),
    base_urls=("api.moonshot.ai", "api.moonshot.cn"),
    include_usage=False,
    aliases=("kimi",),
    quirks=(
        "usage as `choices[0].usage` on the finish choice: moved to the top-level `usage`",
        "`reasoning_content` on thinking models: read as it is",
    ),
)
