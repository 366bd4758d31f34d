"""Long lines: what they cost in memory, and where the bound stops them."""

from __future__ import annotations

import json
import tracemalloc

import pytest

from deltaflow.errors import StreamContractError
from deltaflow.pipeline import chunks_from_sse


def _long_chunk_reads(size: int, read_size: int = 65536) -> list[bytes]:
    """One chunk whose content is ``size`` characters, then [DONE], as network reads."""
    chunk = {
        "id": "chatcmpl-long",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "x" * size}, "finish_reason": None}],
    }
    body = b"data: " + json.dumps(chunk, separators=(",", ":")).encode() + b"\n\ndata: [DONE]\n\n"
    return [body[start : start + read_size] for start in range(0, len(body), read_size)]


def test_a_long_line_costs_about_twice_its_size() -> None:
    """An 8 MB line over 64 KB reads peaks at the buffered bytes plus the decoded text (was 5x)."""
    size = 8 * 1024 * 1024
    reads = iter(_long_chunk_reads(size))
    tracemalloc.start()
    try:
        chunks = list(chunks_from_sse(reads))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(chunks[0].choices[0].delta.content) == size
    assert peak < 2.5 * size  # the line's bytes once, its text once: no join, no split, no slice copies


def test_max_line_bounds_a_line_arriving_in_pieces() -> None:
    """A line past max_line raises StreamContractError before the rest of it is read."""
    reads = _long_chunk_reads(1024 * 1024, read_size=4096)
    consumed = 0

    def counting() -> object:
        nonlocal consumed
        for read in reads:
            consumed += 1
            yield read

    with pytest.raises(StreamContractError, match="longer than 100000 bytes"):
        list(chunks_from_sse(counting(), max_line=100_000))  # type: ignore[arg-type]
    assert consumed < len(reads) // 5
