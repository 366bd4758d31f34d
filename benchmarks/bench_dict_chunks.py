"""Streams given as decoded JSON (dicts): deltaflow's ``ChatStream`` against openai's own path from them.

A recording, a queue, a user's own source hand chunks as dicts. openai's client turns each SSE event's
JSON into a chunk with ``construct_type`` and hands it to its helper; that is openai's side here:
``construct_type`` then ``ChatCompletionStreamState.handle_chunk`` per chunk. deltaflow's side is
``ChatStream(dicts)`` iterated whole, with the generic dialect (what a dict source of no known provider
gets) and with the ``deepseek`` dialect on a reasoning stream (``reasoning_content``), then the final
completion. Same dicts, same run, best of 5.

    python -m benchmarks.bench_dict_chunks

Results go to ``benchmarks/results/dict_chunks.json``.
"""

from __future__ import annotations

from typing import Any

from openai._models import construct_type
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from benchmarks._common import cpu_time, write_results

CHUNKS = 2_000


def dict_chunks(total: int, field: str) -> list[dict[str, Any]]:
    """A stream of ``total`` one-word deltas of ``field`` (``content`` or ``reasoning_content``), as dicts."""
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1767225600, "model": "m"}

    def one(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    words = [one({field: f"word{n} "}) for n in range(total)]
    return [one({"role": "assistant", "content": ""}), *words, one({"content": "done"}), one({}, "stop")]


def run_openai(chunks: list[dict[str, Any]]) -> object:
    """openai's path from dicts: ``construct_type`` per chunk, its helper, the final completion."""
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for data in chunks:
        for _ in state.handle_chunk(construct_type(type_=ChatCompletionChunk, value=data)):
            pass
    return state.get_final_completion()


def run_deltaflow(chunks: list[dict[str, Any]], dialect: str) -> object:
    """deltaflow: ``ChatStream`` over the dicts, every event iterated, the final completion."""
    from deltaflow import ChatStream  # noqa: PLC0415 - imported late so a broken deltaflow fails one bench

    stream: ChatStream[None] = ChatStream(chunks, dialect=dialect)
    for _ in stream:
        pass
    return stream.get_final_completion()


def main() -> dict[str, Any]:
    rows = []
    for scenario, field, dialect in (
        ("text, generic dialect", "content", "generic"),
        ("reasoning_content, deepseek dialect", "reasoning_content", "deepseek"),
    ):
        chunks = dict_chunks(CHUNKS, field)
        deltaflow, _ = cpu_time(lambda: run_deltaflow(chunks, dialect), 5)  # noqa: B023 - called at once
        openai, _ = cpu_time(lambda: run_openai(chunks), 5)  # noqa: B023 - called at once
        row = {
            "scenario": scenario,
            "chunks": len(chunks),
            "deltaflow_us_per_chunk": deltaflow / len(chunks) * 1e6,
            "openai_us_per_chunk": openai / len(chunks) * 1e6,
            "ratio": deltaflow / openai,
        }
        rows.append(row)
        print(
            f"{scenario:38} {len(chunks)} chunks  openai {row['openai_us_per_chunk']:7.2f} us"
            f"  deltaflow {row['deltaflow_us_per_chunk']:6.2f} us ({row['ratio']:.3f}x)"
        )
    payload = {"unit": "CPU µs per chunk (time.process_time, gc off, best of 5)", "rows": rows}
    print(f"written {write_results('dict_chunks', payload)}")
    return payload


if __name__ == "__main__":
    main()
