"""Building chat-completion chunks for tests, in the shape OpenAI sends them."""

from __future__ import annotations

from typing import Any

from openai.types.chat import ChatCompletionChunk


def chunk(
    *choices: dict[str, Any], usage: dict[str, int] | None = None, **fields: Any
) -> ChatCompletionChunk:
    """A chunk with the given choices (each a dict with at least ``delta``)."""
    return ChatCompletionChunk.model_validate(
        {
            "id": "chatcmpl-test",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "gpt-test",
            "choices": [
                {"index": 0, "finish_reason": None, "logprobs": None, **choice} for choice in choices
            ],
            "usage": usage,
            **fields,
        }
    )


def text_stream(*parts: str, finish_reason: str = "stop", index: int = 0) -> list[ChatCompletionChunk]:
    """A content stream: a role chunk, one chunk per part, a finish chunk, a usage chunk."""
    return [
        chunk({"index": index, "delta": {"role": "assistant", "content": ""}}),
        *(chunk({"index": index, "delta": {"content": part}}) for part in parts),
        chunk({"index": index, "delta": {}, "finish_reason": finish_reason}),
        chunk(usage={"prompt_tokens": 3, "completion_tokens": len(parts), "total_tokens": 3 + len(parts)}),
    ]


def tool_call_stream(name: str, *argument_parts: str, call_id: str = "call_1") -> list[ChatCompletionChunk]:
    """One tool call whose arguments arrive in the given parts, then the tool_calls finish."""
    first = {"index": 0, "id": call_id, "type": "function", "function": {"name": name, "arguments": ""}}
    return [
        chunk({"delta": {"role": "assistant", "content": None, "tool_calls": [first]}}),
        *(
            chunk({"delta": {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}})
            for part in argument_parts
        ),
        chunk({"delta": {}, "finish_reason": "tool_calls"}),
    ]
