"""sinks.log: one structlog record per milestone, content opt-in, coalesced and cut."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, MutableMapping
from typing import Any

import pytest
import structlog
from openai.types.chat import ChatCompletionChunk
from structlog.testing import capture_logs

from deltaflow import ChatStream, sinks
from deltaflow.events import BaseEvent
from tests.chunks import chunk, text_stream
from tests.fixtures import load_openai_fixture
from tests.sinks import FakeClock

Records = list[MutableMapping[str, Any]]


def _run_fixture(name: str, **options: Any) -> Records:
    fixture = load_openai_fixture(name)
    with capture_logs() as records:
        stream = ChatStream(fixture.chunks, tools=fixture.tools, response_format=fixture.response_format)
        stream.subscribe(sinks.log(**options)).until_done()
    return records


def _run(chunks: list[ChatCompletionChunk], **options: Any) -> Records:
    with capture_logs() as records:
        ChatStream(chunks).subscribe(sinks.log(**options)).until_done()
    return records


def _only(records: Records, event: str) -> MutableMapping[str, Any]:
    found = [record for record in records if record["event"] == event]
    assert len(found) == 1, f"{event}: {found}"
    return found[0]


def _reasoning_stream() -> list[ChatCompletionChunk]:
    return [
        chunk({"delta": {"role": "assistant", "reasoning_content": "Let me\nthink"}}),
        chunk({"delta": {"reasoning_content": " hard"}}),
        chunk({"delta": {"content": "Answer"}}),
        chunk({"delta": {}, "finish_reason": "stop"}),
    ]


class TestMilestones:
    def test_text_fixture_milestones_in_order_without_content(self) -> None:
        """parse_nothing logs start, first token, usage and completion, and no text by default."""
        fixture = load_openai_fixture("parse_nothing")
        records = _run_fixture("parse_nothing")
        assert [record["event"] for record in records] == [
            "stream_started",
            "first_token",
            "usage",
            "stream_completed",
        ]
        started = records[0]
        assert started["completion_id"] == fixture.chunks[0].id
        assert started["model"] == "gpt-4o-2024-08-06"
        assert all(record["completion_id"] == fixture.chunks[0].id for record in records)
        assert records[1]["kind"] == "content"
        assert records[1]["choice_index"] == 0
        usage = fixture.chunks[-1].usage
        assert usage is not None
        assert _only(records, "usage") == {
            "event": "usage",
            "log_level": "info",
            "completion_id": fixture.chunks[0].id,
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "reasoning_tokens": 0,
        }
        completed = _only(records, "stream_completed")
        assert completed["chunks"] == len(fixture.chunks)
        assert completed["finish_reasons"] == ["stop"]
        assert completed["completion_tokens"] == usage.completion_tokens
        assert completed["tokens_per_s"] > 0
        assert "I'm unable" not in json.dumps(records, default=str)

    def test_content_fixture_as_one_line(self) -> None:
        """With content_level, parse_nothing's single line is one content record at that level."""
        fixture = load_openai_fixture("parse_nothing")
        records = _run_fixture("parse_nothing", content_level="debug", max_content=500)
        content = _only(records, "content")
        assert content["log_level"] == "debug"
        assert content["text"] == fixture.expected["choices"][0]["content"]
        assert content["length"] == len(content["text"])
        events = [record["event"] for record in records]
        assert events.index("content") < events.index("stream_completed")

    def test_tool_call_done_fixture(self) -> None:
        """parse_pydantic_tool logs the call's name, index and choice, its arguments only when opted in."""
        records = _run_fixture("parse_pydantic_tool")
        done = _only(records, "tool_call_done")
        assert done["name"] == "GetWeatherArgs"
        assert done["index"] == 0
        assert done["choice_index"] == 0
        assert done["call_id"].startswith("call_")
        assert done["arguments_length"] == len('{"city":"Edinburgh","country":"UK","units":"c"}')
        assert "arguments" not in done
        assert _only(records, "first_token")["kind"] == "tool_call"
        assert _only(records, "stream_completed")["finish_reasons"] == ["tool_calls"]

        with_content = _only(_run_fixture("parse_pydantic_tool", include_content=True), "tool_call_done")
        assert with_content["arguments"] == '{"city":"Edinburgh","country":"UK","units":"c"}'

    def test_refusal_fixture(self) -> None:
        """parse_pydantic_model_refusal logs a warning with the refusal's length, its text when opted in."""
        refusal = _only(_run_fixture("parse_pydantic_model_refusal"), "refusal")
        assert refusal["log_level"] == "warning"
        assert refusal["length"] == len("I'm sorry, I can't assist with that request.")
        assert "refusal" not in refusal
        shown = _only(_run_fixture("parse_pydantic_model_refusal", include_content=True), "refusal")
        assert shown["refusal"] == "I'm sorry, I can't assist with that request."

    def test_reasoning_done_with_length_text_only_when_opted_in(self) -> None:
        """reasoning_done carries the reasoning's length; the text needs include_content."""
        done = _only(_run(_reasoning_stream()), "reasoning_done")
        assert done["length"] == len("Let me\nthink hard")
        assert "reasoning" not in done
        shown = _only(_run(_reasoning_stream(), include_content=True, max_content=8), "reasoning_done")
        assert shown["reasoning"] == "Let me\nt…"

    def test_timings_from_an_injected_clock(self) -> None:
        """ttft_ms, duration_ms and tokens_per_s follow the clock: 4 completion tokens over 2.5 s."""
        clock = FakeClock(100.0)
        sink = sinks.log(clock=clock)
        events = list(ChatStream(text_stream("a", "b", "c", "d")))
        with capture_logs() as records:
            for event in events:
                if event.type == "chunk":
                    clock.advance(0.5)
                sink.on_next(event)
            sink.on_completed()
        assert _only(records, "first_token")["ttft_ms"] == 1000.0
        completed = _only(records, "stream_completed")
        assert completed["ttft_ms"] == 1000.0
        # seven chunks half a second apart; tokens count from the first token at 101.0 to 103.5
        assert completed["duration_ms"] == 3500.0
        assert completed["tokens_per_s"] == 1.6

    def test_started_at_moves_the_origin(self) -> None:
        """started_at, read before the request, is the origin of time to first token."""
        clock = FakeClock(10.0)
        sink = sinks.log(clock=clock, started_at=8.0)
        with capture_logs() as records:
            for event in ChatStream(text_stream("a")):
                sink.on_next(event)
        assert _only(records, "first_token")["ttft_ms"] == 2000.0

    def test_error_events_and_failure(self) -> None:
        """A failing source logs stream_error (code, message), then stream_failed, after flushing content."""

        def failing() -> Iterator[ChatCompletionChunk]:
            yield chunk({"delta": {"role": "assistant", "content": "partial"}})
            raise ConnectionError("connection reset")

        with capture_logs() as records, pytest.raises(ConnectionError):
            ChatStream(failing()).subscribe(sinks.log(content_level="info")).until_done()
        assert [record["event"] for record in records] == [
            "stream_started",
            "first_token",
            "stream_error",
            "content",
            "stream_failed",
        ]
        error = _only(records, "stream_error")
        assert error["log_level"] == "error"
        assert error["code"] == "source_error"
        assert error["message"] == "connection reset"
        failed = _only(records, "stream_failed")
        assert failed["error_type"] == "ConnectionError"
        assert failed["chunks"] == 1
        assert _only(records, "content")["text"] == "partial"

    def test_levels_validated(self) -> None:
        """Unknown levels and coalesce modes are rejected when the sink is built; stdlib ints map."""
        with pytest.raises(ValueError, match="unknown log level"):
            sinks.log(level="verbose")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="coalesce"):
            sinks.log(coalesce="word")  # type: ignore[arg-type]
        records = _run(text_stream("a"), level=logging.DEBUG)
        assert {record["log_level"] for record in records} == {"debug"}


