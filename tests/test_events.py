"""Events: lazy fields as of their event, read-only, copies that do not share what is still lazy."""

from __future__ import annotations

import copy
import pickle

import pytest

from deltaflow import ChatStream
from deltaflow.events import BaseEvent, ContentDelta
from tests.chunks import text_stream


def stream_events(*parts: str) -> list[BaseEvent]:
    return list(ChatStream(text_stream(*parts)))


def test_lazy_fields_take_a_callable_or_a_function_argument_pair() -> None:
    calls: list[int] = []

    def snapshot_of(count: int) -> str:
        calls.append(count)
        return "ab"[:count]

    plain = ContentDelta(choice_index=0, delta="b", snapshot="", parsed=None)
    event = plain.evolve(lazy={"snapshot": (snapshot_of, 2), "parsed": lambda: {"k": 1}})
    assert event.pending_fields() == {"snapshot", "parsed"}
    assert calls == []
    assert (event.snapshot, event.parsed) == ("ab", {"k": 1})
    assert event.snapshot == "ab"
    assert calls == [2]  # computed once


def test_the_lazy_mechanism_slots_are_read_only() -> None:
    """The pending thunks and the lock are set once, when the event is made."""
    events = list(
        ChatStream(text_stream('{"a": 1}'), response_format={"type": "json_schema", "json_schema": {}})
    )
    delta = [event for event in events if isinstance(event, ContentDelta)][-1]
    for name in ("_pending",):
        with pytest.raises(AttributeError, match="read-only"):
            setattr(delta, name, None)
        with pytest.raises(AttributeError, match="read-only"):
            delattr(delta, name)
    assert delta.snapshot == '{"a": 1}'


def test_events_hold_no_pydantic_private_state() -> None:
    """Nothing is kept in pydantic's private attributes: a pickled or dumped event is just its fields."""
    events = list(ChatStream(text_stream('{"a": 1}')))
    for event in events:
        assert event.__pydantic_private__ is None
        assert type(event).__private_attributes__ == {}
    delta = next(event for event in events if isinstance(event, ContentDelta))
    assert pickle.loads(pickle.dumps(delta)) == delta


def test_a_copy_keeps_the_lazy_fields_of_its_moment_and_the_original_still_reads_them() -> None:
    events = stream_events("a", "b")
    chunk_event, delta_event = events[2], events[3]
    assert (chunk_event.type, delta_event.type) == ("chunk", "content.delta")

    shallow = chunk_event.model_copy()
    deep = copy.deepcopy(delta_event)

    assert shallow.snapshot.choices[0].message.content == "a"
    assert chunk_event.snapshot.choices[0].message.content == "a"
    assert deep.snapshot == delta_event.snapshot == "a"
    assert deep == delta_event
    # a deep copy owns its data
    assert deep.__dict__ is not delta_event.__dict__
