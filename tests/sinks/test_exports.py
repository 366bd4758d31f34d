"""deltaflow.sinks: documented, and every sink an Rx observer (tests/test_exported_members.py pins the names)."""

from __future__ import annotations

import inspect
from pathlib import Path

from reactivex import abc

from deltaflow import sinks


class TestExports:
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
