"""deltaflow: streamed LLM chat completions as a reactive pipeline of typed events."""

from deltaflow import dialects, errors, events, operators, recipes, sinks
from deltaflow.pipeline import (
    AsyncChatStream,
    AsyncChunkRequest,
    ChatStream,
    ChunkRequest,
    astream,
    chunks_from_jsonl,
    chunks_from_sse,
    from_chunks,
    from_jsonl,
    from_sse,
    stream,
)

__all__ = [
    "AsyncChatStream",
    "AsyncChunkRequest",
    "ChatStream",
    "ChunkRequest",
    "astream",
    "chunks_from_jsonl",
    "chunks_from_sse",
    "dialects",
    "errors",
    "events",
    "from_chunks",
    "from_jsonl",
    "from_sse",
    "operators",
    "recipes",
    "sinks",
    "stream",
]

__version__ = "0.1.0"
