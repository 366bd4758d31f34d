"""The running state of one streamed completion, and the events each chunk produces.

``CompletionState.handle_chunk`` does work proportional to the chunk: text is appended as parts,
lists are extended, nothing already accumulated is copied or re-serialised. Snapshots (openai's
``ParsedChatCompletion``) are built only when somebody reads one, as of the chunk they ask for.

Event order and the conditions for each event follow openai-python's ``ChatCompletionStreamState``
exactly, so that the events of openai's types come out the same on an OpenAI-conformant stream.
"""

from __future__ import annotations

import copy
import threading
from functools import partial
from typing import Any

from openai.types.chat import ChatCompletionChunk, ParsedChatCompletion, ParsedFunctionToolCall
from openai.types.chat.chat_completion_chunk import Choice, ChoiceDelta, ChoiceDeltaToolCall
from openai.types.completion_usage import CompletionUsage

from deltaflow._lazy import Thunk, build
from deltaflow._openai_compat import construct
from deltaflow._shown import shown
from deltaflow.errors import StreamContractError
from deltaflow.events import (
    BaseEvent,
    ChoiceDone,
    ChunkReceived,
    ContentDelta,
    ContentDone,
    LogprobsContentDelta,
    LogprobsContentDone,
    LogprobsRefusalDelta,
    LogprobsRefusalDone,
    ReasoningDelta,
    ReasoningDone,
    RefusalDelta,
    RefusalDone,
    ToolCallDelta,
    ToolCallDone,
    UsageReported,
)
from deltaflow.state._buffers import History, TextBuffer, TrackedList

__all__ = ["LATEST", "ChoiceState", "CompletionState", "ToolCallState"]

# the field OpenAI-compatible reasoning models use; dialects move other spellings here
REASONING_FIELD = "reasoning_content"
_KNOWN_DELTA_FIELDS = frozenset({"content", "refusal", "role", "tool_calls"})
_CONTENT_ONLY = frozenset({"content"})

LATEST = 2**62
"""A chunk number later than any real one: "as it stands now"."""


class ToolCallState:
    """One tool call of one choice, accumulated from its fragments."""

    __slots__ = (
        "arguments",
        "choice_index",
        "created",
        "extra",
        "id",
        "index",
        "name",
        "type",
    )

    def __init__(self, index: int, choice_index: int, created: int) -> None:
        self.index = index
        self.choice_index = choice_index
        self.created = created
        # rarely changing fields, remembered per chunk so a late-read snapshot shows its own moment
        self.id: History[str] = History()
        self.type: History[str] = History()
        self.name = TextBuffer(created)
        self.arguments = TextBuffer(created)
        self.extra: History[dict[str, Any]] = History()

    def to_dict(self, seq: int) -> dict[str, Any]:
        """The tool call in openai's snapshot shape, as of chunk ``seq``."""
        return {
            "index": self.index,
            "id": self.id.at(seq),
            "type": self.type.at(seq) or "function",
            **(self.extra.at(seq) or {}),
            "function": {
                "name": self.name.text_at(seq) or "",
                "arguments": self.arguments.text_at(seq) or "",
                # assemble_tool_calls fills it in its own copies of the snapshot
                "parsed_arguments": None,
            },
        }

    def to_model(self) -> ParsedFunctionToolCall:
        """The tool call as openai's ``ParsedFunctionToolCall``, as it stands now."""
        return construct(ParsedFunctionToolCall, self.to_dict(LATEST))


