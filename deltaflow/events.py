"""The typed events of a chat stream: pydantic models, one discriminated union on ``type``.

Names and fields follow openai-python's stream helper (``openai.lib.streaming.chat``), so code
written for ``client.chat.completions.stream()`` keeps working; deltaflow adds ``choice_index`` on
every per-choice event and the events openai does not have (reasoning, parsed-content paths,
``choice.done``, ``usage``, ``completion.done``, ``error``, and ``tool_loop``'s
``tool_calls.function.result``).

Snapshots are lazy. Fields such as ``ContentDelta.snapshot`` or ``ChunkReceived.snapshot`` are
computed the first time they are read (or serialised) and show the state *as of that event*, however
much later they are read; an event whose snapshot nobody reads costs nothing to build. Values
materialised this way (``parsed`` above all) share completed parts with later snapshots: treat them
as read-only.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionTokenLogprob,
    ParsedChatCompletion,
    ParsedFunctionToolCall,
)
from openai.types.completion_usage import CompletionUsage
from pydantic import BeforeValidator, ConfigDict, Field

from deltaflow._lazy import LazyModel
from deltaflow._openai_compat import construct

__all__ = [
    "EVENT_ALIASES",
    "BaseEvent",
    "ChoiceDone",
    "ChunkReceived",
    "CompletionDone",
    "ContentDelta",
    "ContentDone",
    "ContentParsedDelta",
    "ContentParsedDone",
    "ErrorReported",
    "Event",
    "EventType",
    "LogprobsContentDelta",
    "LogprobsContentDone",
    "LogprobsRefusalDelta",
    "LogprobsRefusalDone",
    "PathItem",
    "ReasoningDelta",
    "ReasoningDone",
    "RefusalDelta",
    "RefusalDone",
    "ToolCallDelta",
    "ToolCallDone",
    "ToolCallResult",
    "UsageReported",
]

PathItem: TypeAlias = str | int
"""One step of a path into parsed content: an object key or an array index."""


class BaseEvent(LazyModel):
    """Common base: frozen, with fields that may be computed on first read (``deltaflow._lazy``).

    Build events with the ordinary constructor; derive one from another with ``evolve``.
    """

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    type: str
    """What happened: each event class narrows it to its own literal, the union's discriminator."""


def _lenient_completion(value: Any) -> ParsedChatCompletion[object]:
    # a snapshot mid-stream has finish_reason None, which the completed type rejects: build it
    # leniently, as openai builds its own snapshots
    if isinstance(value, ParsedChatCompletion):
        return value
    return construct(ParsedChatCompletion[object], value)


_Completion: TypeAlias = Annotated[ParsedChatCompletion[object], BeforeValidator(_lenient_completion)]
"""openai's ``ParsedChatCompletion``, validated leniently (relays, recordings) as openai's snapshots."""


class ChunkReceived(BaseEvent):
    """A raw chunk arrived; ``snapshot`` is the completion accumulated up to and including it."""

    type: Literal["chunk"] = "chunk"
    chunk: ChatCompletionChunk
    snapshot: _Completion


class ContentDelta(BaseEvent):
    """Text was appended to a choice's content."""

    type: Literal["content.delta"] = "content.delta"
    choice_index: int
    delta: str
    snapshot: str
    parsed: object | None = None
    """With a parsed ``response_format``: the partial JSON value so far (as ``jiter`` partial mode)."""


class ContentDone(BaseEvent):
    """A choice's content is complete; ``parsed`` is validated into the ``response_format``."""

    type: Literal["content.done"] = "content.done"
    choice_index: int
    content: str
    parsed: object | None = None


