"""The stage of an operator that runs a function of the user's on each event (``map``, ``filter``)."""

from __future__ import annotations

import contextlib
from typing import Any

from openai.types.chat import ParsedChatCompletion
from reactivex import abc

from deltaflow.events import BaseEvent, ChunkReceived
from deltaflow.operators._stage import Stage

__all__ = ["UserCodeStage"]


class UserCodeStage(Stage):
    """Keeps the latest ``chunk`` event, so that an error of the user's code carries the completion so far."""

    __slots__ = ("latest_chunk",)

    def __init__(self, observer: abc.ObserverBase[Any]) -> None:
        super().__init__(observer)
        self.latest_chunk: ChunkReceived | None = None

    def saw(self, event: BaseEvent) -> None:
        """Note an event before the user's code gets it."""
        if type(event) is ChunkReceived:
            self.latest_chunk = event

    def fail_with_completion(self, error: Exception) -> None:
        """End the stream with an error of the user's code, ``.completion`` set where it has none."""
        if getattr(error, "completion", None) is None:
            completion: ParsedChatCompletion[object] | None = (
                self.latest_chunk.snapshot if self.latest_chunk is not None else None
            )
            # an exception class with __slots__ keeps what it has
            with contextlib.suppress(AttributeError):
                setattr(error, "completion", completion)  # noqa: B010 - as accumulate's with_completion
        self.fail(error)
