"""sinks.otel: span attributes, metrics under both sets of names, content opt-in, providers, composition."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import openai
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from opentelemetry.trace import StatusCode

import deltaflow
from deltaflow import operators as ops
from deltaflow import sinks
from deltaflow.sinks._otel_conventions import DURATION_BUCKETS, TOKEN_BUCKETS
from tests.chunks import chunk, text_stream, tool_call_stream
from tests.sinks import FakeClock
from tests.sinks.otel_capture import Telemetry, telemetry

__all__ = ["telemetry"]

# seconds before each chunk of text_stream("a", "b", "c", "d"): role, 4 parts, finish, usage
GAPS_BEFORE = [0.5, 0.5, 0.1, 0.2, 3.0, 0.1, 0.1]
V1_41 = {
    "duration": "gen_ai.client.operation.duration",
    "time_to_first_chunk": "gen_ai.client.operation.time_to_first_chunk",
    "time_per_output_chunk": "gen_ai.client.operation.time_per_output_chunk",
}
LATEST = {
    "duration": "gen_ai.client.inference.duration",
    "time_to_first_chunk": "gen_ai.client.inference.time_to_first_chunk",
    "time_per_output_chunk": "gen_ai.client.inference.time_per_output_chunk",
}


def _drive(telemetry: Telemetry, gaps: list[float] = GAPS_BEFORE, **options: Any) -> sinks.OtelSink:
    """text_stream("a".."d") through ChatStream into the sink, the fake clock moved before each chunk."""
    clock = FakeClock(100.0)
    sink = telemetry.sink(clock=clock, **options)
    pending = iter(gaps)

    def paced() -> Iterator[Any]:
        for item in text_stream("a", "b", "c", "d"):
            clock.advance(next(pending))
            yield item

    deltaflow.ChatStream(paced()).subscribe(sink).until_done()
    return sink


def _values(telemetry: Telemetry, name: str) -> tuple[int, float]:
    points = telemetry.histogram(name)
    return sum(point.count for point in points), sum(point.sum for point in points)


class TestSpan:
    def test_a_child_of_the_callers_current_span(self, telemetry: Telemetry) -> None:
        """The span's parent is the span current when the sink was built."""
        tracer = telemetry.tracer_provider.get_tracer("app")
        with tracer.start_as_current_span("handle request") as parent:
            sink = telemetry.sink()
        deltaflow.ChatStream(text_stream("hi")).subscribe(sink).until_done()
        span = next(span for span in telemetry.spans() if span.name == "chat replay-1")
        assert span.parent is not None
        assert span.parent.span_id == parent.get_span_context().span_id
        assert span.context.trace_id == parent.get_span_context().trace_id

    def test_times_come_from_the_clock(self, telemetry: Telemetry) -> None:
        """Start, time to first chunk and end follow the injected clock; the span lasts the metric's duration."""
        _drive(telemetry)
        span = telemetry.only_span()
        assert span.attributes["gen_ai.response.time_to_first_chunk"] == pytest.approx(0.5)
        assert (span.end_time - span.start_time) / 1e9 == pytest.approx(sum(GAPS_BEFORE), abs=1e-6)
        assert _values(telemetry, V1_41["duration"]) == (1, pytest.approx(sum(GAPS_BEFORE)))
        assert _values(telemetry, V1_41["time_to_first_chunk"]) == (1, pytest.approx(0.5))

    def test_started_at_dates_the_span_back(self, telemetry: Telemetry) -> None:
        """``started_at`` (the request's clock reading) is the origin of every time and of the span."""
        _drive(telemetry, started_at=98.0)  # the fake clock reads 100 when the sink is built
        span = telemetry.only_span()
        assert span.attributes["gen_ai.response.time_to_first_chunk"] == pytest.approx(2.5)
        assert (span.end_time - span.start_time) / 1e9 == pytest.approx(2.0 + sum(GAPS_BEFORE), abs=1e-6)

    def test_response_attributes(self, telemetry: Telemetry) -> None:
        """Id, model, finish reasons, usage with its cache and reasoning details, request attributes."""
        chunks = [
            *text_stream("hello")[:-1],
            chunk(
                usage={
                    "prompt_tokens": 30,
                    "completion_tokens": 12,
                    "total_tokens": 42,
                    "prompt_tokens_details": {"cached_tokens": 20},
                    "completion_tokens_details": {"reasoning_tokens": 8},
                }
            ),
        ]
        sink = telemetry.sink(
            model="gpt-4o-mini", base_url="https://api.openai.com/v1", attributes={"app": "t"}
        )
        deltaflow.ChatStream(chunks).subscribe(sink).until_done()
        span = telemetry.only_span()
        assert span.name == "chat gpt-4o-mini"
        assert dict(span.attributes) | {"gen_ai.response.time_to_first_chunk": 0} == {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.request.stream": True,
            "server.address": "api.openai.com",
            "server.port": 443,
            "app": "t",
            "gen_ai.response.id": "chatcmpl-test",
            "gen_ai.response.model": "gpt-test",
            "gen_ai.response.finish_reasons": ("stop",),
            "gen_ai.usage.input_tokens": 30,
            "gen_ai.usage.output_tokens": 12,
            "gen_ai.usage.cache_read.input_tokens": 20,
            "gen_ai.usage.reasoning.output_tokens": 8,
            "gen_ai.response.time_to_first_chunk": 0,
            "deltaflow.stream.outcome": "completed",
            "deltaflow.stream.chunks": 4,
        }
        assert sink.ended

    def test_one_finish_reason_per_choice(self, telemetry: Telemetry) -> None:
        """Two choices: their reasons in choice order; one that never finished reads ``error``."""
        chunks = [
            chunk({"index": 0, "delta": {"role": "assistant", "content": "a"}}),
            chunk({"index": 1, "delta": {"role": "assistant", "content": "b"}}),
            chunk({"index": 1, "delta": {}, "finish_reason": "length"}),
        ]
        deltaflow.ChatStream(chunks).subscribe(telemetry.sink()).until_done()
        assert telemetry.only_span().attributes["gen_ai.response.finish_reasons"] == ("error", "length")

    def test_a_failure_before_any_chunk(self, telemetry: Telemetry) -> None:
        """Nobody listening: a span all the same, failed with openai's error, no chunk, no time to first chunk."""
        client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-test", max_retries=0)
        stream = deltaflow.stream(client, model="replay-1", messages=[{"role": "user", "content": "hi"}])
        stream.subscribe(telemetry.sink(base_url=str(client.base_url)))
        with pytest.raises(openai.APIConnectionError):
            stream.until_done()
        span = telemetry.only_span()
        assert span.status.status_code is StatusCode.ERROR
        assert span.attributes["error.type"] == "APIConnectionError"
        assert span.attributes["deltaflow.stream.chunks"] == 0
        assert "gen_ai.response.time_to_first_chunk" not in span.attributes
        assert telemetry.histogram(V1_41["time_to_first_chunk"]) == []

    def test_ends_once_whatever_is_called_after(self, telemetry: Telemetry) -> None:
        """Completed, then closed and failed again: still one span, one duration."""
        sink = telemetry.sink()
        deltaflow.ChatStream(text_stream("a")).subscribe(sink).until_done()
        sink.close()
        sink.on_error(RuntimeError("late"))
        sink.on_completed()
        span = telemetry.only_span()
        assert span.attributes["deltaflow.stream.outcome"] == "completed"
        assert _values(telemetry, V1_41["duration"])[0] == 1


