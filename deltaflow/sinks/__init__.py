"""Sinks: where events go once the pipeline has made them. Each is an Rx observer of events.

``fan_out`` hands every event to several sinks, isolating each from the others' failures and pace::

    stream = deltaflow.ChatStream(chunks).subscribe(
        sinks.fan_out(sinks.log(logger), sinks.jsonl("run.jsonl", what="chunks"), sinks.console())
    )
"""

from deltaflow.sinks._callback import CallbackSink, callback
from deltaflow.sinks._console import ConsoleSink, console
from deltaflow.sinks._fan_out import FanOut, Policy, fan_out
from deltaflow.sinks._jsonl import JsonlSink, jsonl
from deltaflow.sinks._log import LogSink, log
from deltaflow.sinks._metrics import MetricsSink, Stall, StreamMetrics, metrics
from deltaflow.sinks._otel import OtelSink, otel
from deltaflow.sinks._redact import redact, redact_processor
from deltaflow.sinks._sink import Sink

__all__ = [
    "CallbackSink",
    "ConsoleSink",
    "FanOut",
    "JsonlSink",
    "LogSink",
    "MetricsSink",
    "OtelSink",
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
    "otel",
    "redact",
    "redact_processor",
]
