"""The relay's wire vocabulary, shared by its server side, its client side and the durable log."""

from __future__ import annotations

from typing import Any

from deltaflow.events import ErrorReported

DONE_EVENT = "done"
COMPACTED_FIELDS: dict[str, tuple[str, str]] = {
    "content.delta": ("snapshot", "delta"),
    "reasoning.delta": ("snapshot", "delta"),
    "refusal.delta": ("snapshot", "delta"),
    "tool_calls.function.arguments.delta": ("arguments", "arguments_delta"),
}
"""Running texts a durable log leaves out of delta events, each with the delta field it grows by.

Logged whole, they would make a stream's log quadratic in its length; a reader rebuilds them from
the deltas it has read (so a reader that joins mid-stream has them from where it joined)."""


def failure_payload(error: Exception, reported: ErrorReported) -> dict[str, Any]:
    """The ``done`` event's data for a stream that failed with ``error``, reported as ``reported``."""
    # DeltaflowError and openai's LengthFinishReasonError / ContentFilterFinishReasonError carry it
    completion = getattr(error, "completion", None)
    return {
        "ok": False,
        "error": {"type": type(error).__name__, "code": reported.code, "message": reported.message},
        "completion": completion.model_dump(mode="json") if completion is not None else None,
    }
