"""What a stream's normaliser remembers between chunks: one ``StreamState`` per subscription."""

from __future__ import annotations

import json
from typing import Any

from deltaflow._shown import shown

__all__ = ["StreamState", "ToolCalls", "Unrecognized"]

# a tool-call fragment's index, id, function object and function name
_Fragment = tuple[int | None, str | None, dict[str, Any] | None, str | None]


class Unrecognized(Exception):  # noqa: N818 - a signal between steps and the engine, never raised to users
    """A step met a payload it cannot read; the engine emits it as a ``RejectedChunk``."""


class ToolCalls:
    """The tool calls of one choice: provider indexes, ids and names mapped to OpenAI's dense indexes.

    OpenAI numbers a choice's tool calls 0, 1, 2... in the order they start, gives the first
    fragment the ``id``, ``type`` and ``function.name`` and later fragments only ``index`` and
    ``function.arguments``. Providers differ: no ``index`` at all (Gemini, Mistral, old Ollama),
    indexes starting at 1 or sparse (gateways in front of Anthropic), one index reused for a second
    call (relays in front of Gemini), ``"id": ""`` or ``"name": ""`` on every continuation
    (Qwen / DashScope, LM Studio, GLM on Mistral), the full id repeated on every fragment.
    """

    __slots__ = ("by_id", "by_index", "count", "current", "names")

    def __init__(self) -> None:
        self.by_index: dict[int, int] = {}
        self.by_id: dict[str, int] = {}
        self.names: dict[int, str] = {}
        self.count = 0
        self.current: int | None = None

    def conforms(self, index: object, call_id: object, name: object, kind: object) -> bool:
        """Whether a fragment is exactly what OpenAI sends next; pure, for the fast path."""
        if type(index) is not int:
            return False
        dense = self.by_index.get(index)
        if dense is None:
            return (
                index == self.count
                and type(call_id) is str
                and call_id != ""
                and type(name) is str
                and name != ""
                and kind is not None
            )
        return dense == index and call_id is None and name is None and kind is None

    def accept(self, index: int, call_id: object, name: object) -> None:
        """Record a fragment that ``conforms``, as ``resolve`` would have."""
        if index not in self.by_index:
            self._start(index, call_id if type(call_id) is str else None, name if type(name) is str else "")
        self.current = index

    def resolve(self, fragment: dict[str, Any]) -> bool:
        """Rewrite one fragment in place into OpenAI's shape; returns whether anything changed.

        Raises:
            Unrecognized: the fragment cannot be read (wrong types, or it continues no call).
        """
        index, call_id, function, name = _read_fragment(fragment)
        changed = _normalise_arguments(function)
        dense = self._find(index, call_id, name)
        if dense is None:
            if name is None:
                raise Unrecognized("a tool-call fragment that starts a call has no function name")
            dense = self._start(index, call_id, name)
            if fragment.get("type") is None:
                # Mistral sends whole calls without "type"
                fragment["type"] = "function"
                changed = True
            # Qwen's `"id": ""` or an empty name on a first fragment: absent, as OpenAI would
            if fragment.get("id") == "":
                del fragment["id"]
                changed = True
        else:
            # a continuation: OpenAI sends only index and arguments (Qwen repeats "type" and an
            # empty id, LM Studio an empty name, gateways the whole id)
            for key in ("id", "type"):
                if key in fragment:
                    del fragment[key]
                    changed = True
            if function is not None and "name" in function:
                del function["name"]
                changed = True
            if index is not None:
                self.by_index[index] = dense
        self.current = dense
        if index != dense:
            fragment["index"] = dense
            changed = True
        return changed

    def _find(self, index: int | None, call_id: str | None, name: str | None) -> int | None:
        """The dense index of the call a fragment continues, or None when it starts a new one."""
        if index is not None and index in self.by_index:
            dense = self.by_index[index]
            if call_id is not None and call_id not in self.by_id:
                # a new id under a used index: a relay reusing the index for a new call
                return None
            if call_id is None and name is not None and name != self.names[dense]:
                # another function under a used index and no id: a new call as well
                return None
            return dense
        if call_id is not None and call_id in self.by_id:
            # a known id: a gateway repeating the whole id on every fragment; under a new index
            # and with a name it is a new call that happens to reuse an id
            return self.by_id[call_id] if index is None or name is None else None
        if call_id is None and name is None:
            # Gemini / Mistral incremental calls: a continuation without (a known) index belongs
            # to the call still open
            return self.current
        return None

    def _start(self, index: int | None, call_id: str | None, name: str) -> int:
        dense = self.count
        self.count += 1
        if index is not None:
            self.by_index[index] = dense
        if call_id is not None:
            self.by_id[call_id] = dense
        self.names[dense] = name
        self.current = dense
        return dense


