"""``clip``: a text cut to a limit for a record or a line, marked where it was cut."""

from __future__ import annotations

__all__ = ["ELLIPSIS", "clip"]

ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters, else its first ``limit`` and an ellipsis."""
    return text if len(text) <= limit else text[:limit] + ELLIPSIS
