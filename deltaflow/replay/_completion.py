"""Folding a scenario's chunks into the ``chat.completion`` object a non-streaming request gets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

__all__ = ["assemble_completion"]


def assemble_completion(chunks: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Accumulate chunks with openai's own ``ChatCompletionStreamState``.

    Raises:
        ValueError: there are no chunks, or openai's accumulator rejects them (provider quirks such as
            tool calls without ``index`` or choices without ``delta``).
    """
    state: ChatCompletionStreamState[object] = ChatCompletionStreamState()
    seen = False
    try:
        for chunk in chunks:
            # construct (not validate), as the client does: recordings carry fields the types lack
            state.handle_chunk(ChatCompletionChunk.construct(**chunk))
            seen = True
        completion: dict[str, Any] | None = state.current_completion_snapshot.to_dict() if seen else None
    except (TypeError, IndexError, AttributeError, KeyError, ValueError) as exc:
        raise ValueError(f"openai's accumulator rejected the chunks: {exc!r}") from exc
    if completion is None:
        raise ValueError("the scenario has no chunks to assemble")
    for choice in completion.get("choices", []):
        message = choice.get("message", {})
        # the snapshot's parse-helper fields and delta indexes are not part of a ChatCompletion
        message.pop("parsed", None)
        for call in message.get("tool_calls") or []:
            call.pop("index", None)
            call.get("function", {}).pop("parsed_arguments", None)
    return completion
