"""The public surface of deltaflow.sinks: pinned, sorted, documented, and every sink an Rx observer."""

from __future__ import annotations

import inspect
from pathlib import Path

from reactivex import abc

from deltaflow import sinks

EXPECTED = [
    "CallbackSink",
    "ConsoleSink",
    "FanOut",
    "JsonlSink",
    "LogSink",
    "MetricsSink",
    "Policy",
    "Sink",
    "Stall",
    "StreamMetrics",
    "callback",
    "console",
    "fan_out",
    "jsonl",
    "log",
    "metrics",
    "redact",
    "redact_processor",
]


class TestExports:
    def test_all_pinned_and_sorted(self) -> None:
        """__all__ is exactly the curated list, sorted, and every name resolves."""
        assert sinks.__all__ == EXPECTED
        assert sorted(sinks.__all__) == sinks.__all__
        assert all(hasattr(sinks, name) for name in sinks.__all__)

    def test_every_factory_documented_with_an_example(self) -> None:
        """Each sink factory has a Google docstring with Args and an Example."""
        for factory in (sinks.log, sinks.jsonl, sinks.callback, sinks.console, sinks.metrics, sinks.fan_out):
            doc = inspect.getdoc(factory) or ""
            assert "Args:" in doc, factory.__name__
            assert "Example::" in doc, factory.__name__

    def test_every_sink_is_an_observer(self, tmp_path: Path) -> None:
        """What each factory returns is a reactivex ObserverBase and a deltaflow Sink."""
        built = [
            sinks.log(),
            sinks.jsonl(tmp_path / "x.jsonl"),
            sinks.callback(print),
            sinks.console(),
            sinks.metrics(),
            sinks.fan_out(),
        ]
        for sink in built:
            assert isinstance(sink, abc.ObserverBase)
            assert isinstance(sink, sinks.Sink)
            sink.close()
