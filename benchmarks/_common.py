"""Shared benchmark helpers: CPU timing, chunk builders, the two implementations, result files."""

from __future__ import annotations

import gc
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable
from importlib.metadata import version
from pathlib import Path
from typing import Any

from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

RESULTS = Path(__file__).resolve().parent / "results"
DIALECT = "openai"
"""The streams here are OpenAI's, and openai's helper reads nothing else: deltaflow runs with the
dialect it detects for api.openai.com (no normalisation layer). Rows marked "generic" add the
tolerant normaliser, the default for a ChatStream over chunks of unknown origin."""

_BASE = {
    "id": "chatcmpl-bench",
    "object": "chat.completion.chunk",
    "created": 1727346173,
    "model": "gpt-4o-2024-08-06",
    "system_fingerprint": "fp_5050236cbd",
}


def chunk(choices: list[dict[str, Any]], **fields: Any) -> ChatCompletionChunk:
    """One chunk as OpenAI sends it, validated into openai's type."""
    return ChatCompletionChunk.model_validate({**_BASE, "choices": choices, **fields})


def choice(
    index: int, delta: dict[str, Any], finish_reason: str | None = None, logprobs: Any = None
) -> dict[str, Any]:
    """One ``choices[]`` entry of a chunk."""
    return {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}


def usage_chunk(completion_tokens: int) -> ChatCompletionChunk:
    """The final ``stream_options.include_usage`` chunk: no choices, only usage."""
    usage = {
        "prompt_tokens": 48,
        "completion_tokens": completion_tokens,
        "total_tokens": 48 + completion_tokens,
        "completion_tokens_details": {"reasoning_tokens": 0},
    }
    return chunk([], usage=usage)


def cpu_time(run: Callable[[], object], repeat: int, budget: float = 10.0) -> tuple[float, int]:
    """Best CPU seconds of up to ``repeat`` calls of ``run``, and how many calls were made.

    The garbage collector is off while timing. Calls stop early once ``budget`` CPU seconds are spent
    (a single call that slow is its own best).
    """
    best, spent, runs = float("inf"), 0.0, 0
    while runs < repeat and (runs == 0 or spent < budget):
        gc.collect()
        gc.disable()
        try:
            start = time.process_time()
            run()
            elapsed = time.process_time() - start
        finally:
            gc.enable()
        best, spent, runs = min(best, elapsed), spent + elapsed, runs + 1
    return best, runs


def run_openai(
    chunks: Iterable[ChatCompletionChunk],
    tools: list[dict[str, Any]] | None = None,
    read: str = "",
    read_on: str = "",
) -> object:
    """openai's reference: ``handle_chunk`` per chunk, every event consumed, then the final completion.

    ``read`` names a field read on every event of type ``read_on`` (say ``snapshot`` of ``content.delta``).
    """
    state: ChatCompletionStreamState[object] = ChatCompletionStreamState(input_tools=tools or [])
    for item in chunks:
        for event in state.handle_chunk(item):
            if event.type == read_on:
                getattr(event, read)
    return state.get_final_completion()


def run_deltaflow(
    chunks: Iterable[ChatCompletionChunk],
    tools: list[dict[str, Any]] | None = None,
    read: str = "",
    read_on: str = "",
    dialect: str = DIALECT,
) -> object:
    """deltaflow's ``ChatStream``: every event iterated, lazy fields left unread but ``read``."""
    from deltaflow import ChatStream  # noqa: PLC0415 - imported late so a broken deltaflow fails one bench

    stream: ChatStream[object] = ChatStream(chunks, tools=tools, dialect=dialect)
    for event in stream:
        if event.type == read_on:
            getattr(event, read)
    return stream.get_final_completion()


def compare(
    scenario: str, chunks: list[ChatCompletionChunk], *, repeat: int, dialect: str = DIALECT, **options: Any
) -> dict[str, Any]:
    """CPU µs/chunk of both sides on the same chunks (``options`` go to both runners), and the ratio."""
    deltaflow, deltaflow_runs = cpu_time(lambda: run_deltaflow(chunks, dialect=dialect, **options), repeat)
    openai, openai_runs = cpu_time(lambda: run_openai(chunks, **options), repeat)
    deltaflow_us, openai_us = deltaflow / len(chunks) * 1e6, openai / len(chunks) * 1e6
    return {
        "scenario": scenario,
        "chunks": len(chunks),
        "openai_us_per_chunk": openai_us,
        "deltaflow_us_per_chunk": deltaflow_us,
        "ratio": deltaflow_us / openai_us,
        "runs": {"openai": openai_runs, "deltaflow": deltaflow_runs},
    }


def comparison_table(rows: Iterable[dict[str, Any]]) -> str:
    """The markdown table of ``compare`` rows."""
    lines = [
        "| scenario | chunks | openai µs/chunk | deltaflow µs/chunk | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {row['scenario']} | {row['chunks']:,} | {row['openai_us_per_chunk']:.2f} "
        f"| {row['deltaflow_us_per_chunk']:.2f} | {row['ratio']:.3f} |"
        for row in rows
    ]
    return "\n".join(lines)


def machine_info() -> dict[str, Any]:
    """Where the figures were measured."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "openai": version("openai"),
        "pydantic": version("pydantic"),
        "jiter": version("jiter"),
    }


def write_results(name: str, payload: dict[str, Any]) -> Path:
    """Write ``results/<name>.json`` with the machine info added; returns the path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    data = {"benchmark": name, "machine": machine_info(), **payload}
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path
