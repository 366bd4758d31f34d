"""Running a stream to its end through the command's observers."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from deltaflow import sinks
from deltaflow.pipeline import ChatStream

__all__ = ["drive"]


def drive(chat: ChatStream[Any], observers: Sequence[Any]) -> Any:
    """Run ``chat`` to its end through ``observers``; return the final completion, or raise."""
    with chat.subscribe(sinks.fan_out(*observers)) as running:
        running.until_done()
        return running.get_final_completion()
