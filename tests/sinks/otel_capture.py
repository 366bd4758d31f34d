"""Reading spans and metrics back from the OpenTelemetry SDK's in-memory exporters, for sinks.otel's tests."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import HistogramDataPoint, InMemoryMetricReader, NumberDataPoint
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from deltaflow import sinks


@dataclass
class Telemetry:
    """A tracer provider and a meter provider of the SDK, each writing to memory."""

    spans_out: InMemorySpanExporter = field(default_factory=InMemorySpanExporter)
    reader: InMemoryMetricReader = field(default_factory=InMemoryMetricReader)

    def __post_init__(self) -> None:
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans_out))
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def sink(self, **options: Any) -> sinks.OtelSink:
        """``sinks.otel`` reporting here."""
        options.setdefault("model", "replay-1")
        return sinks.otel(tracer_provider=self.tracer_provider, meter_provider=self.meter_provider, **options)

    def spans(self) -> tuple[ReadableSpan, ...]:
        """Every span ended so far."""
        return self.spans_out.get_finished_spans()

    def only_span(self) -> ReadableSpan:
        """The one span ended so far (fails if there are more or none)."""
        spans = self.spans()
        assert len(spans) == 1, [span.name for span in spans]
        return spans[0]

    def points(self, name: str) -> list[Any]:
        """The data points of the metric ``name`` (histogram or sum), across every attribute set."""
        data = self.reader.get_metrics_data()
        found: list[Any] = []
        for resource in data.resource_metrics if data is not None else ():
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        found.extend(metric.data.data_points)
        return found

    def histogram(self, name: str) -> list[HistogramDataPoint]:
        """The histogram data points of ``name``."""
        points = self.points(name)
        assert all(isinstance(point, HistogramDataPoint) for point in points)
        return points

    def counter(self, name: str) -> list[NumberDataPoint]:
        """The sum data points of ``name``."""
        points = self.points(name)
        assert all(isinstance(point, NumberDataPoint) for point in points)
        return points


@pytest.fixture
def telemetry() -> Iterator[Telemetry]:
    """Fresh in-memory telemetry for one test."""
    captured = Telemetry()
    yield captured
    captured.tracer_provider.shutdown()
    captured.meter_provider.shutdown()