class ChoiceState:
    """One choice: its message parts, tool calls, logprobs, finish reason and done flags."""

    __slots__ = (
        "content",
        "content_done",
        "created",
        "current_tool_call",
        "done_tool_calls",
        "extra",
        "finish_reason",
        "finished",
        "index",
        "initial",
        "logprobs_content",
        "logprobs_content_done",
        "logprobs_created",
        "logprobs_refusal",
        "logprobs_refusal_done",
        "message_extra",
        "message_extra_at",
        "reasoning",
        "reasoning_done",
        "refusal",
        "refusal_done",
        "role",
        "tool_calls",
    )

    def __init__(self, choice: Choice, seq: int) -> None:
        self.index = choice.index
        self.created = seq
        # openai keeps the choice's own fields (and extras such as Azure's content_filter_results)
        # from the chunk that started it
        self.initial: dict[str, Any] = {"index": choice.index, "logprobs": None, **(choice.model_extra or {})}
        self.role: History[str] = History()
        self.content: TextBuffer | None = None
        self.refusal: TextBuffer | None = None
        self.reasoning: TextBuffer | None = None
        self.tool_calls: dict[int, ToolCallState] = {}
        self.message_extra: dict[str, Any] = {}
        self.message_extra_at: History[dict[str, Any]] = History()
        """Copies of ``message_extra`` as it changed, for snapshots as of a chunk (rare fields)."""
        self.logprobs_created: int | None = None
        self.logprobs_content: TrackedList[Any] | None = None
        self.logprobs_refusal: TrackedList[Any] | None = None
        self.finish_reason: History[str] = History()
        self.finished = False
        self.content_done = False
        self.refusal_done = False
        self.reasoning_done = False
        self.logprobs_content_done = False
        self.logprobs_refusal_done = False
        self.done_tool_calls: set[int] = set()
        self.current_tool_call: int | None = None

    def to_dict(self, seq: int) -> dict[str, Any]:
        """The choice in openai's snapshot shape, as of chunk ``seq``."""
        message: dict[str, Any] = {"role": self.role.at(seq) or "assistant"}
        message["content"] = self.content.text_at(seq) if self.content is not None else None
        message["refusal"] = self.refusal.text_at(seq) if self.refusal is not None else None
        message.update(self.message_extra_at.at(seq) or {})
        if self.reasoning is not None and seq >= self.reasoning.created:
            message[REASONING_FIELD] = self.reasoning.text_at(seq)
        tool_calls = [call.to_dict(seq) for _, call in sorted(self.tool_calls.items()) if call.created <= seq]
        if tool_calls:
            message["tool_calls"] = tool_calls
        # parse_partial_json fills it in its own copies of the snapshot
        message["parsed"] = None
        choice = {**self.initial, "finish_reason": self.finish_reason.at(seq), "message": message}
        if self.logprobs_created is not None and self.logprobs_created <= seq:
            choice["logprobs"] = {
                "content": self.logprobs_content.at(seq) if self.logprobs_content is not None else None,
                "refusal": self.logprobs_refusal.at(seq) if self.logprobs_refusal is not None else None,
            }
        return choice


