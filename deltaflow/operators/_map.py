"""``map(function)``: each event through a function of the user's, fused with deltaflow's operators."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc

from deltaflow.events import BaseEvent, Event
from deltaflow.operators._stage import Fused
from deltaflow.operators._user_code import UserCodeStage

__all__ = ["map"]


def map(function: Callable[[Event], Event]) -> Callable[[Observable[Event]], Observable[Event]]:
    """Pass on ``function(event)`` for each event: ``reactivex.operators.map``, fused.

    Between deltaflow's operators it costs one call per event and changes nothing else; a plain
    ``reactivex`` operator in the same place also makes the operators below copy the events they
    fill in (see the README's "Write your own operator"). ``function`` gets an event that may still
    be filled in by the operators below (``parsed`` on a ``content.delta``): return it, or one
    derived from it (``event.evolve(fields=...)``), and keep it only as it leaves the chain. An
    exception from ``function`` ends the stream with an ``error`` event, then the exception, which
    carries the completion so far as ``.completion``.

    ::

        --a------b------c--|
        [ map(f)           ]
        --f(a)---f(b)---f(c)--|
    """

    def _map(source: Observable[Event]) -> Observable[Event]:
        return Fused(source, lambda observer: _Map(function, observer))

    return _map


class _Map(UserCodeStage):
    """One subscription: the function, called on each event."""

    __slots__ = ("function",)

    def __init__(self, function: Callable[[Event], Event], observer: abc.ObserverBase[Any]) -> None:
        super().__init__(observer)
        self.function = function

    def on_next(self, event: BaseEvent) -> None:
        if self.chain.ended:
            return
        self.saw(event)
        try:
            mapped = self.function(event)  # type: ignore[arg-type]  # every event is one of Event
        except Exception as exc:  # noqa: BLE001 - the user's code: any error ends the stream, typed as raised
            self.fail_with_completion(exc)
            return
        self.emit(mapped)
