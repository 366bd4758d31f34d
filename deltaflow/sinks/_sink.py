"""``Sink``: the base every deltaflow sink shares, an Rx observer of events with a name and ``close``."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from reactivex import abc

from deltaflow.events import BaseEvent

__all__ = ["Sink", "sink_name"]


class Sink(abc.ObserverBase[BaseEvent]):
    """An Rx observer of events: ``on_next`` per event, then ``on_completed`` or ``on_error``.

    A sink follows one stream: build a new one for each. It works wherever an observer does:
    ``observable.subscribe(sink)``, ``ChatStream(...).subscribe(sink)``, or inside
    ``sinks.fan_out(...)``. ``close()`` releases what the sink holds (a file, a live display) when a
    stream is abandoned before its end; the end of a stream closes it anyway.

    Attributes:
        name: how ``fan_out`` names the sink when it reports a failure.
    """

    name: str = "sink"

    def on_next(self, value: BaseEvent) -> None:
        """Handle one event."""

    def on_error(self, error: Exception) -> None:
        """The stream failed with ``error``; nothing more will come."""
        self.close()

    def on_completed(self) -> None:
        """The stream ended; nothing more will come."""
        self.close()

    def close(self) -> None:
        """Release what the sink holds; safe to call more than once."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


def sink_name(sink: Any) -> str:
    """What to call ``sink`` in a report: its ``name``, else its type's name."""
    name = getattr(sink, "name", None)
    return name if isinstance(name, str) and name else type(sink).__name__