class CompletionState:
    """The accumulated completion: handle chunks in order, read snapshots at any point."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        """Held while a chunk runs through the chain and while a lazy field is computed: sinks on
        other threads (``fan_out``'s queued policies) read snapshots as the stream appends."""
        self.seq = 0
        self.base: dict[str, Any] | None = None
        self.choices: dict[int, ChoiceState] = {}
        self.usage: History[Any] = History()
        self.system_fingerprint: History[str] = History()
        self.moderation: History[Any] = History()
        self._fingerprint: str | None = None

    @property
    def started(self) -> bool:
        """Whether any chunk has arrived."""
        return self.base is not None

    # -- reading -------------------------------------------------------------------------------

    def completion_at(self, seq: int) -> ParsedChatCompletion[object]:
        """The completion as openai's snapshot type, as of chunk ``seq``."""
        with self.lock:
            return self._completion_at(seq)

    def _completion_at(self, seq: int) -> ParsedChatCompletion[object]:
        if self.base is None:
            raise StreamContractError("no chunk has arrived yet")
        usage = self.usage.at(seq)
        moderation = self.moderation.at(seq)
        data: dict[str, Any] = {
            **self.base,
            "object": "chat.completion",
            "system_fingerprint": self.system_fingerprint.at(seq),
            "usage": usage.to_dict(warnings=False) if usage is not None else None,
            "choices": [
                choice.to_dict(seq) for _, choice in sorted(self.choices.items()) if choice.created <= seq
            ],
        }
        if moderation is not None:
            data["moderation"] = moderation
        return construct(ParsedChatCompletion[object], data)

    def current(self) -> ParsedChatCompletion[object]:
        """The completion as it stands now."""
        return self.completion_at(self.seq)

    # -- writing -------------------------------------------------------------------------------

    def handle_chunk(self, chunk: ChatCompletionChunk) -> list[BaseEvent]:
        """Accumulate one chunk; returns the events it produced, in openai's order.

        A chunk that cannot be read raises (``StreamContractError``, or what its values cause) and
        leaves the snapshot as it was before that chunk; the stream ends there, as ``accumulate``
        ends it: the state takes no further chunk.
        """
        choices = getattr(chunk, "choices", None)
        if type(choices) is not list:
            raise StreamContractError(f"not a chat completion chunk: {type(chunk).__name__}")
        self.seq = seq = self.seq + 1
        try:
            if self.base is None:
                self.base = _base_fields(chunk)
            events: list[BaseEvent] = [
                build(
                    ChunkReceived,
                    {"type": "chunk", "chunk": chunk},
                    {"snapshot": (self.completion_at, seq)},
                    self.lock,
                )
            ]
            for choice in choices:
                self._handle_choice(choice, seq, events)
            usage = chunk.usage
            if usage is not None:
                if not isinstance(usage, CompletionUsage):
                    # stored, it would break every snapshot after it (and sinks reading the event)
                    raise StreamContractError(f"usage must be an object, got {shown(usage)}")  # noqa: TRY301
                self.usage.set(usage, seq)
                events.append(build(UsageReported, {"type": "usage", "usage": usage}))
            fingerprint = chunk.system_fingerprint
            if fingerprint is not None and fingerprint != self._fingerprint:
                self._fingerprint = fingerprint
                self.system_fingerprint.set(fingerprint, seq)
            moderation = getattr(chunk, "moderation", None)
            if moderation is not None:
                self.moderation.set(moderation.to_dict(), seq)
        except BaseException:
            # a chunk that cannot be read is no part of the snapshot: what it stamped before it
            # failed lies past `seq`, and the snapshot is what came before it
            self.seq = seq - 1
            raise
        return events

    def _handle_choice(self, choice: Choice, seq: int, events: list[BaseEvent]) -> None:
        delta = choice.delta
        index = choice.index
        state = self.choices.get(index) if type(index) is int else None
        if (
            state is not None
            and type(delta) is ChoiceDelta
            and delta.__pydantic_fields_set__ == _CONTENT_ONLY
            and not delta.__pydantic_extra__  # a dialect may have moved reasoning here
            and choice.logprobs is None
            and choice.finish_reason is None
            and not state.finished
            and type(content := delta.content) is str
        ):
            # most chunks: more text for a choice already open, nothing else
            self._append_content(state, content, seq, events)
            return
        self._handle_any_choice(choice, seq, events)

    def _handle_any_choice(self, choice: Choice, seq: int, events: list[BaseEvent]) -> None:
        index = choice.index
        if type(index) is not int or index < 0:
            raise StreamContractError(f"choice index must be a non-negative integer, got {index!r}")
        delta = choice.delta
        if not isinstance(delta, ChoiceDelta):
            raise StreamContractError(f"choice {index} has no delta")
        state = self.choices.get(index)
        if state is None:
            state = self.choices[index] = ChoiceState(choice, seq)

        if delta.role is not None:
            state.role.set(delta.role, seq)
        extra = delta.__pydantic_extra__
        if extra:
            self._handle_extra(state, extra, seq, events)
        content = delta.content
        if content is not None:
            self._handle_content(state, content, seq, events)
        refusal = delta.refusal
        if refusal is not None:
            if type(refusal) is not str:
                raise StreamContractError(f"choice {index}: refusal must be a string, got {refusal!r}")
            if refusal:
                self._close_reasoning(state, events)
            if state.refusal is None:
                state.refusal = TextBuffer(seq)
            count = state.refusal.append(refusal, seq)
            events.append(
                build(
                    RefusalDelta,
                    {"type": "refusal.delta", "choice_index": index, "delta": refusal},
                    {"snapshot": partial(state.refusal.text, count)},
                    self.lock,
                )
            )
        if delta.tool_calls:
            self._close_reasoning(state, events)
            for fragment in delta.tool_calls:
                self._handle_tool_fragment(state, fragment, seq, events)
        if choice.logprobs is not None:
            self._handle_logprobs(state, choice, seq, events)
        if delta.function_call is not None:
            _merge(state.message_extra, {"function_call": delta.function_call.to_dict()})
            state.message_extra_at.set(copy.deepcopy(state.message_extra), seq)

        finish_reason = choice.finish_reason
        if finish_reason:
            state.finish_reason.set(finish_reason, seq)
        if state.finish_reason.values or delta.tool_calls:
            self._done_events(state, delta, events)
        if finish_reason and not state.finished:
            state.finished = True
            events.append(
                build(
                    ChoiceDone,
                    {"type": "choice.done", "choice_index": index, "finish_reason": finish_reason},
                )
            )

    def _handle_content(self, state: ChoiceState, content: str, seq: int, events: list[BaseEvent]) -> None:
        if type(content) is not str:
            raise StreamContractError(f"choice {state.index}: content must be a string, got {content!r}")
        self._append_content(state, content, seq, events)

    def _append_content(self, state: ChoiceState, content: str, seq: int, events: list[BaseEvent]) -> None:
        if content and state.reasoning is not None and not state.reasoning_done:
            # _close_reasoning checks this too: tested here, it costs no call on most chunks
            self._close_reasoning(state, events)
        buffer = state.content
        if buffer is None:
            buffer = state.content = TextBuffer(seq)
        fields = {"type": "content.delta", "choice_index": state.index, "delta": content, "parsed": None}
        lazy: dict[str, Thunk] = {"snapshot": (buffer.text, buffer.append(content, seq))}
        events.append(build(ContentDelta, fields, lazy, self.lock))

    def _handle_extra(
        self, state: ChoiceState, extra: dict[str, Any], seq: int, events: list[BaseEvent]
    ) -> None:
        for key, value in extra.items():
            if key == REASONING_FIELD:
                if value is None:
                    continue
                if type(value) is not str:
                    raise StreamContractError(f"choice {state.index}: {key} must be a string, got {value!r}")
                if state.reasoning is None:
                    state.reasoning = TextBuffer(seq)
                count = state.reasoning.append(value, seq)
                events.append(
                    build(
                        ReasoningDelta,
                        {"type": "reasoning.delta", "choice_index": state.index, "delta": value},
                        {"snapshot": partial(state.reasoning.text, count)},
                        self.lock,
                    )
                )
            elif key not in _KNOWN_DELTA_FIELDS:
                _merge(state.message_extra, {key: value})
                state.message_extra_at.set(copy.deepcopy(state.message_extra), seq)

    def _handle_tool_fragment(
        self, state: ChoiceState, fragment: ChoiceDeltaToolCall, seq: int, events: list[BaseEvent]
    ) -> None:
        index = fragment.index
        if type(index) is not int or index < 0:
            raise StreamContractError(
                f"choice {state.index}: tool call index must be a non-negative integer, got {index!r}"
            )
        call = state.tool_calls.get(index)
        function = fragment.function
        if call is None:
            if function is None or function.name is None:
                raise StreamContractError(
                    f"choice {state.index}: tool call {index} continues a call that never started (no name)"
                )
            call = state.tool_calls[index] = ToolCallState(index, state.index, seq)
        if fragment.id is not None:
            call.id.set(fragment.id if call.id.current is None else call.id.current + fragment.id, seq)
        if fragment.type is not None:
            call.type.set(fragment.type, seq)
        if fragment.__pydantic_extra__:
            call.extra.set({**(call.extra.current or {}), **fragment.__pydantic_extra__}, seq)
        arguments_delta = ""
        if function is not None:
            if function.name is not None:
                call.name.append(function.name, seq)
            if function.arguments is not None:
                if type(function.arguments) is not str:
                    raise StreamContractError(
                        f"choice {state.index}: tool call {index} arguments must be a string"
                    )
                arguments_delta = function.arguments
                call.arguments.append(arguments_delta, seq)
        fields: dict[str, Any] = {
            "type": "tool_calls.function.arguments.delta",
            "choice_index": state.index,
            "name": call.name.text(),
            "index": index,
            "arguments_delta": arguments_delta,
            "parsed_arguments": None,
        }
        lazy: dict[str, Thunk] = {"arguments": (call.arguments.text, len(call.arguments))}
        events.append(build(ToolCallDelta, fields, lazy, self.lock))

    def _handle_logprobs(self, state: ChoiceState, choice: Choice, seq: int, events: list[BaseEvent]) -> None:
        logprobs = choice.logprobs
        assert logprobs is not None  # noqa: S101 - checked by the caller
        content, refusal = logprobs.content, logprobs.refusal
        if state.logprobs_created is None:
            # openai takes the first logprobs object whole, then extends it
            state.logprobs_created = seq
            if content is not None:
                state.logprobs_content = TrackedList(seq)
                state.logprobs_content.extend(list(content), seq)
            if refusal is not None:
                state.logprobs_refusal = TrackedList(seq)
                state.logprobs_refusal.extend(list(refusal), seq)
        else:
            if content:
                if state.logprobs_content is None:
                    state.logprobs_content = TrackedList(seq)
                state.logprobs_content.extend(content, seq)
            if refusal:
                if state.logprobs_refusal is None:
                    state.logprobs_refusal = TrackedList(seq)
                state.logprobs_refusal.extend(refusal, seq)
        if content and state.logprobs_content is not None and state.logprobs_content.items:
            events.append(
                build(
                    LogprobsContentDelta,
                    {"type": "logprobs.content.delta", "choice_index": state.index, "content": content},
                    {"snapshot": partial(state.logprobs_content.prefix, len(state.logprobs_content.items))},
                    self.lock,
                )
            )
        if refusal and state.logprobs_refusal is not None and state.logprobs_refusal.items:
            events.append(
                build(
                    LogprobsRefusalDelta,
                    {"type": "logprobs.refusal.delta", "choice_index": state.index, "refusal": refusal},
                    {"snapshot": partial(state.logprobs_refusal.prefix, len(state.logprobs_refusal.items))},
                    self.lock,
                )
            )

    # -- done events, as openai's ChoiceEventState ---------------------------------------------

    def _done_events(self, state: ChoiceState, delta: ChoiceDelta, events: list[BaseEvent]) -> None:
        if state.finish_reason.current:
            self._content_done_events(state, events)
            if state.current_tool_call is not None:
                self._tool_done_event(state, state.current_tool_call, events)
        for fragment in delta.tool_calls or ():
            if state.current_tool_call != fragment.index:
                self._content_done_events(state, events)
                if state.current_tool_call is not None:
                    self._tool_done_event(state, state.current_tool_call, events)
            state.current_tool_call = fragment.index

    def _content_done_events(self, state: ChoiceState, events: list[BaseEvent]) -> None:
        self._close_reasoning(state, events)
        index = state.index
        if state.content is not None and not state.content_done and state.content.text():
            state.content_done = True
            events.append(
                build(
                    ContentDone,
                    {
                        "type": "content.done",
                        "choice_index": index,
                        "content": state.content.text(),
                        "parsed": None,
                    },
                )
            )
        if state.refusal is not None and not state.refusal_done:
            state.refusal_done = True
            events.append(
                build(
                    RefusalDone,
                    {"type": "refusal.done", "choice_index": index, "refusal": state.refusal.text()},
                )
            )
        if state.logprobs_content is not None and not state.logprobs_content_done:
            state.logprobs_content_done = True
            events.append(
                build(
                    LogprobsContentDone,
                    {
                        "type": "logprobs.content.done",
                        "choice_index": index,
                        "content": list(state.logprobs_content.items),
                    },
                )
            )
        if state.logprobs_refusal is not None and not state.logprobs_refusal_done:
            state.logprobs_refusal_done = True
            events.append(
                build(
                    LogprobsRefusalDone,
                    {
                        "type": "logprobs.refusal.done",
                        "choice_index": index,
                        "refusal": list(state.logprobs_refusal.items),
                    },
                )
            )

    def _tool_done_event(self, state: ChoiceState, index: int, events: list[BaseEvent]) -> None:
        if index in state.done_tool_calls:
            return
        state.done_tool_calls.add(index)
        call = state.tool_calls[index]
        events.append(
            build(
                ToolCallDone,
                {
                    "type": "tool_calls.function.arguments.done",
                    "choice_index": state.index,
                    "name": call.name.text(),
                    "index": index,
                    "arguments": call.arguments.text(),
                    "parsed_arguments": None,
                    "tool_call": call.to_model(),
                },
            )
        )

    def _close_reasoning(self, state: ChoiceState, events: list[BaseEvent]) -> None:
        if state.reasoning is not None and not state.reasoning_done:
            state.reasoning_done = True
            events.append(
                build(
                    ReasoningDone,
                    {
                        "type": "reasoning.done",
                        "choice_index": state.index,
                        "reasoning": state.reasoning.text(),
                    },
                )
            )


def _base_fields(chunk: ChatCompletionChunk) -> dict[str, Any]:
    """The completion-level fields openai keeps from the first chunk."""
    # a provider's odd value (SambaNova's float `created`) is kept as sent, not warned about
    data = chunk.to_dict(warnings=False)
    data.pop("obfuscation", None)
    data.pop("choices", None)
    data.pop("usage", None)
    data.pop("system_fingerprint", None)
    return data


def _merge(accumulated: dict[str, Any], delta: dict[str, Any]) -> None:
    """Merge rarely used fields (``function_call``, provider extras) as openai's ``accumulate_delta`` does.

    Strings concatenate, dicts merge, lists of entries with an ``index`` merge entry by entry,
    other lists extend, anything else is replaced. Values are copied: the chunk is never changed.
    """
    for key, value in delta.items():
        previous = accumulated.get(key)
        if previous is None:
            accumulated[key] = copy.deepcopy(value)
        elif isinstance(previous, str) and isinstance(value, str):
            accumulated[key] = previous + value
        elif isinstance(previous, dict) and isinstance(value, dict):
            _merge(previous, value)
        elif isinstance(previous, list) and isinstance(value, list):
            _merge_list(previous, value)
        elif value is not None:
            accumulated[key] = copy.deepcopy(value)


def _merge_list(accumulated: list[Any], delta: list[Any]) -> None:
    for entry in delta:
        if isinstance(entry, dict) and isinstance(entry.get("index"), int):
            same = next(
                (old for old in accumulated if isinstance(old, dict) and old.get("index") == entry["index"]),
                None,
            )
            if same is not None:
                _merge(same, {key: item for key, item in entry.items() if key != "index"})
                continue
        accumulated.append(copy.deepcopy(entry))
