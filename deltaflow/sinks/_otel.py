"""``sinks.otel``: one OpenTelemetry GenAI client span and the GenAI metrics per stream, ended once."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from array import array
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

from openai.types import CompletionUsage
from openai.types.chat import ParsedChatCompletion

from deltaflow.dialects import Dialect, detect_dialect
from deltaflow.events import BaseEvent, ChoiceDone, ChunkReceived, CompletionDone, UsageReported
from deltaflow.sinks._otel_attributes import (
    finish_reasons,
    output_messages,
    server_attributes,
    usage_attributes,
)
from deltaflow.sinks._otel_conventions import Conventions, metric_names, provider_name, resolve_conventions
from deltaflow.sinks._otel_metrics import GenAiMetrics
from deltaflow.sinks._redact import redact_text
from deltaflow.sinks._sink import Sink
from deltaflow.sinks._timing import Clock, StreamTimer

try:
    from opentelemetry import context as otel_context
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import trace as otel_trace
except ImportError as missing:  # the `otel` extra is not installed: sinks.otel() says so when called
    _MISSING: ImportError | None = missing
else:
    _MISSING = None

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import Span, Tracer, TracerProvider
    from opentelemetry.util.types import AttributeValue

__all__ = ["ChunkTiming", "OtelSink", "Outcome", "otel"]

ChunkTiming = Literal["stream", "each"]
Outcome = Literal["completed", "failed", "closed", "cancelled"]

SCOPE = "deltaflow"
OUTCOME_ATTRIBUTE = "deltaflow.stream.outcome"
CHUNKS_ATTRIBUTE = "deltaflow.stream.chunks"
# the span attributes the metrics take too (low cardinality: no ids, no counts)
_METRIC_ATTRIBUTES = (
    "gen_ai.operation.name",
    "gen_ai.provider.name",
    "gen_ai.request.model",
    "gen_ai.response.model",
    "server.address",
    "server.port",
)
_MAX_DESCRIPTION = 500
_TIME_TO_FIRST_CHUNK = "gen_ai.response.time_to_first_chunk"


def otel(
    *,
    model: str | None = None,
    base_url: str | None = None,
    dialect: str | Dialect | None = None,
    provider: str | None = None,
    operation: str = "chat",
    attributes: Mapping[str, AttributeValue] | None = None,
    tracer_provider: TracerProvider | None = None,
    meter_provider: MeterProvider | None = None,
    conventions: Conventions | None = None,
    chunk_timing: ChunkTiming = "stream",
    capture_content: bool = False,
    max_content: int = 200,
    clock: Clock = time.monotonic,
    started_at: float | None = None,
) -> OtelSink:
    """A sink reporting a stream to OpenTelemetry as the GenAI semantic conventions describe it.

    One ``CLIENT`` span per stream, named ``{operation} {model}``, a child of the span current when
    the sink is built. It starts with the first chunk (dated back to the sink's creation, or
    ``started_at``: build the sink just before the request goes out) and ends exactly once, however
    the stream ends; a stream that ends before its first chunk (a refused connection, a close before
    iterating) still gets its span, with no chunk:

    - completed: outcome ``completed``, status unset.
    - failed (a provider error mid-stream, a dropped connection, an idle timeout, a broken chunk):
      ``failed``, status error, ``error.type`` the error's class name (``ProviderError``,
      ``StreamInterrupted``, ``StreamTimeout``, ``StreamContractError``, openai's ``APIError``...).
    - closed early (``close()``, ``break`` out of a ``with`` block, the stream garbage collected
      unfinished): ``closed``, status unset.
    - an exception raised in the consumer's loop that leaves the stream's ``with`` block:
      ``failed``, status error, ``error.type`` that exception's class name.
    - the task cancelled (a relay's client gone): ``cancelled``, status unset.

    The outcome is the ``deltaflow.stream.outcome`` attribute. At the end the span gets
    ``gen_ai.response.id``, ``gen_ai.response.model``, ``gen_ai.response.finish_reasons`` (one per
    choice; ``error`` for a choice that never finished), the ``gen_ai.usage.*`` counts the provider
    reported (input, output, cache read, reasoning), ``gen_ai.response.time_to_first_chunk`` and
    ``deltaflow.stream.chunks``. At the start: ``gen_ai.operation.name``, ``gen_ai.provider.name``,
    ``gen_ai.request.model``, ``gen_ai.request.stream``, ``server.address`` / ``server.port`` and
    ``attributes``.

    Metrics, recorded once at the end: operation duration (with ``error.type`` when failed), time to
    first chunk, time per output chunk and token usage, as histograms with the conventions' buckets.
    ``conventions`` picks the names: ``v1.41`` (``gen_ai.client.operation.*`` and
    ``gen_ai.client.token.usage``, what backends read today) or ``latest``
    (``gen_ai.client.inference.*`` and the ``gen_ai.client.inference.usage.*`` counters); None
    (the default) means ``v1.41`` unless ``OTEL_SEMCONV_STABILITY_OPT_IN`` holds
    ``gen_ai_latest_experimental``, as the conventions ask.

    Per chunk the sink reads the clock and keeps a reference; everything else happens at
    milestones. ``chunk_timing="stream"`` records one time per output chunk per stream, the mean
    gap between consecutive chunks; ``"each"`` records every gap, as the conventions define the
    metric, at the end of the stream: with the OpenTelemetry SDK each recording costs a few
    microseconds, so that doubles the cost of a chunk.

    Message content is recorded only with ``capture_content``: ``gen_ai.output.messages`` (each
    choice's text, reasoning and tool calls, every text cut to ``max_content`` characters and
    scrubbed of API keys and tokens by ``sinks.redact``). Nothing of the request, its headers or
    its API key ever reaches the sink.

    Args:
        model: the requested model, ``gen_ai.request.model`` (and the span's name).
        base_url: the client's base URL: ``server.address`` / ``server.port``, and the provider
            when neither ``dialect`` nor ``provider`` is given.
        dialect: the stream's dialect; its provider becomes ``gen_ai.provider.name``.
        provider: ``gen_ai.provider.name`` as is, over ``dialect`` and ``base_url``.
        operation: ``gen_ai.operation.name``.
        attributes: more attributes for the span.
        tracer_provider: the tracer provider; the global one by default.
        meter_provider: the meter provider; the global one by default.
        conventions: ``v1.41``, ``latest`` or None (see above).
        chunk_timing: ``stream`` (one mean per stream) or ``each`` (every gap).
        capture_content: record the output messages.
        max_content: the most characters of any text recorded.
        clock: the monotonic clock, in seconds; tests pass a fake.
        started_at: the clock reading when the request was sent; by default the moment the sink
            is built.

    Returns:
        The sink, an Rx observer of events.

    Raises:
        ImportError: opentelemetry-api is not installed (``pip install 'deltaflow[otel]'``).
        ValueError: an unknown dialect, conventions or chunk timing, or a negative ``max_content``.

    Example::

        with deltaflow.stream(client, model="gpt-4o-mini", messages=messages) as stream:
            stream.subscribe(sinks.otel(model="gpt-4o-mini", base_url=str(client.base_url)))
            for event in stream:
                ...
    """
    if _MISSING is not None:
        raise ImportError(
            "sinks.otel needs the OpenTelemetry API: pip install 'deltaflow[otel]'"
        ) from _MISSING
    if chunk_timing not in {"stream", "each"}:
        raise ValueError(f"chunk_timing must be 'stream' or 'each', got {chunk_timing!r}")
    if max_content < 0:
        raise ValueError("max_content must not be negative")
    if provider is None:
        provider = provider_name(dialect if dialect is not None else detect_dialect(base_url))
    start: dict[str, Any] = {
        "gen_ai.operation.name": operation,
        "gen_ai.provider.name": provider,
        "gen_ai.request.stream": True,
    }
    if model is not None:
        start["gen_ai.request.model"] = model
    if base_url is not None:
        start.update(server_attributes(base_url))
    start.update(attributes or {})
    chosen = resolve_conventions(conventions)
    return OtelSink(
        tracer=otel_trace.get_tracer(SCOPE, tracer_provider=tracer_provider),
        metrics=GenAiMetrics(
            otel_metrics.get_meter(SCOPE, meter_provider=meter_provider), metric_names(chosen)
        ),
        span_name=operation if model is None else f"{operation} {model}",
        start_attributes=start,
        parent=otel_context.get_current(),
        chunk_timing=chunk_timing,
        capture_content=capture_content,
        max_content=max_content,
        clock=clock,
        started_at=started_at,
    )


class OtelSink(Sink):
    """The sink ``sinks.otel(...)`` builds; see there."""

    name = "otel"

    def __init__(
        self,
        *,
        tracer: Tracer,
        metrics: GenAiMetrics,
        span_name: str,
        start_attributes: Mapping[str, Any],
        parent: Context,
        chunk_timing: ChunkTiming,
        capture_content: bool,
        max_content: int,
        clock: Clock,
        started_at: float | None,
    ) -> None:
        self._tracer = tracer
        self._metrics = metrics
        self._span_name = span_name
        self._start_attributes = dict(start_attributes)
        self._parent = parent
        self._timer = StreamTimer(clock, started_at)
        # the span's wall-clock start: now, moved back by what the monotonic clock says has passed
        self._start_ns = time.time_ns() - round((clock() - self._timer.origin) * 1e9)
        self._gaps: array[float] | None = array("d") if chunk_timing == "each" else None
        self._capture = capture_content
        self._max = max_content
        self._span: Span | None = None
        self._ended = False
        # the end may be signalled from two threads at once (a fan-out's worker, a close())
        self._ending = threading.Lock()
        self._last_chunk: ChunkReceived | None = None
        self._completion: ParsedChatCompletion[object] | None = None
        self._usage: CompletionUsage | None = None
        self._finished: dict[int, str] = {}
        self._handlers: dict[str, Callable[[Any], None]] = {
            "choice.done": self._choice_done,
            "usage": self._usage_reported,
            "completion.done": self._completion_done,
        }

    @property
    def ended(self) -> bool:
        """The span has ended."""
        return self._ended

    # -- the observer ------------------------------------------------------------------------------

    def on_next(self, value: BaseEvent) -> None:
        """Time a chunk (the span starts with the first); keep what a milestone says."""
        if type(value) is not ChunkReceived:
            # most events are deltas: one lookup, and nothing to do
            handler = self._handlers.get(getattr(value, "type", ""))
            if handler is not None:
                handler(value)
            return
        timer = self._timer
        previous = timer.last_chunk
        now = timer.observe(value)
        self._last_chunk = value
        if self._span is None:
            self._span = self._start_span()
        elif self._gaps is not None and previous is not None and now is not None:
            self._gaps.append(now - previous)

    def on_completed(self) -> None:
        """End the span: completed."""
        self._end("completed", None)

    def on_error(self, error: Exception) -> None:
        """End the span: failed with ``error``."""
        self._end("failed", error)

    def close(self) -> None:
        """End the span of a stream abandoned before its end; safe to call more than once.

        The reason is the exception being handled, if any: a ``CancelledError`` (or another
        exception that is not an ``Exception``, such as ``KeyboardInterrupt``) means cancelled; an
        exception raised in the consumer's loop (closing the stream as it leaves a ``with`` block)
        means failed, with that exception; none (``close()``, ``break`` out of ``with``, garbage
        collection) means closed. So ``close()`` called while handling an exception takes that one.
        """
        if self._ended:
            return
        reason = why_closed()
        if reason is None:
            self._end("closed", None)
        elif isinstance(reason, asyncio.CancelledError) or not isinstance(reason, Exception):
            self._end("cancelled", None)
        else:
            self._end("failed", reason)

    # -- milestones --------------------------------------------------------------------------------

    def _choice_done(self, event: ChoiceDone) -> None:
        self._finished[event.choice_index] = event.finish_reason

    def _usage_reported(self, event: UsageReported) -> None:
        self._usage = event.usage

    def _completion_done(self, event: CompletionDone) -> None:
        self._completion = event.completion
        self._timer.finish()

    def _start_span(self) -> Span:
        return self._tracer.start_span(
            self._span_name,
            context=self._parent,
            kind=otel_trace.SpanKind.CLIENT,
            attributes=self._start_attributes,
            start_time=self._start_ns,
        )

    def _end(self, outcome: Outcome, error: BaseException | None) -> None:
        with self._ending:
            if self._ended:
                return
            self._ended = True
        timer = self._timer
        timer.finish()
        span = self._span if self._span is not None else self._start_span()
        completion = self._known_completion(error)
        attributes = self._response_attributes(outcome, completion)
        usage = self._usage if self._usage is not None else getattr(completion, "usage", None)
        counts = usage_attributes(usage) if isinstance(usage, CompletionUsage) else {}
        attributes.update(counts)
        error_type = None
        if outcome == "failed" and error is not None:
            error_type = attributes["error.type"] = type(error).__qualname__
            description = redact_text(f"{type(error).__name__}: {error}")[:_MAX_DESCRIPTION]
            span.set_status(otel_trace.Status(otel_trace.StatusCode.ERROR, description))
        span.set_attributes(attributes)
        duration = timer.duration or 0.0
        # the span lasts exactly what the duration metric says: both come from the monotonic clock
        span.end(end_time=self._start_ns + round(duration * 1e9))
        common = {**self._start_attributes, **attributes}
        self._metrics.record(
            {name: common[name] for name in _METRIC_ATTRIBUTES if name in common},
            duration=duration,
            error_type=error_type,
            time_to_first_chunk=attributes.get(_TIME_TO_FIRST_CHUNK),
            chunk_times=self._chunk_times(),
            usage=counts,
        )

    def _response_attributes(
        self, outcome: Outcome, completion: ParsedChatCompletion[object] | None
    ) -> dict[str, Any]:
        """What the stream showed of the response: id, model, finish reasons, timing, content."""
        timer = self._timer
        attributes: dict[str, Any] = {OUTCOME_ATTRIBUTE: outcome, CHUNKS_ATTRIBUTE: timer.chunks}
        if completion is not None:
            if completion.id:
                attributes["gen_ai.response.id"] = completion.id
            if completion.model:
                attributes["gen_ai.response.model"] = completion.model
        reasons = finish_reasons(completion, self._finished)
        if reasons:
            attributes["gen_ai.response.finish_reasons"] = reasons
        if timer.first_chunk is not None:
            attributes[_TIME_TO_FIRST_CHUNK] = timer.first_chunk - timer.origin
        if self._capture and completion is not None:
            attributes["gen_ai.output.messages"] = output_messages(completion, self._max)
        return attributes

    def _known_completion(self, error: BaseException | None) -> ParsedChatCompletion[object] | None:
        """The final completion, else the failure's partial one, else the snapshot at the last chunk."""
        if self._completion is not None:
            return self._completion
        partial = getattr(error, "completion", None)
        if isinstance(partial, ParsedChatCompletion):
            return partial
        return None if self._last_chunk is None else self._last_chunk.snapshot

    def _chunk_times(self) -> list[float] | array[float]:
        if self._gaps is not None:
            return self._gaps
        timer = self._timer
        if timer.chunks < 2 or timer.first_chunk is None or timer.last_chunk is None:
            return []
        return [(timer.last_chunk - timer.first_chunk) / (timer.chunks - 1)]


def why_closed() -> BaseException | None:
    """The exception on its way when a stream is closed early, or None for a plain close.

    ``ChatStream.close()`` (and so leaving its ``with`` block) closes the sinks in the caller's
    context, where an exception leaving the block is the one being handled. A close from the
    stream's own cleanup (garbage collection) sees ``GeneratorExit``: no reason.
    """
    exception = sys.exc_info()[1]
    return None if isinstance(exception, GeneratorExit) else exception