class StreamState:
    """Per-stream memory of the normalisation steps, plus the scratch of the chunk being rewritten.

    Attributes:
        changed: set by a step that modified the chunk being rewritten.
        drop: set by a step that holds the chunk back instead of emitting it.
        force: set by a step that must see the next chunk even if it looks conformant.
        after: chunk payloads a step wants emitted right after the current one.
        started: whether a chunk with choices (or anything besides Azure's prompt filter) went out.
        roles: the choice indexes whose ``role`` was already sent.
        tools: the tool calls of each choice.
        held_usage: cumulative usage held back until the stream ends (Perplexity, vLLM).
        sent_usage: the usage already emitted, if any.
        held_fields: top-level fields held from Azure's ``prompt_filter_results`` chunk.
        held_chunk: that chunk itself, released as it came if nothing follows it.
        reasoning_details: OpenRouter ``reasoning_details`` merged per choice, not yet emitted.
        base: ``id``, ``object``, ``created``, ``model`` of the latest chunk, for chunks we create.
    """

    __slots__ = (
        "after",
        "base",
        "changed",
        "drop",
        "force",
        "held_chunk",
        "held_fields",
        "held_usage",
        "reasoning_details",
        "roles",
        "sent_usage",
        "started",
        "tools",
    )

    def __init__(self) -> None:
        self.changed = False
        self.drop = False
        self.force = False
        self.after: list[dict[str, Any]] = []
        self.started = False
        self.roles: set[int] = set()
        self.tools: dict[int, ToolCalls] = {}
        self.held_usage: dict[str, Any] | None = None
        self.sent_usage: dict[str, Any] | None = None
        self.held_fields: dict[str, Any] | None = None
        self.held_chunk: object = None
        self.reasoning_details: dict[int, list[Any]] = {}
        self.base: dict[str, Any] = {}

    def tool_calls(self, choice_index: int) -> ToolCalls:
        """The tool-call tracker of a choice, created on first use."""
        tracker = self.tools.get(choice_index)
        if tracker is None:
            tracker = self.tools[choice_index] = ToolCalls()
        return tracker

    def new_chunk(self, choices: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
        """A chunk payload of our own making, with the stream's id, model and creation time."""
        return {
            "id": self.base.get("id", ""),
            "object": "chat.completion.chunk",
            "created": self.base.get("created", 0),
            "model": self.base.get("model", ""),
            "choices": choices,
            **fields,
        }


def _read_fragment(
    fragment: dict[str, Any],
) -> tuple[int | None, str | None, dict[str, Any] | None, str | None]:
    """A fragment's index, id, function and name, empty strings read as absent.

    Raises:
        Unrecognized: a value of the wrong type.
    """
    index = fragment.get("index")
    if index is not None and (type(index) is not int or index < 0):
        raise Unrecognized(f"tool call index must be a non-negative integer, got {shown(index)}")
    call_id = fragment.get("id")
    if call_id is not None and type(call_id) is not str:
        raise Unrecognized(f"tool call id must be a string, got {shown(call_id)}")
    function = fragment.get("function")
    if function is not None and not isinstance(function, dict):
        raise Unrecognized(f"tool call function must be an object, got {shown(function)}")
    name = function.get("name") if function is not None else None
    if name is not None and type(name) is not str:
        raise Unrecognized(f"tool call name must be a string, got {shown(name)}")
    # Qwen / DashScope repeat "id": "" and LM Studio / GLM on Mistral "name": "" on continuations
    return index, call_id or None, function, name or None


def _normalise_arguments(function: dict[str, Any] | None) -> bool:
    """Arguments as JSON text; returns whether they had to be serialised.

    Raises:
        Unrecognized: arguments that are neither text nor a JSON value.
    """
    arguments = function.get("arguments") if function is not None else None
    if function is None or arguments is None or type(arguments) is str:
        return False
    if not isinstance(arguments, dict | list):
        raise Unrecognized(f"tool call arguments must be a JSON string, got {shown(arguments)}")
    # Ollama's native shape sends arguments as an object, not as JSON text
    function["arguments"] = json.dumps(arguments, ensure_ascii=False)
    return True
