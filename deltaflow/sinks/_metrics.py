"""``sinks.metrics``: latency and throughput of one stream, as a summary and optional callbacks."""

from __future__ import annotations

import statistics
import time
from array import array
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from deltaflow.events import BaseEvent
from deltaflow.sinks._sink import Sink
from deltaflow.sinks._timing import Clock, StreamTimer

__all__ = ["MetricsSink", "Stall", "StreamMetrics", "metrics"]


class Stall(BaseModel):
    """A gap between two chunks longer than the stall threshold.

    Attributes:
        after_chunk: how many chunks had arrived before the gap.
        seconds: the length of the gap.
    """

    model_config = ConfigDict(frozen=True)

    after_chunk: int
    seconds: float


class StreamMetrics(BaseModel):
    """The summary of one stream; every duration is in seconds.

    Attributes:
        chunks: how many chunks arrived.
        duration: from the origin (the sink's creation, or ``started_at``) to the end.
        time_to_first_chunk: from the origin to the first chunk.
        time_to_first_token: from the origin to the first model output (content, reasoning, refusal
            or a tool call).
        gap_p50: the median gap between consecutive chunks.
        gap_p95: the 95th percentile of the gaps.
        gap_max: the longest gap.
        stalls: the gaps longer than ``stall_threshold``, in order.
        stall_threshold: the gap that counts as a stall.
        completion_tokens: ``usage.completion_tokens``, when the provider reported usage.
        tokens_per_second: completion tokens over the time from the first token to the end.
        failed: the stream ended with an error.
    """

    model_config = ConfigDict(frozen=True)

    chunks: int
    duration: float
    time_to_first_chunk: float | None
    time_to_first_token: float | None
    gap_p50: float | None
    gap_p95: float | None
    gap_max: float | None
    stalls: tuple[Stall, ...]
    stall_threshold: float
    completion_tokens: int | None
    tokens_per_second: float | None
    failed: bool


def metrics(
    *,
    stall_threshold: float = 2.0,
    on_stall: Callable[[Stall], Any] | None = None,
    on_summary: Callable[[StreamMetrics], Any] | None = None,
    clock: Clock = time.monotonic,
    started_at: float | None = None,
) -> MetricsSink:
    """A sink measuring time to first token, gaps between chunks, stalls and tokens per second.

    The summary is ready once the stream ends (completed or failed): read ``sink.summary``, or pass
    ``on_summary``. A stall is a gap between chunks longer than ``stall_threshold``; it is known
    when the next chunk arrives (there is no timer), and then reported to ``on_stall``. Gap
    percentiles interpolate between the recorded gaps (``statistics.quantiles``, inclusive).

    Args:
        stall_threshold: seconds between two chunks that count as a stall.
        on_stall: called with each stall as it ends.
        on_summary: called with the summary when the stream ends.
        clock: the monotonic clock, in seconds; tests pass a fake.
        started_at: the clock reading when the request was sent; by default the moment the sink
            is built.

    Returns:
        The sink, an Rx observer of events.

    Example::

        meter = sinks.metrics(on_stall=lambda stall: log.warning("stall", seconds=stall.seconds))
        deltaflow.ChatStream(chunks).subscribe(meter).until_done()
        print(meter.summary.time_to_first_token, meter.summary.gap_p95)
    """
    return MetricsSink(
        stall_threshold=stall_threshold,
        on_stall=on_stall,
        on_summary=on_summary,
        clock=clock,
        started_at=started_at,
    )


class MetricsSink(Sink):
    """The sink ``sinks.metrics(...)`` builds; see there."""

    name = "metrics"

    def __init__(
        self,
        *,
        stall_threshold: float = 2.0,
        on_stall: Callable[[Stall], Any] | None = None,
        on_summary: Callable[[StreamMetrics], Any] | None = None,
        clock: Clock = time.monotonic,
        started_at: float | None = None,
    ) -> None:
        if stall_threshold <= 0:
            raise ValueError("stall_threshold must be positive")
        self._timer = StreamTimer(clock, started_at)
        self._threshold = stall_threshold
        self._on_stall = on_stall
        self._on_summary = on_summary
        # a typed array: 8 bytes a gap rather than a float object and a pointer
        self._gaps = array("d")
        self._stalls: list[Stall] = []
        self._summary: StreamMetrics | None = None

    @property
    def summary(self) -> StreamMetrics:
        """The stream's figures, once it has ended.

        Raises:
            RuntimeError: the stream has not ended yet.
        """
        if self._summary is None:
            raise RuntimeError("the stream has not ended: metrics are summarised at its end")
        return self._summary

    def on_next(self, value: BaseEvent) -> None:
        """Time the event; a chunk adds a gap."""
        timer = self._timer
        previous = timer.last_chunk
        now = timer.observe(value)
        if now is None or previous is None:
            return
        gap = now - previous
        self._gaps.append(gap)
        if gap > self._threshold:
            stall = Stall(after_chunk=timer.chunks - 1, seconds=gap)
            self._stalls.append(stall)
            if self._on_stall is not None:
                self._on_stall(stall)

    def on_completed(self) -> None:
        """Summarise."""
        self._summarise(failed=False)

    def on_error(self, error: Exception) -> None:
        """Summarise what arrived before the failure."""
        self._summarise(failed=True)

    def _summarise(self, *, failed: bool) -> None:
        if self._summary is not None:
            return
        timer = self._timer
        timer.finish()
        gaps = sorted(self._gaps)
        p50 = p95 = None
        if len(gaps) == 1:
            p50 = p95 = gaps[0]
        elif gaps:
            cuts = statistics.quantiles(gaps, n=100, method="inclusive")
            p50, p95 = cuts[49], cuts[94]
        self._summary = StreamMetrics(
            chunks=timer.chunks,
            duration=timer.duration or 0.0,
            time_to_first_chunk=None if timer.first_chunk is None else timer.first_chunk - timer.origin,
            time_to_first_token=timer.time_to_first_token,
            gap_p50=p50,
            gap_p95=p95,
            gap_max=gaps[-1] if gaps else None,
            stalls=tuple(self._stalls),
            stall_threshold=self._threshold,
            completion_tokens=timer.completion_tokens,
            tokens_per_second=timer.tokens_per_second,
            failed=failed,
        )
        if self._on_summary is not None:
            self._on_summary(self._summary)
