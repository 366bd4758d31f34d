"""Operator fusion: deltaflow's operators, chained, call each other directly.

Each operator keeps its per-subscription logic in a *stage*: an observer that forwards to the next
observer. Subscribed on its own, a ``Fused`` observable is an ordinary reactivex ``Observable``.
Chained below another ``Fused`` observable, the stages connect straight to each other when the
chain is subscribed, so an event costs one method call per operator instead of three (reactivex
wraps every subscriber in an ``AutoDetachObserver``; RxJava calls this operator fusion).

The stages of one fused chain share a ``ChainState``: a stage that ends the stream from ``on_next``
(``fail``) marks it ended once the end has gone down, and the stages above it, which no reactivex
wrapper stops any more, take nothing after that (``accumulate`` stops handing out the rest of the
chunk's events at once). It also says whether ``accumulate`` is in the chain: then the events
reaching the stages below were made in the chain and seen by no one else yet, and
``parse_partial_json`` and ``assemble_tool_calls`` add their values to them without deriving a copy
per chunk (the copy is what keeps two chains sharing one upstream apart; within one fused chain
there is nothing to keep apart): a ``content.delta``'s ``parsed`` is filled in place, and the
snapshots are made with their values by ``accumulate``'s own state, to which the chain hands their
``snapshot_adders``. Separated by any reactivex operator, or by ``share()``, they derive copies: the
events are the same either way.

The state of a chain is its subscription's own: nothing in it reaches another subscriber.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc

from deltaflow._lazy import LazyModel, Thunk, set_pending, with_pending
from deltaflow.events import ErrorReported
from deltaflow.operators._report import report_and_fail
from deltaflow.state._completion import AddToSnapshot

__all__ = ["ChainState", "Fused", "Stage"]

_T = TypeVar("_T")
EventT = TypeVar("EventT", bound=LazyModel)


class ChainState:
    """What the stages of one fused chain share: whether the stream has ended, who makes its events."""

    __slots__ = ("ended", "makes_events", "reported", "snapshot_adders")

    def __init__(self) -> None:
        self.ended = False
        self.makes_events = False
        """An ``accumulate`` stage is part of this chain: the events it makes are seen by no one
        outside the chain until they leave it, so the stages below may fill in what they add to
        them in place (``deltaflow._lazy.set_pending``) instead of deriving copies."""
        self.reported: list[ErrorReported] | None = None
        """Where the ``error`` events that do not end the stream go besides downstream (``Stage.report``),
        when whoever drives the chain wants them without looking at every event (the facades' driver)."""
        self.snapshot_adders: list[AddToSnapshot] = []
        """``completion, chunk -> completion`` functions of the stages that add values to snapshots,
        in the order the stages were built (the last first). An ``accumulate`` above them makes its
        snapshots with their values (numbered by chunk: every stage of a chain passes every
        ``chunk`` event on, so the chunks a stage counts are the accumulator's)."""


class Stage(abc.ObserverBase[Any]):
    """An operator's per-subscription observer: handles upstream's notifications, calls the next.

    Subclasses implement ``on_next`` and take nothing once ``self.chain.ended``; the end of the
    stream is passed on once. ``fail`` ends the stream from ``on_next``: an ``error`` event, then
    ``on_error``, then the chain is marked ended.
    """

    __slots__ = ("chain", "emit", "observer", "stopped")

    def __init__(self, observer: abc.ObserverBase[Any]) -> None:
        self.observer = observer
        self.emit = observer.on_next
        self.stopped = False
        # stages are built from the last one up: each shares the state of the one below it
        self.chain: ChainState = observer.chain if isinstance(observer, Stage) else ChainState()

    def on_error(self, error: Exception) -> None:
        if not self.stopped:
            self.stopped = True
            self.observer.on_error(error)

    def on_completed(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.observer.on_completed()

    def with_lazy(self, event: EventT, name: str, thunk: Thunk) -> EventT:
        """``event`` with field ``name`` computed by ``thunk`` when read.

        In place when the event was made in this fused chain (``ChainState.makes_events``), else on
        a copy: the event as given may be another subscriber's too.
        """
        return (set_pending if self.chain.makes_events else with_pending)(event, name, thunk)

    def report(self, event: ErrorReported) -> None:
        """Pass on an ``error`` event that does not end the stream, kept for the chain's driver too."""
        reported = self.chain.reported
        if reported is not None:
            reported.append(event)
        self.emit(event)

    def fail(self, error: Exception) -> None:
        """End the stream with ``error``, reported as an ``error`` event first."""
        self.stopped = True
        report_and_fail(self.observer, error)
        # only now: the stages below report and pass on the end, those above stop at once
        self.chain.ended = True


class Fused(Observable[_T]):
    """An operator's output: ``make_stage(downstream)`` builds the stage of each subscription."""

    def __init__(self, source: Observable[Any], make_stage: Callable[[abc.ObserverBase[_T]], Stage]) -> None:
        super().__init__()
        self.source = source
        self.make_stage = make_stage

    def root(self) -> Observable[Any]:
        """The first observable above this one that is not fused: what ``connect``'s head subscribes to."""
        source = self.source
        while isinstance(source, Fused):
            source = source.source
        return source

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
