"""Operators that add values to the snapshots they pass on: the copies they make, and their shared stage.

``parse_partial_json`` and ``assemble_tool_calls`` add ``parsed`` / ``parsed_arguments`` to the
snapshots of the events they pass on. The snapshot they start from is the upstream event's, which
other subscribers of the same upstream (``share()``, ``publish()``) may read as well: each operator
copies the path down to what it changes (the completion, a choice, its message, a tool call),
proportional to the number of choices and calls, never to the text. The events that carry the
snapshots are refined where they were made in the same fused chain, else copied
(``Stage.refine``: the one rule of ``operators/_stage.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from openai.types.chat import ParsedChatCompletion
from reactivex import abc

from deltaflow._lazy import Thunk, compute
from deltaflow.events import ChunkReceived, CompletionDone
from deltaflow.operators._stage import Stage

__all__ = ["SnapshotAdder", "with_parsed_arguments", "with_parsed_content"]


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


class SnapshotAdder(Stage):
    """A stage that adds values of its own to the snapshots it passes on, each as of its chunk.

    It numbers the ``chunk`` events that pass it (``chunks``: the number of the chunk being
    handled), passes on ``chunk`` and ``completion.done`` events whose snapshots show what
    ``with_added`` adds (computed when read), and adds the same to the completion an error carries
    when it passes.
    """

    __slots__ = ("chunks", "latest_chunk")

    def __init__(self, observer: abc.ObserverBase[Any]) -> None:
        super().__init__(observer)
        self.chunks = 0
        self.latest_chunk: ChunkReceived | None = None
        """The last ``chunk`` event passed on: its snapshot is the completion an error reports."""

    def with_added(
        self, completion: ParsedChatCompletion[object], chunk: int
    ) -> ParsedChatCompletion[object]:
        """``completion`` with this stage's values as of chunk number ``chunk`` (a copy where they differ)."""
        raise NotImplementedError

    def adds_anything(self) -> bool:
        """Whether this stage has anything to add yet."""
        raise NotImplementedError

    def pass_chunk(self, event: ChunkReceived) -> None:
        """Number a ``chunk`` event and pass it on, its snapshot showing this stage's values."""
        self.chunks = chunk = self.chunks + 1
        event = self.refine(event, "snapshot", self._added_to, chunk)
        self.latest_chunk = event
        self.emit(event)

    def pass_completion(self, event: CompletionDone) -> None:
        """Pass ``completion.done`` on, its completion showing this stage's final values."""
        self.emit(self.refine(event, "completion", self._added_to, None))

    def latest_completion(self) -> ParsedChatCompletion[object] | None:
        """The completion as of the last chunk passed on, for an error this stage reports."""
        return self.latest_chunk.snapshot if self.latest_chunk is not None else None

    def on_error(self, error: Exception) -> None:
        if not self.stopped and self.adds_anything():
            completion = getattr(error, "completion", None)
            if isinstance(completion, ParsedChatCompletion):
                error.completion = self.with_added(completion, self.chunks)  # type: ignore[attr-defined]
        super().on_error(error)

    def _added_to(self, of: tuple[Thunk, int | None]) -> ParsedChatCompletion[object]:
        upstream, chunk = of
        return self.with_added(compute(upstream), self.chunks if chunk is None else chunk)
