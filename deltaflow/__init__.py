"""deltaflow: streamed LLM chat completions as a reactive pipeline of typed events."""

from deltaflow import errors, events, operators
from deltaflow.pipeline import (
    AsyncChatStream,
    ChatStream,
    chunks_from_jsonl,
    chunks_from_sse,
    from_chunks,
    from_jsonl,
    from_sse,
)

__all__ = [
    "AsyncChatStream",
    "ChatStream",
    "chunks_from_jsonl",
    "chunks_from_sse",
    "errors",
    "events",
    "from_chunks",
    "from_jsonl",
    "from_sse",
    "operators",
]

__version__ = "0.1.0"
