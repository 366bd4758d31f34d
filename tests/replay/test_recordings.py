"""Reading recordings into scenarios, without a server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deltaflow.pipeline import ServerSentEvent
from deltaflow.replay import Comment, Fault, Scenario, load_recording

DONE = ServerSentEvent(data="[DONE]")


def test_sse_body_keeps_comments_and_event_names_in_order() -> None:
    """Comments stay where they were recorded and ``event:`` names stay on their events."""
    body = (
        ': PROCESSING\n\ndata: {"a":1}\n\n:ping\nevent: error\ndata: {"error":{"code":1}}\n\ndata: [DONE]\n\n'
    )
    scenario = Scenario.from_sse(body)
    assert scenario.events == (
        Comment(" PROCESSING"),
        ServerSentEvent(data='{"a":1}'),
        Comment("ping"),
        ServerSentEvent(data='{"error":{"code":1}}', event="error"),
        DONE,
    )
    assert scenario.event_count == 3


def test_sse_body_with_crlf_and_multiline_data() -> None:
    """CRLF line ends are accepted and multi-line ``data:`` fields join with a newline."""
    scenario = Scenario.from_sse(b"data: first\r\ndata: second\r\n\r\ndata: last")
    assert scenario.events == (ServerSentEvent(data="first\nsecond"), ServerSentEvent(data="last"))


def test_jsonl_lines_become_events_then_done(tmp_path: Path) -> None:
    """A ``.jsonl`` file gives one event per non-blank line, then ``[DONE]``; no trailing newline needed."""
    path = tmp_path / "stream.jsonl"
    path.write_text('{"id":"1"}\r\n\n{"id":"2","text":"a\u2028b"}', encoding="utf-8")
    assert load_recording(path) == (
        ServerSentEvent(data='{"id":"1"}'),
        ServerSentEvent(data='{"id":"2","text":"a\u2028b"}'),
        DONE,
    )


def test_unknown_suffix_is_refused(tmp_path: Path) -> None:
    """Only ``.sse`` and ``.jsonl`` recordings are accepted."""
    path = tmp_path / "stream.txt"
    path.write_text("data: {}\n\n", encoding="utf-8")
    with pytest.raises(ValueError, match="unsupported recording"):
        Scenario.from_file(path)


def test_chunks_are_the_json_objects_only() -> None:
    """``Scenario.chunks`` skips ``[DONE]``, comments and data that is not a JSON object."""
    scenario = Scenario.from_sse(
        ': c\n\ndata: {"n":1}\n\ndata: not json\n\ndata: [1]\n\ndata: {"n":2}\n\ndata: [DONE]\n\n'
    )
    assert scenario.chunks() == [{"n": 1}, {"n": 2}]


def test_from_chunks_serializes_compactly_and_can_omit_done() -> None:
    """Chunk dicts become compact JSON events, with ``[DONE]`` only when asked."""
    chunks = [{"id": "x", "text": "é"}]
    assert Scenario.from_chunks(chunks).events == (ServerSentEvent(data='{"id":"x","text":"é"}'), DONE)
    no_done = Scenario.from_chunks(chunks, done=False)
    assert [
        json.loads(event.data) for event in no_done.events if isinstance(event, ServerSentEvent)
    ] == chunks


def test_negative_pacing_is_refused() -> None:
    """A negative ``ttft`` or rate is a mistake, not a request for speed."""
    with pytest.raises(ValueError, match="negative"):
        Scenario.scripted("x", ttft=-1)
    with pytest.raises(ValueError, match="negative"):
        Scenario.scripted("x", tokens_per_second=-5)


def test_scenarios_with_faults_are_hashable_and_comparable() -> None:
    """Frozen scenarios, error payload included, can be compared and used as dict keys or set members."""
    first = Scenario.scripted("x", fault=Fault.error_after(1, message="boom"))
    again = Scenario.scripted("x", fault=Fault.error_after(1, message="boom"))
    assert first == again
    assert len({first, again}) == 1
    assert first != Scenario.scripted("x", fault=Fault.error_after(1, message="other"))
