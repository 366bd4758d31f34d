"""deltaflow: streamed LLM chat completions as a reactive pipeline of typed events."""

from importlib.metadata import version as _version

from deltaflow import dialects, errors, events, operators, recipes, sinks
from deltaflow.pipeline import (
    AsyncChatStream,
    AsyncChunkRequest,
    ChatStream,
    ChunkRequest,
    achunks_from_sse,
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
    "achunks_from_sse",
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

__version__ = _version("deltaflow")