class TestMetrics:
    def test_v1_41_names_by_default(self, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch) -> None:
        """Duration, time to first chunk, time per output chunk and token usage, with the advised buckets."""
        monkeypatch.delenv("OTEL_SEMCONV_STABILITY_OPT_IN", raising=False)
        _drive(telemetry)
        for name in V1_41.values():
            (point,) = telemetry.histogram(name)
            assert tuple(point.explicit_bounds) == DURATION_BUCKETS
            assert point.attributes["gen_ai.provider.name"] == "openai"
            assert point.attributes["gen_ai.response.model"] == "gpt-test"
        usage = {
            point.attributes["gen_ai.token.type"]: point.sum
            for point in telemetry.histogram("gen_ai.client.token.usage")
        }
        assert usage == {"input": 3, "output": 4}
        assert tuple(telemetry.histogram("gen_ai.client.token.usage")[0].explicit_bounds) == TOKEN_BUCKETS
        assert not any(telemetry.points(name) for name in LATEST.values())

    @pytest.mark.parametrize("how", ["argument", "environment"])
    def test_latest_names_behind_one_switch(
        self, telemetry: Telemetry, monkeypatch: pytest.MonkeyPatch, how: str
    ) -> None:
        """``conventions="latest"`` (or the conventions' opt-in variable): inference names and usage counters."""
        if how == "argument":
            _drive(telemetry, conventions="latest")
        else:
            monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "http, gen_ai_latest_experimental")
            _drive(telemetry)
        for name in LATEST.values():
            assert _values(telemetry, name)[0] == 1
        assert not any(telemetry.points(name) for name in V1_41.values())
        assert telemetry.points("gen_ai.client.token.usage") == []
        (input_tokens,) = telemetry.counter("gen_ai.client.inference.usage.input_tokens")
        assert input_tokens.value == 3
        assert input_tokens.attributes["gen_ai.token.modality"] == "unknown"
        (output_tokens,) = telemetry.counter("gen_ai.client.inference.usage.output_tokens")
        assert output_tokens.value == 4
        assert _values(telemetry, "gen_ai.client.inference.operation.output_tokens") == (1, 4)

    def test_latest_counts_zero_tokens_when_no_usage_came(self, telemetry: Telemetry) -> None:
        """The latest conventions count 0 input and output tokens for an operation without usage."""
        deltaflow.ChatStream(text_stream("a")[:-1]).subscribe(
            telemetry.sink(conventions="latest")
        ).until_done()
        (output_tokens,) = telemetry.counter("gen_ai.client.inference.usage.output_tokens")
        assert output_tokens.value == 0
        assert _values(telemetry, "gen_ai.client.inference.operation.output_tokens") == (1, 0)
        assert telemetry.points("gen_ai.client.inference.usage.reasoning.output_tokens") == []

    def test_one_time_per_output_chunk_per_stream_by_default(self, telemetry: Telemetry) -> None:
        """``chunk_timing="stream"``: the mean gap after the first chunk, once."""
        _drive(telemetry)
        after_first = GAPS_BEFORE[1:]
        count, total = _values(telemetry, V1_41["time_per_output_chunk"])
        assert (count, total) == (1, pytest.approx(sum(after_first) / len(after_first)))

    def test_every_gap_with_each(self, telemetry: Telemetry) -> None:
        """``chunk_timing="each"``: one recording per chunk after the first, as the conventions define it."""
        _drive(telemetry, chunk_timing="each")
        (point,) = telemetry.histogram(V1_41["time_per_output_chunk"])
        assert point.count == len(GAPS_BEFORE) - 1
        assert point.sum == pytest.approx(sum(GAPS_BEFORE[1:]))
        assert point.max == pytest.approx(3.0)

    def test_the_duration_carries_the_error_type(self, telemetry: Telemetry) -> None:
        """A failed stream's duration has ``error.type``; time to first chunk does not."""

        def failing() -> Iterator[Any]:
            yield from text_stream("a", "b")[:2]
            raise ConnectionResetError("peer gone")

        with pytest.raises(ConnectionResetError):
            deltaflow.ChatStream(failing()).subscribe(telemetry.sink()).until_done()
        (duration,) = telemetry.histogram(V1_41["duration"])
        assert duration.attributes["error.type"] == "ConnectionResetError"
        (first_chunk,) = telemetry.histogram(V1_41["time_to_first_chunk"])
        assert "error.type" not in first_chunk.attributes


