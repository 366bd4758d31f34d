"""deltaflow: streamed LLM chat completions as a reactive pipeline of typed events."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from deltaflow import dialects, errors, events, operators, recipes, responses, sinks
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
    "responses",
    "sinks",
    "stream",
]

_SUBMODULES = frozenset({"dialects", "errors", "events", "operators", "recipes", "responses", "sinks"})


def __getattr__(name: str) -> Any:
    # The public surface is imported on first use, not with the package: `deltaflow` the command imports
    # `deltaflow.cli` (so this package) before it can catch a Ctrl+C, and openai + pydantic take a second.
    # __version__ too: importlib.metadata alone costs `deltaflow --help` 60 ms.
    if name == "__version__":
        from importlib.metadata import version  # noqa: PLC0415

        globals()[name] = version("deltaflow")
        return globals()[name]
    if name in _SUBMODULES:
        return importlib.import_module(f"deltaflow.{name}")
    if name in __all__:
        value = getattr(importlib.import_module("deltaflow.pipeline"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'deltaflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
