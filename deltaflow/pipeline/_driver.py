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
from deltaflow.state import CompletionState

__all__ = ["Chain", "Driver"]

Chain = Callable[[Observable[Any]], Observable[BaseEvent]]


class Driver:
    """Pushes chunks through a chain and collects what comes out."""

    def __init__(self, chain: Chain) -> None:
        self._events: list[BaseEvent] = []
        self.error: BaseException | None = None
        self.completed = False
        self.finished = False
        """The chain completed or failed: nothing more will come out."""
        self.state: CompletionState | None = None
        self._inlet: abc.ObserverBase[Any] | None = None

        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> Disposable:
            self._inlet = observer
            return Disposable()

        self._subscription = chain(Observable(subscribe)).subscribe(
            self._events.append, self._on_error, self._on_completed
        )
        if self._inlet is not None:
            # the chain subscribed synchronously: push straight into it (it ignores pushes once stopped)
            self.push = self._inlet.on_next

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

    def take(self) -> list[BaseEvent]:
        """The events that came out since the last call, in order."""
        # the chain appends to this very list (its bound append was subscribed): copy, then clear
        events = self._events.copy()
        self._events.clear()
        if self.state is None:
            self.state = next((e.origin for e in events if isinstance(e.origin, CompletionState)), None)
        return events

    def _on_error(self, error: Exception) -> None:
        self.error = error
        self.finished = True

    def _on_completed(self) -> None:
        self.completed = True
        self.finished = True
