"""deltaflow.testing: scripted chunks, captured chains, openai's helper as the oracle."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from deltaflow import operators as ops
from deltaflow.errors import StreamContractError
from deltaflow.testing import (
    Run,
    assert_same,
    capture_events,
    chat_chunks,
    run_chain,
    run_chat_stream,
    run_openai,
)


class City(BaseModel):
    name: str
    population: int


CONTENT = '{"name": "Paris", "population": 2102650}'


def test_chat_chunks_stream_the_script() -> None:
    """Content cut in chunk_size pieces between a role chunk and a finish chunk, then usage."""
    chunks = chat_chunks(CONTENT, chunk_size=5)
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert "".join(pieces) == CONTENT
    assert {len(piece) for piece in pieces[:-1]} == {5}
    assert chunks[-2].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    with pytest.raises(ValueError, match="chunk_size"):
        chat_chunks(CONTENT, chunk_size=0)


def test_capture_events_keeps_the_events_and_how_the_stream_ended() -> None:
    captured = capture_events(chat_chunks("Hi there"), ops.accumulate())
    assert captured.completed
    assert captured.error is None
    assert captured.types[0] == "chunk"
    assert captured.types[-1] == "completion.done"
    assert "".join(event.delta for event in captured.of_type("content.delta")) == "Hi there"  # type: ignore[attr-defined]

    failed = capture_events([], ops.accumulate())
    assert not failed.completed
    assert isinstance(failed.error, StreamContractError)
    assert failed.types == ["error"]


@pytest.mark.parametrize("response_format", [None, City])
def test_chat_stream_agrees_with_openai(response_format: type[BaseModel] | None) -> None:
    """The oracle runs: deltaflow's facade gives openai's events and final completion."""
    chunks = chat_chunks(CONTENT, chunk_size=3)
    expected = run_openai(chunks, response_format=response_format)
    assert expected.error is None
    assert expected.events
    assert_same(expected, run_chat_stream(chunks, response_format=response_format))


def test_the_standard_chain_agrees_with_openai() -> None:
    chunks = chat_chunks(CONTENT, chunk_size=3)
    assert_same(run_openai(chunks), run_chain(chunks, ops.to_events()))


@pytest.mark.xfail(
    strict=True,
    reason="known: a chunk's snapshot read as the chunk event arrives, before the chunk's own "
    "content.delta has passed parse_partial_json, lacks that delta's parsed (ChatStream reads after)",
)
def test_the_standard_chain_agrees_with_openai_when_snapshots_are_read_at_once() -> None:
    chunks = chat_chunks(CONTENT, chunk_size=3)
    assert_same(
        run_openai(chunks, response_format=City), run_chain(chunks, ops.to_events(response_format=City))
    )


def test_assert_same_names_the_first_difference() -> None:
    chunks = chat_chunks("Hello", chunk_size=2)
    expected = run_openai(chunks)
    changed = run_chain(chunks, ops.accumulate(), ops.map(lambda event: event))
    changed.events[1] = {**changed.events[1], "delta": "?"}
    with pytest.raises(AssertionError, match="event 1"):
        assert_same(expected, changed)
    with pytest.raises(AssertionError, match="error"):
        assert_same(expected, Run(events=expected.events, final=expected.final, error=ValueError()))
    with pytest.raises(AssertionError, match="final completion"):
        assert_same(expected, Run(events=expected.events, final=None))