class ContentParsedDelta(BaseEvent):
    """One change to the parsed content value: replaying them in order rebuilds the partial value.

    ``op`` is ``add`` (a new key or element, or the root, with its initial value), ``append`` (text
    added to a string being streamed), ``replace`` (a scalar changed: a number growing digit by digit)
    or ``remove`` (a number that parsed stopped parsing, ``12`` becoming ``12.``; it comes back with a
    later ``add``). ``deltaflow.partial_json.apply_ops`` is the reference replay.
    """

    type: Literal["content.parsed.delta"] = "content.parsed.delta"
    choice_index: int
    path: tuple[PathItem, ...]
    op: Literal["add", "append", "replace", "remove"]
    value: Any


class ContentParsedDone(BaseEvent):
    """A sub-value of the parsed content closed; validated against its sub-model when one matches."""

    type: Literal["content.parsed.done"] = "content.parsed.done"
    choice_index: int
    path: tuple[PathItem, ...]
    value: Any


class RefusalDelta(BaseEvent):
    """Text was appended to a choice's refusal."""

    type: Literal["refusal.delta"] = "refusal.delta"
    choice_index: int
    delta: str
    snapshot: str


class RefusalDone(BaseEvent):
    """A choice's refusal is complete."""

    type: Literal["refusal.done"] = "refusal.done"
    choice_index: int
    refusal: str


class ReasoningDelta(BaseEvent):
    """Reasoning text arrived (``reasoning_content``, ``reasoning``, ... normalised by the dialect)."""

    type: Literal["reasoning.delta"] = "reasoning.delta"
    choice_index: int
    delta: str
    snapshot: str


class ReasoningDone(BaseEvent):
    """A choice's reasoning is complete: the answer, a tool call or the finish began."""

    type: Literal["reasoning.done"] = "reasoning.done"
    choice_index: int
    reasoning: str


class ToolCallDelta(BaseEvent):
    """A fragment of a function tool call's arguments arrived."""

    type: Literal["tool_calls.function.arguments.delta"] = "tool_calls.function.arguments.delta"
    choice_index: int
    name: str
    index: int
    arguments: str
    """Accumulated raw JSON string."""
    parsed_arguments: object = None
    """For strict and pydantic tools, the partial JSON value so far; otherwise None."""
    arguments_delta: str


class ToolCallDone(BaseEvent):
    """A function tool call is complete: the next call started or the choice finished."""

    type: Literal["tool_calls.function.arguments.done"] = "tool_calls.function.arguments.done"
    choice_index: int
    name: str
    index: int
    arguments: str
    parsed_arguments: object = None
    tool_call: ParsedFunctionToolCall


class ToolCallResult(BaseEvent):
    """A tool ran (``recipes.tool_loop``): its result, as the ``tool`` message sent back to the model.

    A chat stream never makes one; a tool loop's observers see one per call of a step, after the
    step's ``completion.done``, in the order of the tool messages.

    Attributes:
        index: the call's index in the assistant message's ``tool_calls``.
        tool_call_id: the provider's id of the call, the tool message's ``tool_call_id``.
        name: the tool called.
        content: the tool message's content: the result as a string (JSON unless the tool returned
            a string), or ``"Error: ..."``.
        is_error: the model was told of an error instead of a result.
        error_code: what went wrong: ``tool_failed`` (the tool raised), ``tool_arguments_invalid``
            (the arguments failed the tool's schema) or ``tool_unknown`` (no tool of that name).
        error_type: the name of the exception the tool raised (``tool_failed``).
        exception: the exception the tool raised, not serialised.
    """

    type: Literal["tool_calls.function.result"] = "tool_calls.function.result"
    choice_index: int
    index: int
    tool_call_id: str
    name: str
    content: str
    is_error: bool = False
    error_code: Literal["tool_failed", "tool_arguments_invalid", "tool_unknown"] | None = None
    error_type: str | None = None
    exception: Annotated[BaseException | None, Field(exclude=True)] = None


class LogprobsContentDelta(BaseEvent):
    """Log probabilities for content tokens arrived."""

    type: Literal["logprobs.content.delta"] = "logprobs.content.delta"
    choice_index: int
    content: list[ChatCompletionTokenLogprob]
    snapshot: list[ChatCompletionTokenLogprob]