class TestContent:
    def test_no_content_unless_asked(self, telemetry: Telemetry) -> None:
        """By default no message text reaches any attribute."""
        deltaflow.ChatStream(text_stream("secret ", "plans")).subscribe(telemetry.sink()).until_done()
        span = telemetry.only_span()
        assert "gen_ai.output.messages" not in span.attributes
        assert not any("plans" in str(value) for value in span.attributes.values())

    def test_output_messages_when_asked(self, telemetry: Telemetry) -> None:
        """Text and tool calls in the conventions' shape, each text cut to ``max_content``."""
        deltaflow.ChatStream(text_stream("x" * 30)).subscribe(
            telemetry.sink(capture_content=True, max_content=10)
        ).until_done()
        messages = json.loads(telemetry.only_span().attributes["gen_ai.output.messages"])
        assert messages == [
            {
                "role": "assistant",
                "parts": [{"type": "text", "content": "x" * 10 + "…"}],
                "finish_reason": "stop",
            }
        ]

    def test_tool_calls_in_output_messages(self, telemetry: Telemetry) -> None:
        """A tool call is a ``tool_call`` part with its id, name and arguments."""
        deltaflow.ChatStream(tool_call_stream("get_weather", '{"city":', '"Paris"}')).subscribe(
            telemetry.sink(capture_content=True)
        ).until_done()
        (message,) = json.loads(telemetry.only_span().attributes["gen_ai.output.messages"])
        assert message["parts"] == [
            {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'}
        ]
        assert message["finish_reason"] == "tool_calls"

    @settings(max_examples=40, deadline=None)
    @given(
        before=st.text(max_size=60),
        after=st.text(max_size=60),
        key=st.from_regex(r"sk-[A-Za-z0-9]{20,40}", fullmatch=True),
        limit=st.integers(min_value=0, max_value=80),
    )
    def test_content_is_clipped_and_never_holds_a_key(
        self, before: str, after: str, key: str, limit: int
    ) -> None:
        """Whatever the answer says around it, a key never reaches the span and no text exceeds the limit."""
        captured = Telemetry()
        # a key glued to a preceding word is not taken for one (sinks.redact matches at a word boundary)
        deltaflow.ChatStream(text_stream(before + " ", key, after)).subscribe(
            captured.sink(capture_content=True, max_content=limit)
        ).until_done()
        raw = captured.only_span().attributes["gen_ai.output.messages"]
        assert key not in raw
        for message in json.loads(raw):
            for part in message["parts"]:
                assert len(part["content"]) <= limit + 1


class TestProvider:
    @pytest.mark.parametrize(
        ("dialect", "expected"),
        [
            ("openai", "openai"),
            ("azure", "azure.ai.openai"),
            ("deepseek", "deepseek"),
            ("gemini", "gcp.gemini"),
            ("groq", "groq"),
            ("mistral", "mistral_ai"),
            ("moonshot", "moonshot_ai"),
            ("perplexity", "perplexity"),
            ("xai", "x_ai"),
            ("openrouter", "openrouter"),
            ("generic", "openai"),
        ],
    )
    def test_the_dialect_names_the_provider(self, telemetry: Telemetry, dialect: str, expected: str) -> None:
        """Each dialect maps to the conventions' well-known value, else its own name."""
        deltaflow.ChatStream(text_stream("a")).subscribe(telemetry.sink(dialect=dialect)).until_done()
        assert telemetry.only_span().attributes["gen_ai.provider.name"] == expected

    def test_detected_from_the_base_url(self, telemetry: Telemetry) -> None:
        """Without a dialect, the base URL's provider; an explicit provider wins over both."""
        deltaflow.ChatStream(text_stream("a")).subscribe(
            telemetry.sink(base_url="https://api.deepseek.com/v1")
        ).until_done()
        deltaflow.ChatStream(text_stream("a")).subscribe(
            telemetry.sink(base_url="https://api.deepseek.com/v1", provider="my-gateway")
        ).until_done()
        first, second = telemetry.spans()
        assert first.attributes["gen_ai.provider.name"] == "deepseek"
        assert first.attributes["server.address"] == "api.deepseek.com"
        assert second.attributes["gen_ai.provider.name"] == "my-gateway"

    @pytest.mark.parametrize(
        "options",
        [{"dialect": "nope"}, {"conventions": "v2"}, {"chunk_timing": "sometimes"}, {"max_content": -1}],
    )
    def test_bad_options_are_refused(self, telemetry: Telemetry, options: dict[str, Any]) -> None:
        """An unknown dialect, conventions or chunk timing, or a negative limit: ValueError up front."""
        with pytest.raises(ValueError, match=next(iter(options))):
            telemetry.sink(**options)


class TestComposition:
    def test_in_fan_out_beside_other_sinks(self, telemetry: Telemetry) -> None:
        """Inside fan_out the span ends with the stream, and a failing neighbour changes nothing."""

        def broken(event: Any) -> None:
            raise RuntimeError("neighbour")

        meter = sinks.metrics()
        deltaflow.ChatStream(text_stream("a", "b")).subscribe(
            sinks.fan_out(broken, telemetry.sink(), meter)
        ).until_done()
        assert telemetry.only_span().attributes["deltaflow.stream.outcome"] == "completed"
        assert meter.summary.chunks == telemetry.only_span().attributes["deltaflow.stream.chunks"]

    def test_behind_a_queue_of_its_own(self, telemetry: Telemetry) -> None:
        """Under ``drop_oldest`` the sink runs on a thread; the span still ends once, after the drain."""
        deltaflow.ChatStream(text_stream(*"abcdef")).subscribe(
            sinks.fan_out(telemetry.sink(), policy="drop_oldest")
        ).until_done()
        assert telemetry.only_span().attributes["deltaflow.stream.outcome"] == "completed"

    def test_fan_out_closed_early(self, telemetry: Telemetry) -> None:
        """A fan-out closed before the end closes the sink: the span ends, closed."""
        with deltaflow.ChatStream(text_stream(*"abcdef")).subscribe(
            sinks.fan_out(telemetry.sink())
        ) as stream:
            next(stream)
        assert telemetry.only_span().attributes["deltaflow.stream.outcome"] == "closed"

    def test_on_an_rx_pipeline(self, telemetry: Telemetry) -> None:
        """Subscribed to ``from_chunks(...).pipe(to_events())`` like any observer."""
        deltaflow.from_chunks(text_stream("a", "b")).pipe(ops.to_events()).subscribe(telemetry.sink())
        span = telemetry.only_span()
        assert span.attributes["deltaflow.stream.outcome"] == "completed"
        assert span.attributes["gen_ai.usage.output_tokens"] == 2


def test_deltaflow_imports_without_opentelemetry() -> None:
    """Without opentelemetry, deltaflow and its sinks import; only ``sinks.otel()`` fails, naming the extra."""
    script = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if it were not installed
        from deltaflow import sinks
        sinks.log()
        try:
            sinks.otel()
        except ImportError as error:
            print(error)
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "pip install 'deltaflow[otel]'" in result.stdout
