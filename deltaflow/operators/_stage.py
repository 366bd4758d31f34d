"""Operator fusion: deltaflow's operators, chained, call each other directly.

Each operator keeps its per-subscription logic in a *stage*: an observer that forwards to the next
observer. Subscribed on its own, a ``Fused`` observable is an ordinary reactivex ``Observable``.
Chained below another ``Fused`` observable, the stages connect straight to each other when the
chain is subscribed, so an event costs one method call per operator instead of three (reactivex
wraps every subscriber in an ``AutoDetachObserver``; RxJava calls this operator fusion).

A stage that ends the stream itself (``on_error`` from ``on_next``) stops taking events: nothing
upstream checks for it any more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc

from deltaflow.operators._report import report_and_fail

__all__ = ["Fused", "Stage"]

_T = TypeVar("_T")


class Stage(abc.ObserverBase[Any]):
    """An operator's per-subscription observer: handles upstream's notifications, calls the next.

    Subclasses implement ``on_next``; the end of the stream is passed on once. ``fail`` ends the
    stream from ``on_next`` (an ``error`` event, then ``on_error``) and takes nothing after it.
    """

    __slots__ = ("emit", "observer", "stopped")

    def __init__(self, observer: abc.ObserverBase[Any]) -> None:
        self.observer = observer
        self.emit = observer.on_next
        self.stopped = False

    def on_error(self, error: Exception) -> None:
        if not self.stopped:
            self.stopped = True
            self.observer.on_error(error)

    def on_completed(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.observer.on_completed()

    def fail(self, error: Exception) -> None:
        """End the stream with ``error``, reported as an ``error`` event first."""
        self.stopped = True
        report_and_fail(self.observer, error)


class Fused(Observable[_T]):
    """An operator's output: ``make_stage(downstream)`` builds the stage of each subscription."""

    def __init__(
        self, source: Observable[Any], make_stage: Callable[[abc.ObserverBase[_T]], abc.ObserverBase[Any]]
    ) -> None:
        super().__init__()
        self.source = source
        self.make_stage = make_stage

    def connect(self, observer: abc.ObserverBase[_T]) -> tuple[abc.ObserverBase[Any], Observable[Any]]:
        """Build the stages of this operator and of the fused ones above it, ending in ``observer``.

        Returns:
            The first stage, and the observable it must be subscribed to (the first not fused).
        """
        stage = self.make_stage(observer)
        source = self.source
        while isinstance(source, Fused):
            stage = source.make_stage(stage)
            source = source.source
        return stage, source

    def _subscribe_core(
        self, observer: abc.ObserverBase[_T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        head, source = self.connect(observer)
        return source.subscribe(head, scheduler=scheduler)
