"""sinks.metrics: time to first token, gaps, stalls and throughput from an injected clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai.types.chat import ChatCompletionChunk

from deltaflow import ChatStream, sinks
from tests.chunks import chunk, text_stream
from tests.sinks import FakeClock

# seconds before each chunk of text_stream("a", "b", "c", "d"): role, 4 parts, finish, usage
GAPS_BEFORE = [0.5, 0.5, 0.1, 0.2, 3.0, 0.1, 0.1]


def _drive(gaps: list[float], **options: object) -> sinks.MetricsSink:
    clock = FakeClock(50.0)
    sink = sinks.metrics(clock=clock, **options)  # type: ignore[arg-type]
    chunks = text_stream("a", "b", "c", "d")
    pending = iter(gaps)
    for event in ChatStream(chunks):
        if event.type == "chunk":
            clock.advance(next(pending))
        sink.on_next(event)
    sink.on_completed()
    return sink


class TestMetrics:
    def test_summary_from_an_injected_clock(self) -> None:
        """TTFT, gap percentiles, max, stalls and tokens/s follow the clock readings exactly."""
        stalls: list[sinks.Stall] = []
        summaries: list[sinks.StreamMetrics] = []
        sink = _drive(GAPS_BEFORE, stall_threshold=2.0, on_stall=stalls.append, on_summary=summaries.append)
        summary = sink.summary
        assert summaries == [summary]
        assert summary.chunks == 7
        assert summary.time_to_first_chunk == pytest.approx(0.5)
        # the role chunk's empty content is no token: the first is "a", one second in
        assert summary.time_to_first_token == pytest.approx(1.0)
        assert summary.duration == pytest.approx(sum(GAPS_BEFORE))
        gaps = sorted(GAPS_BEFORE[1:])  # [0.1, 0.1, 0.1, 0.2, 0.5, 3.0]
        assert summary.gap_max == pytest.approx(3.0)
        assert summary.gap_p50 == pytest.approx((gaps[2] + gaps[3]) / 2)
        assert summary.gap_p95 == pytest.approx(gaps[4] + 0.75 * (gaps[5] - gaps[4]))
        [stall] = stalls
        assert stall.after_chunk == 4
        assert stall.seconds == pytest.approx(3.0)
        assert summary.stalls == tuple(stalls)
        assert summary.completion_tokens == 4
        assert summary.tokens_per_second == pytest.approx(4 / (sum(GAPS_BEFORE) - 1.0))
        assert summary.failed is False

    def test_no_stall_under_the_threshold(self) -> None:
        """With the threshold above the longest gap there is no stall."""
        assert _drive(GAPS_BEFORE, stall_threshold=5.0).summary.stalls == ()

    def test_summary_only_at_the_end(self) -> None:
        """Reading the summary before the stream ends is an error, not half-made figures."""
        sink = sinks.metrics()
        with pytest.raises(RuntimeError, match="not ended"):
            _ = sink.summary

    def test_failed_stream_summarised(self) -> None:
        """A failing stream is summarised with what arrived, marked failed; no usage, no tokens/s."""

        def failing() -> Iterator[ChatCompletionChunk]:
            yield chunk({"delta": {"role": "assistant", "content": "x"}})
            raise ConnectionError("gone")

        sink = sinks.metrics()
        with pytest.raises(ConnectionError):
            ChatStream(failing()).subscribe(sink).until_done()
        assert sink.summary.failed is True
        assert sink.summary.chunks == 1
        assert sink.summary.gap_p50 is None
        assert sink.summary.tokens_per_second is None

    def test_summary_is_a_model(self) -> None:
        """The summary dumps to a plain dict, ready to log or export."""
        dumped = _drive(GAPS_BEFORE).summary.model_dump()
        assert dumped["chunks"] == 7
        assert list(dumped["stalls"]) == [{"after_chunk": 4, "seconds": pytest.approx(3.0)}]
