"""The pull driver: one chunk in, the events it produced out, then the next chunk.

An operator chain is subscribed once to a source the driver controls; pushing a chunk runs the
chain synchronously and leaves the events in a queue the facade hands out before pulling again.
Backpressure comes free and there are no threads: the queue never holds more than one chunk's
events.
"""

from __future__ import annotations

from collections import deque
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
        self.events: deque[BaseEvent] = deque()
        self.error: BaseException | None = None
        self.completed = False
        self.state: CompletionState | None = None
        self._inlet: abc.ObserverBase[Any] | None = None

        def subscribe(
            observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
        ) -> Disposable:
            self._inlet = observer
            return Disposable()

        self._subscription = chain(Observable(subscribe)).subscribe(
            self._on_event, self._on_error, self._on_completed
        )

    @property
    def finished(self) -> bool:
        """The chain completed or failed: nothing more will come out."""
        return self.completed or self.error is not None

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

    def _on_event(self, event: BaseEvent) -> None:
        if self.state is None and isinstance(event.origin, CompletionState):
            self.state = event.origin
        self.events.append(event)

    def _on_error(self, error: Exception) -> None:
        self.error = error

    def _on_completed(self) -> None:
        self.completed = True
