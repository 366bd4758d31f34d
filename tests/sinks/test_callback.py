"""sinks.callback: functions for every event and per event type, with ChatStream.on's short names."""

from __future__ import annotations

import pytest

from deltaflow import ChatStream, sinks
from deltaflow.events import BaseEvent
from tests.chunks import text_stream, tool_call_stream


class TestCallback:
    def test_every_event(self) -> None:
        """fn gets every event in order, then on_completed is called."""
        seen: list[BaseEvent] = []
        ended: list[str] = []
        stream: ChatStream[object] = ChatStream(text_stream("a", "b")).subscribe(
            sinks.callback(seen.append, on_completed=lambda: ended.append("done"))
        )
        assert list(stream) == seen
        assert ended == ["done"]

    def test_per_type_with_short_names(self) -> None:
        """on= maps types to callbacks; tool_calls.delta / tool_calls.done are ChatStream.on's short names."""
        deltas: list[str] = []
        done: list[str] = []
        usage: list[int] = []
        sink = sinks.callback(
            on={
                "tool_calls.delta": lambda event: deltas.append(event.arguments_delta),
                "tool_calls.done": lambda event: done.append(event.tool_call.function.arguments),
                "usage": lambda event: usage.append(event.usage.total_tokens),
            }
        )
        ChatStream(tool_call_stream("lookup", '{"q":', ' "x"}')).subscribe(sink).until_done()
        assert deltas == ["", '{"q":', ' "x"}']
        assert done == ['{"q": "x"}']
        assert usage == []

    def test_errors_reported_to_on_error(self) -> None:
        """on_error gets the stream's error."""
        errors: list[Exception] = []
        sink = sinks.callback(on_error=errors.append)
        failure = RuntimeError("x")
        sink.on_error(failure)
        assert errors == [failure]

    def test_unknown_type_and_no_callback_rejected(self) -> None:
        """A typo in on= and a callback sink without callbacks are errors at once."""
        with pytest.raises(ValueError, match=r"unknown event type 'content\.deltas'"):
            sinks.callback(on={"content.deltas": print})
        with pytest.raises(ValueError, match="give a callback"):
            sinks.callback()