class TestContent:
    def test_coalesced_by_line(self) -> None:
        """Content becomes one record per complete line, whatever the deltas; blank lines are skipped."""
        records = _run(text_stream("Hel", "lo\nwor", "ld\n\nbye"), content_level="info")
        assert [record["text"] for record in records if record["event"] == "content"] == [
            "Hello",
            "world",
            "bye",
        ]

    def test_reasoning_lines_flushed_when_reasoning_ends(self) -> None:
        """Reasoning lines are records of their own, the last one flushed before reasoning_done."""
        records = _run(_reasoning_stream(), content_level="debug")
        texts = [(record["event"], record.get("text")) for record in records]
        assert ("reasoning", "Let me") in texts
        assert texts.index(("reasoning", "think hard")) < texts.index(("reasoning_done", None))
        assert ("content", "Answer") in texts

    def test_coalesced_by_interval(self) -> None:
        """With coalesce='interval', a record goes out once interval seconds of text have gathered."""
        clock = FakeClock()
        sink = sinks.log(clock=clock, content_level="info", coalesce="interval", interval=1.0)
        with capture_logs() as records:
            for event in ChatStream(text_stream("a", "b", "c", "d", "e")):
                if event.type == "content.delta" and event.delta:
                    clock.advance(0.4)
                sink.on_next(event)
            sink.on_completed()
        # 'a' opens the window at 0.4 s, 'd' at 1.6 s closes it; 'e' waits for the end of the content
        assert [record["text"] for record in records if record["event"] == "content"] == ["abcd", "e"]

    def test_cut_to_max_content(self) -> None:
        """A long line is cut to max_content characters with an ellipsis; length stays the full one."""
        records = _run(text_stream("x" * 50, "y" * 50), content_level="info", max_content=10)
        content = _only(records, "content")
        assert content["text"] == "x" * 10 + "…"
        assert content["length"] == 100


