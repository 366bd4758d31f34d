"""The pull driver: one chunk in, the events it produced out, then the next chunk.

An operator chain is subscribed once to a source the driver controls; pushing a chunk runs the
chain synchronously and leaves the events in a list the facade takes and hands out before pulling
again.
Backpressure comes free and there are no threads: the queue never holds more than one chunk's
events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import Disposable

from deltaflow.events import BaseEvent

__all__ = ["Chain", "Driver"]

Chain = Callable[[Observable[Any]], Observable[BaseEvent]]


class Driver(abc.ObserverBase[BaseEvent]):
    """Pushes chunks through a chain and collects what comes out (the chain's last observer)."""

    def __init__(self, chain: Chain) -> None:
        self._events: list[BaseEvent] = []
        self.error: BaseException | None = None
        self.completed = False
        self.finished = False
        """The chain completed or failed: nothing more will come out."""
        self._inlet: abc.ObserverBase[Any] | None = None
        # the method below, bound straight to the list's own append: one call less per event
        self.on_next = self._events.append  # type: ignore[method-assign,assignment]
        inlet = Observable(self._attach)
        events = chain(inlet)
        # subscribed as any observable: a fused chain connects its own stages (operators/_stage.py)
        self._subscription = events.subscribe(self.on_next, self.on_error, self.on_completed)

    def _attach(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> Disposable:
        """The chain's source: keeps the observer that chunks are pushed to."""
        self._inlet = observer
        # pushed straight into it from now on (it takes nothing once it has ended)
        self.push = observer.on_next  # type: ignore[method-assign,assignment]
        return Disposable()

    def push(self, chunk: Any) -> None:
        """Run one chunk through the chain."""
        if self._inlet is not None and not self.finished:
            self._inlet.on_next(chunk)

    def fail(self, error: Exception) -> None:
        """The source failed: pass its error down the chain (which attaches the snapshot)."""
        if self._inlet is not None and not self.finished:
            self._inlet.on_error(error)

    def complete(self) -> None:
        """The source ended."""
        if self._inlet is not None and not self.finished:
            self._inlet.on_completed()

    def dispose(self) -> None:
        """Unsubscribe the chain."""
        self._subscription.dispose()

    @property
    def events(self) -> list[BaseEvent]:
        """The list the chain appends its events to: whoever reads it clears it before the next push."""
        return self._events

    def on_next(self, event: BaseEvent) -> None:
        """An event came out of the chain."""
        self._events.append(event)

    def on_error(self, error: Exception) -> None:
        """The chain failed."""
        self.error = error
        self.finished = True

    def on_completed(self) -> None:
        """The chain completed."""
        self.completed = True
        self.finished = True
