"""``filter_refusals()``: refusal events kept, dropped, or raised as ``RefusalError``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from reactivex import Observable, abc

from deltaflow.errors import RefusalError
from deltaflow.events import (
    BaseEvent,
    ChunkReceived,
    Event,
    LogprobsRefusalDelta,
    LogprobsRefusalDone,
    RefusalDelta,
    RefusalDone,
)
from deltaflow.operators._stage import Fused, Stage

__all__ = ["RefusalMode", "filter_refusals"]

RefusalMode = Literal["keep", "drop", "raise"]
_REFUSAL_EVENTS = (RefusalDelta, RefusalDone, LogprobsRefusalDelta, LogprobsRefusalDone)


def filter_refusals(mode: RefusalMode = "keep") -> Callable[[Observable[Event]], Observable[Event]]:
    """Route refusals: ``keep`` them (default), ``drop`` them, or ``raise`` a ``RefusalError``.

    Whatever the mode, a refusal never becomes a silent empty answer: with a ``response_format``,
    there is no ``content.done`` and the final ``parsed`` stays None, as in openai. ``drop`` removes
    ``refusal.*`` and ``logprobs.refusal.*`` events only; the snapshot still holds the refusal.
    ``raise`` ends the stream at ``refusal.done`` with a ``RefusalError`` carrying the whole refusal
    text and the partial completion.

    ::

        --content.delta--refusal.delta--refusal.done--choice.done--|
        [                 filter_refusals("raise")                  ]
        --content.delta--refusal.delta--X RefusalError
    """
    if mode not in ("keep", "drop", "raise"):
        raise ValueError(f"filter_refusals mode must be 'keep', 'drop' or 'raise', not {mode!r}")

    def _filter(source: Observable[Event]) -> Observable[Event]:
        if mode == "keep":
            return source

        return Fused(source, lambda observer: _Filter(mode, observer))

    return _filter


class _Filter(Stage):
    """One subscription: drops refusal events, or ends the stream at ``refusal.done``."""

    __slots__ = ("latest_chunk", "mode")

    def __init__(self, mode: RefusalMode, observer: abc.ObserverBase[Any]) -> None:
        super().__init__(observer)
        self.mode = mode
        self.latest_chunk: ChunkReceived | None = None
        """The last ``chunk`` event seen: its snapshot is the completion a ``RefusalError`` carries."""

    def on_next(self, event: BaseEvent) -> None:
        if self.chain.ended:
            return
        if isinstance(event, ChunkReceived):
            self.latest_chunk = event
        if self.mode == "raise" and isinstance(event, RefusalDone):
            completion = self.latest_chunk.snapshot if self.latest_chunk is not None else None
            self.fail(RefusalError(event.refusal, choice_index=event.choice_index, completion=completion))
            return
        if self.mode == "drop" and isinstance(event, _REFUSAL_EVENTS):
            return
        self.emit(event)
