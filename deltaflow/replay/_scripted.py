"""OpenAI-conformant chunk streams built from a short script (content, reasoning, tool calls)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["scripted_chunks"]

# a fixed timestamp keeps scripted streams byte-identical from run to run
_CREATED = 1_700_000_000
_PROMPT_TOKENS = 8


def _pieces(text: str | None, size: int) -> list[str]:
    return [] if not text else [text[i : i + size] for i in range(0, len(text), size)]


def _digest(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def scripted_chunks(
    content: str | None = "Hello world",
    *,
    reasoning: str | None = None,
    tool_calls: Sequence[Mapping[str, Any]] = (),
    refusal: str | None = None,
    finish_reason: str | None = None,
    model: str = "replay-1",
    usage: bool = True,
    chunk_size: int = 4,
) -> list[dict[str, Any]]:
    """Build the chunks OpenAI would stream for this script; ids are derived from the script.

    Order: a role chunk, ``reasoning`` as ``delta.reasoning_content`` pieces, ``content`` pieces,
    ``refusal`` pieces, each tool call (index, id, type and name on its first fragment, then argument
    fragments), a finish chunk, and a usage chunk with ``choices: []`` when ``usage`` is on.

    Args:
        content: the message text, or None for a message without content.
        reasoning: reasoning text sent before the content (DeepSeek-style ``reasoning_content``).
        tool_calls: ``{"name": ..., "arguments": dict | str}`` each, optionally with an ``"id"``.
        refusal: refusal text.
        finish_reason: defaults to ``tool_calls`` when there are tool calls, else ``stop``.
        model: the ``model`` field of every chunk.
        usage: whether to end with a usage chunk.
        chunk_size: characters per text or argument fragment.

    Raises:
        ValueError: ``chunk_size`` is not positive.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    calls = [dict(call) for call in tool_calls]
    digest = _digest(content, reasoning, calls, refusal, finish_reason, model, chunk_size)
    completion_id = f"chatcmpl-replay-{digest[:24]}"

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": _CREATED,
            "model": model,
            "choices": [choice],
        }

    chunks = [chunk({"role": "assistant", "content": None if content is None else "", "refusal": None})]
    reasoning_pieces = _pieces(reasoning, chunk_size)
    chunks += [chunk({"reasoning_content": piece}) for piece in reasoning_pieces]
    chunks += [chunk({"content": piece}) for piece in _pieces(content, chunk_size)]
    chunks += [chunk({"refusal": piece}) for piece in _pieces(refusal, chunk_size)]
    for index, call in enumerate(tool_calls):
        arguments = call.get("arguments", {})
        text = arguments if isinstance(arguments, str) else json.dumps(arguments, ensure_ascii=False)
        call_id = call.get("id") or f"call_{_digest(completion_id, index)[:24]}"
        first = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": call["name"], "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [first]}))
        chunks += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            for piece in _pieces(text, chunk_size)
        ]
    chunks.append(chunk({}, finish_reason or ("tool_calls" if tool_calls else "stop")))
    if usage:
        completion_tokens = len(chunks) - 2
        chunks.append(
            {
                **{key: chunks[0][key] for key in ("id", "object", "created", "model")},
                "choices": [],
                "usage": {
                    "prompt_tokens": _PROMPT_TOKENS,
                    "completion_tokens": completion_tokens,
                    "total_tokens": _PROMPT_TOKENS + completion_tokens,
                    "completion_tokens_details": {"reasoning_tokens": len(reasoning_pieces)},
                },
            }
        )
    return chunks
