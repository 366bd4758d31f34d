"""Copies of a completion snapshot with values an operator adds: nothing upstream is changed.

``parse_partial_json`` and ``assemble_tool_calls`` add ``parsed`` / ``parsed_arguments`` to the
snapshots of the events they pass on. The snapshot they start from is the upstream event's, which
other subscribers of the same upstream (``share()``, ``publish()``) may read as well: each operator
copies the path down to what it changes (the completion, a choice, its message, a tool call),
proportional to the number of choices and calls, never to the text.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openai.types.chat import ParsedChatCompletion

__all__ = ["with_parsed_arguments", "with_parsed_content"]


def with_parsed_content(
    completion: ParsedChatCompletion[object], parsed: Mapping[int, Any]
) -> ParsedChatCompletion[object]:
    """``completion`` with ``message.parsed`` of each choice index in ``parsed`` replaced."""
    choices = []
    for choice in completion.choices:
        if choice.index in parsed:
            message = choice.message.model_copy(update={"parsed": parsed[choice.index]})
            choice = choice.model_copy(update={"message": message})  # noqa: PLW2901 - the copy replaces it
        choices.append(choice)
    return completion.model_copy(update={"choices": choices})


def with_parsed_arguments(
    completion: ParsedChatCompletion[object], parsed: Mapping[tuple[int, int | None], Any]
) -> ParsedChatCompletion[object]:
    """``completion`` with the ``parsed_arguments`` of each ``(choice index, call index)`` replaced."""
    choices = []
    for choice in completion.choices:
        calls = choice.message.tool_calls
        # a snapshot's tool calls keep their stream index (an extra field of openai's type)
        if calls and any((choice.index, getattr(call, "index", None)) in parsed for call in calls):
            copied = []
            for call in calls:
                key = (choice.index, getattr(call, "index", None))
                if key in parsed and call.type == "function":
                    function = call.function.model_copy(update={"parsed_arguments": parsed[key]})
                    call = call.model_copy(update={"function": function})  # noqa: PLW2901
                copied.append(call)
            message = choice.message.model_copy(update={"tool_calls": copied})
            choice = choice.model_copy(update={"message": message})  # noqa: PLW2901
        choices.append(choice)
    return completion.model_copy(update={"choices": choices})
