"""OpenAI itself: the reference shape, passed through untouched."""

from __future__ import annotations

from deltaflow.dialects._dialect import Dialect

__all__ = ["OPENAI"]

OPENAI = Dialect(
    name="openai",
    steps=(),
    base_urls=("api.openai.com",),
    include_usage=True,
    quirks=(),
)
