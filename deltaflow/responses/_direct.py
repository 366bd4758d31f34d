"""deltaflow's delta events built straight from a Responses stream's deltas, ahead of the chat view.

Most Responses events are text, reasoning or argument deltas, and the chat chain's whole answer to the
chunk of one of them is a ``chunk`` event (hidden when openai's events are handed out) and one
``content.delta`` / ``reasoning.delta`` / ``tool_calls.function.arguments.delta``. ``DirectEvents`` builds
that event itself, as the chain would (its lazy snapshot the chat field so far), and keeps the text as
unsent: the stream later hands the chain one chunk per run of such deltas (``take_unsent``), before
anything else reaches it, so that every snapshot and the final completion are what the chunks one by one
would have made, and drops what the chain says of them (said already).

A delta goes direct only where the chain would say nothing else of it: for text and arguments, no
reasoning left open (their first piece closes it: ``reasoning.done``); for arguments, the call the chain
is on (another would close that one: its ``.done``) and no tool whose arguments the chain parses. To know
that, it follows what every chunk tells the chat view (``track``), in the order the chain reads it.
"""

from __future__ import annotations

import threading
from typing import Any

from deltaflow._lazy import build
from deltaflow.events import BaseEvent, ContentDelta, ReasoningDelta, ToolCallDelta
from deltaflow.state._buffers import TextBuffer

__all__ = ["DirectEvents"]


class DirectEvents:
    """The delta events of one response's choice built directly (see the module's docstring).

    Attributes:
        on: build events directly; turned off for good when something starts reading every chunk.
        events: the events built for the last Responses event (cleared by the reader).
    """

    def __init__(self, *, arguments: bool) -> None:
        self.on = True
        self.events: list[BaseEvent] = []
        self._arguments = arguments
        """Arguments may go direct: no tool's arguments are parsed by the chain."""
        self._content = TextBuffer(0)
        self._reasoning = TextBuffer(0)
        """The chat message's content and reasoning so far, unsent parts included."""
        self._calls: dict[int, tuple[TextBuffer, TextBuffer]] = {}
        """The chat view's tool calls, name and arguments, by index."""
        self._current_call: int | None = None
        """The tool call the chat view's last fragment was for."""
        self._reasoning_state: str | None = None
        """The chat view's reasoning: None (none yet), ``open``, or ``done`` (closed, for good)."""
        self._unsent: list[tuple[str | int, list[str]]] = []
        """The runs of text no chunk has brought the chain yet, in order: (chat field, or a tool call's
        index for its arguments; the parts)."""
        self._lock = threading.RLock()
        """Taken while a snapshot is joined (another thread may read an event's)."""

    def track(self, delta: dict[str, Any]) -> None:
        """A chunk went to the chat view with this delta."""
        reasoning = delta.get("reasoning_content")
        if type(reasoning) is str:
            self._reasoning.append(reasoning, 0)
            self._reasoning_state = self._reasoning_state or "open"
        content = delta.get("content")
        if type(content) is str:
            self._content.append(content, 0)
        fragments = delta.get("tool_calls")
        if content or delta.get("refusal") or fragments:
            self._close_reasoning()
        for fragment in fragments or ():
            index, function = fragment["index"], fragment.get("function") or {}
            name, arguments = function.get("name"), function.get("arguments")
            call = self._calls.get(index)
            if call is None:
                if type(name) is not str:
                    continue  # the chain refuses a call that starts without a name
                call = self._calls[index] = (TextBuffer(0), TextBuffer(0))
            if type(name) is str:
                call[0].append(name, 0)
            if type(arguments) is str:
                call[1].append(arguments, 0)
            self._current_call = index

    def _close_reasoning(self) -> None:
        if self._reasoning_state == "open":
            self._reasoning_state = "done"

    def content(self, text: str) -> bool:
        """Its ``content.delta`` for a text delta, if it may go direct."""
        if self._reasoning_state == "open":
            return False
        fields = {"type": "content.delta", "choice_index": 0, "delta": text, "parsed": None}
        self._build(ContentDelta, fields, text, "content", self._content, "snapshot")
        return True

    def reasoning(self, text: str) -> bool:
        """Its ``reasoning.delta`` for a reasoning delta (always direct)."""
        fields = {"type": "reasoning.delta", "choice_index": 0, "delta": text}
        self._build(ReasoningDelta, fields, text, "reasoning_content", self._reasoning, "snapshot")
        self._reasoning_state = self._reasoning_state or "open"
        return True

    def arguments(self, index: int, text: str) -> bool:
        """Its ``tool_calls.function.arguments.delta`` for arguments of call ``index``, if it goes direct."""
        call = self._calls.get(index)
        if (
            call is None
            or not self._arguments
            or self._current_call != index
            or self._reasoning_state == "open"
        ):
            return False
        name, arguments = call
        fields = {
            "type": "tool_calls.function.arguments.delta",
            "choice_index": 0,
            "name": name.text(),
            "index": index,
            "arguments_delta": text,
            "parsed_arguments": None,
        }
        self._build(ToolCallDelta, fields, text, index, arguments, "arguments")
        return True

    def _build(  # noqa: PLR0917 - one private call site per kind, read side by side
        self,
        cls: type[BaseEvent],
        fields: dict[str, Any],
        text: str,
        key: str | int,
        buffer: TextBuffer,
        lazy: str,
    ) -> None:
        """The event as the chain builds it (``lazy``: the chat field so far); its text kept unsent."""
        count = buffer.append(text, 0)
        unsent = self._unsent
        if unsent and unsent[-1][0] == key:
            unsent[-1][1].append(text)
        else:
            unsent.append((key, [text]))
        self.events.append(build(cls, fields, {lazy: (buffer.text, count)}, self._lock))

    def take_unsent(self) -> list[dict[str, Any]]:
        """The chat deltas that bring the chain up to the events built: one per run of deltas, once."""
        deltas = [
            {key: "".join(parts)}
            if type(key) is str
            else {"tool_calls": [{"index": key, "function": {"arguments": "".join(parts)}}]}
            for key, parts in self._unsent
        ]
        self._unsent.clear()
        return deltas