class TestStructlogIntegration:
    def test_json_renderer_of_the_users_own_logger(self) -> None:
        """Records render through the user's processors and JSONRenderer, without global configuration."""
        out = io.StringIO()
        logger = structlog.wrap_logger(
            structlog.PrintLogger(out),
            processors=[
                structlog.processors.add_log_level,
                structlog.processors.TimeStamper(fmt="iso"),
                structlog.processors.JSONRenderer(sort_keys=True),
            ],
        ).bind(request_id="req-1")
        fixture = load_openai_fixture("parse_pydantic_tool")
        stream: ChatStream[object] = ChatStream(fixture.chunks, tools=fixture.tools)
        stream.subscribe(sinks.log(logger, include_content=True)).until_done()
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [line["event"] for line in lines] == [
            "stream_started",
            "first_token",
            "tool_call_done",
            "usage",
            "stream_completed",
        ]
        assert all(line["request_id"] == "req-1" and "timestamp" in line for line in lines)
        assert lines[2]["arguments"] == '{"city":"Edinburgh","country":"UK","units":"c"}'
        assert lines[4]["level"] == "info"

    def test_bridges_to_stdlib_logging(self, caplog: pytest.LogCaptureFixture) -> None:
        """A structlog logger wrapping a stdlib logger hands the records to logging."""
        logger = structlog.wrap_logger(
            logging.getLogger("deltaflow.test.bridge"),
            wrapper_class=structlog.stdlib.BoundLogger,
            processors=[structlog.processors.KeyValueRenderer(key_order=["event"])],
        )
        with caplog.at_level(logging.INFO, logger="deltaflow.test.bridge"):
            ChatStream(text_stream("a")).subscribe(sinks.log(logger)).until_done()
        messages = [record.getMessage() for record in caplog.records]
        assert messages[0].startswith("event='stream_started'")
        assert messages[-1].startswith("event='stream_completed'")
        assert all(record.name == "deltaflow.test.bridge" for record in caplog.records)

    def test_default_logger_is_named_deltaflow(self) -> None:
        """Without a logger the sink asks structlog for 'deltaflow' when built."""
        with capture_logs() as records:
            sink = sinks.log()
            for event in ChatStream(text_stream("a")):
                sink.on_next(event)
        assert records[0]["event"] == "stream_started"

    def test_observes_events_it_is_not_interested_in_cheaply(self) -> None:
        """Events without a milestone (deltas, chunks) log nothing when content is off."""
        sink = sinks.log()
        events: list[BaseEvent] = list(ChatStream(text_stream("a", "b")))
        with capture_logs() as records:
            for event in events[:4]:
                sink.on_next(event)
        assert [record["event"] for record in records] == ["stream_started", "first_token"]
