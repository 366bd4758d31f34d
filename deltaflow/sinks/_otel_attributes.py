"""What a stream showed, as GenAI span attributes: response, usage, finish reasons, content (opt-in)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from openai.types import CompletionUsage
from openai.types.chat import ParsedChatCompletion

from deltaflow.sinks._clip import clip
from deltaflow.sinks._redact import redact_text

__all__ = [
    "ERROR_FINISH",
    "finish_reasons",
    "output_messages",
    "server_attributes",
    "usage_attributes",
]

# the conventions' value for a choice whose finish reason was expected but never came
ERROR_FINISH = "error"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def server_attributes(base_url: str) -> dict[str, Any]:
    """``server.address`` and ``server.port`` of ``base_url`` (the scheme's port when none is given)."""
    parts = urlsplit(base_url)
    if not parts.hostname:
        return {}
    attributes: dict[str, Any] = {"server.address": parts.hostname}
    port = parts.port or _DEFAULT_PORTS.get(parts.scheme)
    if port is not None:
        attributes["server.port"] = port
    return attributes


def usage_attributes(usage: CompletionUsage) -> dict[str, int]:
    """The ``gen_ai.usage.*`` counts the provider reported; a count it left out is left out."""
    counts = {
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.completion_tokens,
    }
    prompt_details = usage.prompt_tokens_details
    if prompt_details is not None and prompt_details.cached_tokens is not None:
        counts["gen_ai.usage.cache_read.input_tokens"] = prompt_details.cached_tokens
    completion_details = usage.completion_tokens_details
    if completion_details is not None and completion_details.reasoning_tokens is not None:
        counts["gen_ai.usage.reasoning.output_tokens"] = completion_details.reasoning_tokens
    # a lenient provider may send null for a count; an attribute cannot hold None
    return {name: count for name, count in counts.items() if isinstance(count, int)}


def finish_reasons(
    completion: ParsedChatCompletion[object] | None, reported: Mapping[int, str]
) -> tuple[str, ...]:
    """One finish reason per choice, in order; ``error`` where none arrived (the conventions' rule).

    The choices are those of ``completion`` when there is one, else those a ``choice.done`` named;
    ``reported`` (choice index to reason, from ``choice.done`` events) wins over the completion.
    """
    reasons: dict[int, str] = {}
    if completion is not None:
        for choice in completion.choices:
            if choice.finish_reason:
                reasons[choice.index] = choice.finish_reason
    reasons.update(reported)
    count = max(
        (*reasons, *(choice.index for choice in (completion.choices if completion else ()))), default=-1
    )
    return tuple(reasons.get(index, ERROR_FINISH) for index in range(count + 1))


def output_messages(completion: ParsedChatCompletion[object], max_content: int) -> str:
    """``gen_ai.output.messages``: each choice's text, reasoning and tool calls, clipped and scrubbed.

    The JSON follows the conventions' output-messages schema; every text is cut to ``max_content``
    characters and run through ``redact_text``, so an API key pasted into an answer never leaves.
    """
    messages = []
    for choice in completion.choices:
        message = choice.message
        parts: list[dict[str, Any]] = []
        reasoning = getattr(message, "reasoning_content", None) or getattr(message, "reasoning", None)
        if isinstance(reasoning, str) and reasoning:
            parts.append({"type": "reasoning", "content": _clip(reasoning, max_content)})
        if message.content:
            parts.append({"type": "text", "content": _clip(message.content, max_content)})
        if message.refusal:
            parts.append({"type": "text", "content": _clip(message.refusal, max_content)})
        for call in message.tool_calls or ():
            function = getattr(call, "function", None)
            if function is None:
                continue
            parts.append(
                {
                    "type": "tool_call",
                    "id": call.id,
                    "name": function.name,
                    "arguments": _clip(function.arguments or "", max_content),
                }
            )
        messages.append(
            {"role": "assistant", "parts": parts, "finish_reason": choice.finish_reason or ERROR_FINISH}
        )
    return json.dumps(messages, ensure_ascii=False)


def _clip(text: str, limit: int) -> str:
    # scrubbed before the cut: a key cut in half would no longer look like one
    text = redact_text(text)
    return clip(text, limit)
