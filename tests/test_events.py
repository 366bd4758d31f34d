"""Events: lazy fields as of their event, read-only, copies that do not share what is still lazy."""

from __future__ import annotations

import copy

import pytest

from deltaflow import ChatStream
from deltaflow.events import BaseEvent, ContentDelta, ContentParsedDelta
from tests.chunks import text_stream


def stream_events(*parts: str) -> list[BaseEvent]:
    return list(ChatStream(text_stream(*parts)))


def test_lazy_fields_take_a_callable_or_a_function_argument_pair() -> None:
    calls: list[int] = []

    def snapshot_of(count: int) -> str:
        calls.append(count)
        return "ab"[:count]

    event = ContentDelta.lazy(
        {"type": "content.delta", "choice_index": 0, "delta": "b"},
        {"snapshot": (snapshot_of, 2), "parsed": lambda: {"k": 1}},
    )
    assert calls == []
    assert (event.snapshot, event.parsed) == ("ab", {"k": 1})
    assert event.snapshot == "ab"
    assert calls == [2]  # computed once


def test_private_attributes_are_read_only() -> None:
    """Events without lazy fields share one private dict per stream: nobody may change it."""
    events = list(
        ChatStream(text_stream('{"a": 1}'), response_format={"type": "json_schema", "json_schema": {}})
    )
    ops = [event for event in events if isinstance(event, ContentParsedDelta)]
    assert len(ops) >= 2
    with pytest.raises(AttributeError, match="read-only"):
        ops[0]._origin = None
    with pytest.raises(AttributeError, match="read-only"):
        del ops[0]._lazy
    assert ops[-1].origin is not None
    assert ops[-1].origin is ops[0].origin


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
    assert deep.origin is delta_event.origin
    # a deep copy owns its data
    assert deep.__dict__ is not delta_event.__dict__