class LogprobsContentDone(BaseEvent):
    """All content log probabilities of a choice."""

    type: Literal["logprobs.content.done"] = "logprobs.content.done"
    choice_index: int
    content: list[ChatCompletionTokenLogprob]


class LogprobsRefusalDelta(BaseEvent):
    """Log probabilities for refusal tokens arrived."""

    type: Literal["logprobs.refusal.delta"] = "logprobs.refusal.delta"
    choice_index: int
    refusal: list[ChatCompletionTokenLogprob]
    snapshot: list[ChatCompletionTokenLogprob]


class LogprobsRefusalDone(BaseEvent):
    """All refusal log probabilities of a choice."""

    type: Literal["logprobs.refusal.done"] = "logprobs.refusal.done"
    choice_index: int
    refusal: list[ChatCompletionTokenLogprob]


class ChoiceDone(BaseEvent):
    """A choice finished."""

    type: Literal["choice.done"] = "choice.done"
    choice_index: int
    finish_reason: str


class UsageReported(BaseEvent):
    """Token usage for the whole completion."""

    type: Literal["usage"] = "usage"
    usage: CompletionUsage


class CompletionDone(BaseEvent):
    """The stream ended; ``completion`` is the final, parsed completion.

    Attributes:
        unfinished: a choice ended without a finish reason: the provider never said the answer was
            complete (a body cut short, a server-side timeout). An ``error`` event with code
            ``finish_reason_missing`` came before, one per such choice.
    """

    type: Literal["completion.done"] = "completion.done"
    completion: _Completion
    unfinished: bool = False


class ErrorReported(BaseEvent):
    """Something went wrong that the stream survives (or, last, the error that ends it).

    Attributes:
        code: a stable machine-readable name, e.g. ``tool_arguments_invalid``, ``content_invalid``,
            ``provider_error``, ``chunk_unrecognized``.
        message: a human-readable description.
        choice_index: the choice concerned, if any.
        detail: data that helps, kept whole (the raw arguments, the provider's error object, the raw chunk).
        exception: the typed error, not serialised.
    """

    type: Literal["error"] = "error"
    code: str
    message: str
    choice_index: int | None = None
    detail: Any = None
    exception: Annotated[BaseException | None, Field(exclude=True)] = None


Event: TypeAlias = Annotated[
    ChunkReceived
    | ContentDelta
    | ContentDone
    | ContentParsedDelta
    | ContentParsedDone
    | RefusalDelta
    | RefusalDone
    | ReasoningDelta
    | ReasoningDone
    | ToolCallDelta
    | ToolCallDone
    | ToolCallResult
    | LogprobsContentDelta
    | LogprobsContentDone
    | LogprobsRefusalDelta
    | LogprobsRefusalDone
    | ChoiceDone
    | UsageReported
    | CompletionDone
    | ErrorReported,
    Field(discriminator="type"),
]
"""Any deltaflow event; ``pydantic.TypeAdapter(Event)`` validates one from its JSON form."""

EventType: TypeAlias = Literal[
    "chunk",
    "content.delta",
    "content.done",
    "content.parsed.delta",
    "content.parsed.done",
    "refusal.delta",
    "refusal.done",
    "reasoning.delta",
    "reasoning.done",
    "tool_calls.function.arguments.delta",
    "tool_calls.function.arguments.done",
    "tool_calls.function.result",
    "logprobs.content.delta",
    "logprobs.content.done",
    "logprobs.refusal.delta",
    "logprobs.refusal.done",
    "choice.done",
    "usage",
    "completion.done",
    "error",
]

EVENT_ALIASES: dict[str, EventType] = {
    "tool_calls.delta": "tool_calls.function.arguments.delta",
    "tool_calls.done": "tool_calls.function.arguments.done",
    "tool_calls.result": "tool_calls.function.result",
}
"""Short names ``.on()`` and ``sinks.callback`` accept for the tool-call events."""
