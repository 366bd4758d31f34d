"""sinks.jsonl: a line per event or chunk, flushed as written, replayable with from_jsonl."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai.types.chat import ChatCompletionChunk
from pydantic import TypeAdapter

import deltaflow
from deltaflow import ChatStream, sinks
from deltaflow import operators as ops
from deltaflow.events import BaseEvent, CompletionDone, ErrorReported, Event
from tests.chunks import chunk, text_stream
from tests.fixtures import OpenAIFixture, load_openai_fixture

ROUND_TRIP_FIXTURES = ["parse_nothing", "parse_pydantic_tool", "parse_pydantic_model_multiple_choices"]


def _record(fixture: OpenAIFixture, path: Path, what: str) -> tuple[list[BaseEvent], object]:
    sink = sinks.jsonl(path, what=what)  # type: ignore[arg-type]
    stream = ChatStream(fixture.chunks, tools=fixture.tools, response_format=fixture.response_format)
    events = list(stream.subscribe(sink))
    return events, stream.get_final_completion()


class TestRoundTrip:
    @pytest.mark.parametrize("name", ROUND_TRIP_FIXTURES)
    @pytest.mark.parametrize("what", ["chunks", "events"])
    def test_recording_replays_into_the_same_completion(self, tmp_path: Path, name: str, what: str) -> None:
        """deltaflow.from_jsonl replays a chunks or events recording into the same final completion."""
        path = tmp_path / "run.jsonl"
        # one fixture for both runs: its pydantic models are built anew on each load
        fixture = load_openai_fixture(name)
        _, original = _record(fixture, path, what)
        replayed: list[BaseEvent] = []
        errors: list[Exception] = []
        deltaflow.from_jsonl(path).pipe(
            ops.to_events(tools=fixture.tools, response_format=fixture.response_format)
        ).subscribe(replayed.append, errors.append)
        assert errors == []
        done = replayed[-1]
        assert isinstance(done, CompletionDone)
        assert done.completion == original
        again = ChatStream(
            deltaflow.chunks_from_jsonl(path), tools=fixture.tools, response_format=fixture.response_format
        )
        assert again.get_final_completion() == original

    def test_chunks_recording_is_the_wire_chunks(self, tmp_path: Path) -> None:
        """what='chunks' writes exactly one line per chunk, equal to the chunk received."""
        fixture = load_openai_fixture("parse_nothing")
        path = tmp_path / "chunks.jsonl"
        _record(fixture, path, "chunks")
        lines = path.read_text(encoding="utf-8").splitlines()
        assert len(lines) == len(fixture.chunks)
        assert [ChatCompletionChunk.model_validate_json(line) for line in lines] == fixture.chunks

    def test_events_recording_holds_every_event_without_running_snapshots(self, tmp_path: Path) -> None:
        """what='events' writes every event; deltas leave out running snapshots, done events are whole."""
        path = tmp_path / "events.jsonl"
        events, _ = _record(load_openai_fixture("parse_pydantic_model"), path, "events")
        lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        assert [line["type"] for line in lines] == [event.type for event in events]
        deltas = [line for line in lines if line["type"] == "content.delta"]
        assert (
            "".join(line["delta"] for line in deltas)
            == '{"city":"San Francisco","temperature":61,"units":"f"}'
        )
        assert "snapshot" not in deltas[-1]
        assert "parsed" not in deltas[-1]
        assert "snapshot" not in lines[0]
        assert lines[0]["chunk"]["choices"][0]["delta"]["role"] == "assistant"
        done = next(line for line in lines if line["type"] == "content.done")
        assert done["parsed"] == {"city": "San Francisco", "temperature": 61, "units": "f"}
        final = next(line for line in lines if line["type"] == "completion.done")
        assert final["completion"]["choices"][0]["message"]["content"] == done["content"]
        usage = TypeAdapter(Event).validate_json(
            json.dumps(next(line for line in lines if line["type"] == "usage"))
        )
        assert usage.type == "usage"

    def test_events_recording_grows_linearly(self, tmp_path: Path) -> None:
        """A stream ten times longer makes a recording about ten times larger, not a hundred."""
        sizes = []
        for parts in (100, 1000):
            path = tmp_path / f"run{parts}.jsonl"
            ChatStream(text_stream(*["word "] * parts)).subscribe(sinks.jsonl(path)).until_done()
            sizes.append(path.stat().st_size)
        assert sizes[1] < sizes[0] * 12


class TestFiles:
    def test_each_line_flushed_as_written(self, tmp_path: Path) -> None:
        """When a later sink sees an event, the file already holds that event's line."""
        path = tmp_path / "live.jsonl"
        on_disk: list[int] = []
        recorder = sinks.jsonl(path)
        fan = sinks.fan_out(recorder, lambda event: on_disk.append(len(path.read_bytes().splitlines())))
        ChatStream(text_stream("a", "b")).subscribe(fan).until_done()
        assert on_disk == list(range(1, len(on_disk) + 1))
        assert recorder.lines == len(on_disk)

    def test_closes_the_file_it_opened_on_completion_and_error(self, tmp_path: Path) -> None:
        """A path is closed at the end, completed or failed; later events are ignored."""
        done = sinks.jsonl(tmp_path / "done.jsonl")
        ChatStream(text_stream("a")).subscribe(done).until_done()
        assert done._file is None

        def failing() -> Iterator[ChatCompletionChunk]:
            yield chunk({"delta": {"role": "assistant", "content": "x"}})
            raise ConnectionError("gone")

        failed = sinks.jsonl(tmp_path / "failed.jsonl", what="chunks")
        with pytest.raises(ConnectionError):
            ChatStream(failing()).subscribe(failed).until_done()
        assert failed._file is None
        assert len((tmp_path / "failed.jsonl").read_text(encoding="utf-8").splitlines()) == 1

    def test_leaves_a_given_file_open(self) -> None:
        """A file passed in stays open for its owner, and holds the recording."""
        buffer = io.StringIO()
        ChatStream(text_stream("a")).subscribe(sinks.jsonl(buffer, what="chunks")).until_done()
        assert not buffer.closed
        assert len(buffer.getvalue().splitlines()) == len(text_stream("a"))

    def test_error_event_with_an_unserialisable_detail(self) -> None:
        """An error event whose detail pydantic cannot serialise is still one valid JSON line."""
        buffer = io.StringIO()
        sink = sinks.jsonl(buffer)
        sink.on_next(ErrorReported(code="provider_error", message="bad", detail=object()))
        line = json.loads(buffer.getvalue())
        assert line["code"] == "provider_error"
        assert line["detail"].startswith("<object object")

    def test_rejects_unknown_kind(self, tmp_path: Path) -> None:
        """what must be 'events' or 'chunks'."""
        with pytest.raises(ValueError, match="what must be"):
            sinks.jsonl(tmp_path / "x.jsonl", what="snapshots")  # type: ignore[arg-type]
