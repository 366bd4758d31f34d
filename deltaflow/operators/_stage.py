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

__all__ = ["Fused", "Stage"]

_T = TypeVar("_T")

Stage = abc.ObserverBase[Any]
"""An operator's per-subscription observer: it handles upstream's notifications and calls the next."""


class Fused(Observable[_T]):
    """An operator's output: ``make_stage(downstream)`` builds the stage of each subscription."""

    def __init__(self, source: Observable[Any], make_stage: Callable[[abc.ObserverBase[_T]], Stage]) -> None:
        super().__init__()
        self.source = source
        self.make_stage = make_stage

    def connect(self, observer: abc.ObserverBase[_T]) -> tuple[Stage, Observable[Any]]:
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
