"""``sinks.callback``: plain functions as a sink, for every event or per event type."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, get_args

from deltaflow.events import EVENT_ALIASES, BaseEvent, EventType
from deltaflow.sinks._sink import Sink

__all__ = ["CallbackSink", "callback"]

EventCallback = Callable[[BaseEvent], Any]


def callback(
    fn: EventCallback | None = None,
    *,
    on: Mapping[str, EventCallback] | None = None,
    on_error: Callable[[Exception], Any] | None = None,
    on_completed: Callable[[], Any] | None = None,
) -> CallbackSink:
    """A sink calling ``fn`` with every event, and ``on[type]`` with the events of that type.

    The keys of ``on`` are event types (``content.delta``, ``usage``...) or the short names
    ``ChatStream.on`` accepts (``tool_calls.delta``, ``tool_calls.done``). Callbacks are called
    synchronously, in order, with the event; wrap a slow one in ``sinks.fan_out(..., policy=...)``.

    Args:
        fn: called with every event.
        on: event type to the callback for events of that type.
        on_error: called with the error that ends the stream.
        on_completed: called when the stream ends normally.

    Returns:
        The sink, an Rx observer of events.

    Raises:
        ValueError: an unknown event type in ``on``, or no callback at all.

    Example::

        sink = sinks.callback(on={"content.delta": lambda event: print(event.delta, end=""),
                                  "tool_calls.done": lambda event: run_tool(event.tool_call)})
    """
    return CallbackSink(fn, on=on, on_error=on_error, on_completed=on_completed)


class CallbackSink(Sink):
    """The sink ``sinks.callback(...)`` builds; see there."""

    def __init__(
        self,
        fn: EventCallback | None = None,
        *,
        on: Mapping[str, EventCallback] | None = None,
        on_error: Callable[[Exception], Any] | None = None,
        on_completed: Callable[[], Any] | None = None,
    ) -> None:
        known = get_args(EventType)
        self._by_type: dict[str, EventCallback] = {}
        for event_type, handler in (on or {}).items():
            name = EVENT_ALIASES.get(event_type, event_type)
            if name not in known:
                raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(known)}")
            self._by_type[name] = handler
        if fn is None and not self._by_type and on_error is None and on_completed is None:
            raise ValueError("give a callback: fn, on={...}, on_error or on_completed")
        self._every = fn
        self._on_error = on_error
        self._on_completed = on_completed
        self.name = f"callback:{_describe(fn) if fn is not None else ','.join(sorted(self._by_type))}"

    def on_next(self, value: BaseEvent) -> None:
        """Call ``fn``, then the callback for the event's type."""
        if self._every is not None:
            self._every(value)
        handler = self._by_type.get(getattr(value, "type", "")) if self._by_type else None
        if handler is not None:
            handler(value)

    def on_error(self, error: Exception) -> None:
        """Call ``on_error``, if given."""
        if self._on_error is not None:
            self._on_error(error)

    def on_completed(self) -> None:
        """Call ``on_completed``, if given."""
        if self._on_completed is not None:
            self._on_completed()


def _describe(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__
