"""Per-chunk CPU of fanning a stream out to sinks, against ``ChatStream`` alone and openai's helper.

On the same 2,000-chunk text stream: openai's ``ChatCompletionStreamState.handle_chunk``, deltaflow's
``ChatStream`` with no sink, and ``ChatStream`` with ``sinks.fan_out`` to three sinks: ``sinks.log``
at INFO without content (rendered to JSON and written to ``os.devnull`` through a logger built here,
structlog's global configuration untouched), ``sinks.jsonl`` to a temporary file (raw chunks, the
replayable recording; a row with ``what="events"`` shows what dumping every event's snapshots costs),
and a no-op ``sinks.callback``. Each sink is also timed alone, and the three behind ``drop_oldest``
queues (one thread each). ``sinks.otel`` is timed alone against the OpenTelemetry SDK (a tracer
provider with a simple processor into an in-memory exporter, a meter provider with an in-memory
reader), with one time per output chunk per stream (the default) and with every gap recorded, and
against the API's no-op providers (no SDK configured). CPU time counts every thread of the process.

    python -m benchmarks.bench_sinks
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TextIO

import structlog
from openai.types.chat import ChatCompletionChunk
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.trace import NoOpTracerProvider

from benchmarks._common import DIALECT, cpu_time, run_deltaflow, run_openai, write_results
from benchmarks.bench_core import text_chunks

CHUNKS = 2_000
REPEAT = 7
SinkFactory = Callable[[Path], Any]


@contextmanager
def _null_file() -> Iterator[TextIO]:
    with Path(os.devnull).open("w", encoding="utf-8") as file:
        yield file


def _logger(file: TextIO) -> Any:
    """A logger as a service would configure it (level filter, timestamp, JSON), writing to devnull."""
    return structlog.wrap_logger(
        structlog.PrintLogger(file),
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
    )


def run_with_sink(chunks: list[ChatCompletionChunk], sink: Any) -> object:
    """``ChatStream`` with ``sink`` subscribed: every event iterated, then the final completion."""
    from deltaflow import ChatStream  # noqa: PLC0415 - imported late so a broken deltaflow fails one bench

    stream: ChatStream[object] = ChatStream(chunks, dialect=DIALECT).subscribe(sink)
    for _ in stream:
        pass
    return stream.get_final_completion()


def _cases(devnull: TextIO) -> dict[str, SinkFactory]:
    from deltaflow import sinks  # noqa: PLC0415 - imported late so a broken deltaflow fails one bench

    logger = _logger(devnull)

    def three(path: Path, what: str = "chunks", policy: str = "block") -> Any:
        return sinks.fan_out(
            sinks.log(logger),
            sinks.jsonl(path, what=what),  # type: ignore[arg-type]
            sinks.callback(lambda event: None),
            policy=policy,  # type: ignore[arg-type]
        )

    tracer_provider, meter_provider = _otel_providers()

    def otel(path: Path, **options: Any) -> Any:
        return sinks.otel(
            model="bench", tracer_provider=tracer_provider, meter_provider=meter_provider, **options
        )

    return {
        "fan_out(log, jsonl chunks, callback)": three,
        "fan_out(log, jsonl events, callback)": lambda path: three(path, what="events"),
        "fan_out(...) drop_oldest, 3 threads": lambda path: three(path, policy="drop_oldest"),
        "log alone (INFO, no content)": lambda path: sinks.log(logger),
        "jsonl alone (chunks)": lambda path: sinks.jsonl(path, what="chunks"),
        "callback alone (no-op)": lambda path: sinks.callback(lambda event: None),
        "otel alone (SDK in memory)": otel,
        "otel alone (SDK in memory, chunk_timing=each)": lambda path: otel(path, chunk_timing="each"),
        "otel alone (API only, no SDK)": lambda path: sinks.otel(
            model="bench", tracer_provider=NoOpTracerProvider(), meter_provider=NoOpMeterProvider()
        ),
    }


def _otel_providers() -> tuple[Any, Any]:
    """An SDK tracer provider exporting each span to memory, and an SDK meter provider read from memory."""
    from opentelemetry.sdk.metrics import MeterProvider  # noqa: PLC0415 - a dev dependency, for this bench
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: PLC0415
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: PLC0415
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: PLC0415

    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    return tracer_provider, MeterProvider(metric_readers=[InMemoryMetricReader()])


def _time_sink(chunks: list[ChatCompletionChunk], factory: SinkFactory, folder: Path) -> tuple[float, int]:
    counter = iter(range(1_000_000))

    def run() -> object:
        # a fresh sink and file per run: a sink follows one stream
        return run_with_sink(chunks, factory(folder / f"run-{next(counter)}.jsonl"))

    return cpu_time(run, REPEAT)


def main() -> dict[str, Any]:
    """Measure, print the table and write ``results/sinks.json``."""
    chunks = text_chunks(CHUNKS)
    openai_s, openai_runs = cpu_time(lambda: run_openai(chunks), REPEAT)
    bare_s, bare_runs = cpu_time(lambda: run_deltaflow(chunks), REPEAT)
    per_chunk = 1e6 / len(chunks)
    openai_us, bare_us = openai_s * per_chunk, bare_s * per_chunk
    rows: list[dict[str, Any]] = [
        {
            "run": "openai ChatCompletionStreamState.handle_chunk",
            "us_per_chunk": openai_us,
            "runs": openai_runs,
        },
        {"run": "deltaflow ChatStream, no sink", "us_per_chunk": bare_us, "runs": bare_runs},
    ]
    with _null_file() as devnull, tempfile.TemporaryDirectory() as folder:
        for name, factory in _cases(devnull).items():
            seconds, runs = _time_sink(chunks, factory, Path(folder))
            rows.append({"run": f"ChatStream + {name}", "us_per_chunk": seconds * per_chunk, "runs": runs})
    for row in rows:
        row["added_over_chatstream_us_per_chunk"] = row["us_per_chunk"] - bare_us
        row["ratio_to_openai"] = row["us_per_chunk"] / openai_us

    print(f"## sinks: per-chunk CPU on a {CHUNKS:,}-chunk text stream\n")
    print("| run | µs/chunk | added over ChatStream | ratio to openai |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['run']} | {row['us_per_chunk']:.2f} | {row['added_over_chatstream_us_per_chunk']:+.2f}"
            f" | {row['ratio_to_openai']:.3f} |"
        )
    payload = {
        "unit": "CPU µs per chunk (time.process_time, every thread, gc off, best of `runs`)",
        "chunks": CHUNKS,
        "rows": rows,
    }
    print(f"\nwritten to {write_results('sinks', payload)}")
    return payload


if __name__ == "__main__":
    main()
