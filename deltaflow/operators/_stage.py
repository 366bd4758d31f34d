"""Writing an operator: a ``Fused`` observable whose per-subscription work lives in a ``Stage``.

The idiom, which every deltaflow operator but ``split_by_choice`` follows and a user's may too
(``deltaflow.operators.map`` and ``filter`` are the smallest examples)::

    def my_operator() -> Callable[[Observable[Event]], Observable[Event]]:
        return lambda source: Fused(source, _My)

    class _My(Stage):
        __slots__ = ()

        def on_next(self, event: BaseEvent) -> None:
            if self.chain.ended:
                return
            self.emit(event)  # or events of its own; ``self.fail(error)`` ends the stream

Subscribed on its own, a ``Fused`` observable is an ordinary reactivex ``Observable``. Chained
below another ``Fused`` one, the stages are connected straight to each other when the chain is
subscribed (``Fused.connect``: built from the last stage up, each taking the next as its observer),
so an event costs one method call per operator instead of reactivex's three (its
``AutoDetachObserver`` per subscription; RxJava calls this operator fusion). The stages of one fused
chain share a ``ChainState``; two facts live there, and everything the stages may skip derives from
them:

- **Made in this chain** (``ChainState.makes_events``): an ``accumulate`` stage is in the chain, so
  the events reaching the stages below it were made here and are seen by nobody until they leave
  the chain. That is the one rule behind every saved copy: a stage adds a field to such an event
  in place (``Stage.with_lazy``, ``Stage.refine``: a ``content.delta``'s ``parsed``, the ``parsed``
  of a chunk's snapshot), and derives a copy of any other event, which another subscriber (a
  ``share()``, a ``publish()``) may hold. Below a plain reactivex operator the chain starts again
  without ``accumulate``: the stages there copy, and the events are the same either way
  (``tests/operators/test_shared_upstream.py``). An operator that hands events to code of the user
  (``map``, ``filter``) passes on what it is given within the chain: that code sees an event still
  being made, which the stages below may fill in.
- **Ended** (``ChainState.ended``): no reactivex wrapper stops the stages above one that ends the
  stream from ``on_next`` (``Stage.fail``), so it marks the chain ended once the end has gone down,
  and every stage's ``on_next`` returns at once after that (its first line; ``accumulate`` also
  stops handing out the rest of the chunk's events).

The state of a chain is its subscription's own: nothing in it reaches another subscriber.

Tricks that were here and went, each having saved under the 10 % of the instructions per chunk a
readability cost must buy (``benchmarks/RESULTS.md``): the accumulator making the snapshots with
the values of the stages below (3.7 %; ``Stage.refine`` in place does the same job), the stages
handing the facade's driver the error events that do not end the stream (0.5 %), and the driver
connecting a fused chain as its last stage instead of subscribing to it (3.4 %).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from reactivex import Observable, abc

from deltaflow._lazy import LazyModel, Thunk, refine, set_pending, with_pending
from deltaflow.operators._report import report_and_fail

__all__ = ["ChainState", "Fused", "Stage"]

_T = TypeVar("_T")
EventT = TypeVar("EventT", bound=LazyModel)


class ChainState:
    """What the stages of one fused chain share (see the module's docstring)."""

    __slots__ = ("ended", "makes_events")

    def __init__(self) -> None:
        self.ended = False
        """A stage ended the stream from ``on_next``: the stages above take nothing more."""
        self.makes_events = False
        """Made in this chain: an ``accumulate`` stage is part of it, so the events the stages below
        it get are seen by nobody else yet and may be filled in place."""


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

    def refine(self, event: EventT, name: str, function: Callable[[Any], Any], argument: Any) -> EventT:
        """``event`` with field ``name`` computed by ``function((thunk of its former value, argument))``.

        In place or on a copy, as ``with_lazy``.
        """
        return refine(event, name, function, argument, in_place=self.chain.makes_events)

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
