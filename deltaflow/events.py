"""The typed events of a chat stream: pydantic models, one discriminated union on ``type``.

Names and fields follow openai-python's stream helper (``openai.lib.streaming.chat``), so code
written for ``client.chat.completions.stream()`` keeps working; deltaflow adds ``choice_index`` on
every per-choice event and the events openai does not have (reasoning, parsed-content paths,
``choice.done``, ``usage``, ``completion.done``, ``error``).

Snapshots are lazy. Fields such as ``ContentDelta.snapshot`` or ``ChunkReceived.snapshot`` are
computed the first time they are read (or serialised) and show the state *as of that event*, however
much later they are read; an event whose snapshot nobody reads costs nothing to build. Values
materialised this way (``parsed`` above all) share completed parts with later snapshots: treat them
as read-only.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Annotated, Any, Literal, Self, TypeAlias, TypeVar

from openai.types.chat import (
    ChatCompletionChunk,
    ChatCompletionTokenLogprob,
    ParsedChatCompletion,
    ParsedFunctionToolCall,
)
from openai.types.completion_usage import CompletionUsage
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from deltaflow._openai_compat import construct

__all__ = [
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
    "ReasoningDelta",
    "ReasoningDone",
    "RefusalDelta",
    "RefusalDone",
    "ToolCallDelta",
    "ToolCallDone",
    "UsageReported",
]

Thunk: TypeAlias = Callable[[], Any] | tuple[Callable[[Any], Any], Any]
"""How a lazy field is computed: a zero-argument callable, or ``(function, argument)`` (cheaper to
make than a ``functools.partial``, which matters on every chunk)."""


def _compute(thunk: Thunk) -> Any:
    if type(thunk) is tuple:
        function, argument = thunk
        return function(argument)
    return thunk()  # type: ignore[operator]  # the callable form


_new = object.__new__
_set = object.__setattr__
_PRIVATE_NAMES = frozenset({"_lazy", "_origin"})
PathItem: TypeAlias = str | int


# the slots' own setters: the fastest way to fill a model built without validation
_set_dict = BaseModel.__dict__["__dict__"].__set__
_set_private = BaseModel.__dict__["__pydantic_private__"].__set__
_get_private = BaseModel.__dict__["__pydantic_private__"].__get__
EventT = TypeVar("EventT", bound="BaseEvent")


def make_event(
    cls: type[EventT], fields: dict[str, Any], lazy: dict[str, Thunk], origin: Any = None
) -> EventT:
    """``BaseEvent.lazy`` as a plain function: what the operators call for every chunk."""
    event = _new(cls)
    _set_dict(event, fields)
    # fields_set and extra are rarely read: __getattr__ fills them in on first use
    _set_private(event, {"_lazy": lazy, "_origin": origin})
    return event


def make_plain_event(cls: type[EventT], fields: dict[str, Any], private: dict[str, Any]) -> EventT:
    """An event with no lazy field: ``private`` is ``{"_lazy": None, "_origin": origin}``, shared.

    Nothing writes to an event's private dict when it has no lazy field, so one per stream serves
    all of them: the cheapest event there is (``content.parsed.delta`` comes by the thousand).
    """
    event = _new(cls)
    _set_dict(event, fields)
    _set_private(event, private)
    return event


class BaseEvent(BaseModel):
    """Common base: frozen, with fields that may be computed on first access."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    # field name -> how to compute it (a Thunk); emptied as fields materialise
    _lazy: dict[str, Thunk] | None = None
    # the accumulator state that produced the event, for operators further down the chain; its
    # lock is taken while a lazy field is computed
    _origin: Any = None

    @classmethod
    def lazy(cls, fields: dict[str, Any], lazy: dict[str, Thunk], origin: Any = None) -> Self:
        """Build an event without validation, some fields computed on first access.

        This is the pipeline's fast path: ``fields`` must hold every non-lazy field with a value of
        the declared type. Users build events with the ordinary constructor.
        """
        return make_event(cls, fields, lazy, origin)

    def evolve(self, fields: dict[str, Any] | None = None, lazy: dict[str, Thunk] | None = None) -> Self:
        """A copy with some fields replaced (``fields``) or made lazy (``lazy``); the origin is kept."""
        own_lazy = dict(self._pending())
        new_fields = dict(self.__dict__)
        for name in fields or ():
            own_lazy.pop(name, None)
        for name in lazy or ():
            new_fields.pop(name, None)
        new_fields.update(fields or {})
        own_lazy.update(lazy or {})
        return make_event(type(self), new_fields, own_lazy, self.origin)

    @property
    def origin(self) -> Any:
        """The accumulator state that produced this event (None for events built by users)."""
        private = object.__getattribute__(self, "__pydantic_private__")
        return private.get("_origin") if private else None

    def _pending(self) -> dict[str, Thunk]:
        private = object.__getattribute__(self, "__pydantic_private__")
        return (private.get("_lazy") if private else None) or {}

    def __getattr__(self, name: str) -> Any:
        # a lazy field first: this runs on every read of one (`parsed` on every delta, say)
        private = _get_private(self)
        lazy = private.get("_lazy") if private else None
        thunk = lazy.get(name) if lazy else None
        if thunk is not None:
            # under the producing state's lock: a sink on another thread may read while the stream
            # thread appends; computed before the thunk is dropped, so a racing reader recomputes
            lock = getattr(private.get("_origin"), "lock", None)
            if lock is None:
                value = _compute(thunk)
            else:
                lock.acquire()
                try:
                    value = _compute(thunk)
                finally:
                    lock.release()
            self.__dict__[name] = value
            lazy.pop(name, None)  # type: ignore[union-attr]
            return value
        if name == "__pydantic_fields_set__":
            # a set of its own per event: pydantic updates fields_set in model_copy(update=...)
            fields_set = set(type(self).__pydantic_fields__)
            _set(self, name, fields_set)
            return fields_set
        if name == "__pydantic_extra__":
            _set(self, name, None)
            return None
        return super().__getattr__(name)  # type: ignore[misc]

    def materialize(self) -> Self:
        """Compute every lazy field now; returns the event itself."""
        for name in self._pending().copy():
            getattr(self, name)  # __getattr__ computes it, under the origin's lock
        return self

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> Any:
        return handler(self.materialize())

    def __eq__(self, other: object) -> bool:
        # events are equal by type and fields; where they came from (the origin) does not count
        if not isinstance(other, BaseEvent):
            return NotImplemented
        return type(self) is type(other) and self.materialize().__dict__ == other.materialize().__dict__

    __hash__ = None  # type: ignore[assignment]

    def __repr_args__(self) -> Any:
        return super(BaseEvent, self.materialize()).__repr_args__()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _PRIVATE_NAMES:
            # events are read-only; their private dict may be shared (see make_plain_event)
            raise AttributeError(f"{type(self).__name__}.{name} is read-only")
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        if name in _PRIVATE_NAMES:
            raise AttributeError(f"{type(self).__name__}.{name} is read-only")
        super().__delattr__(name)

    def __copy__(self) -> Self:
        # lazy fields are computed first: a copy and its original must not share the thunks
        return super(BaseEvent, self.materialize()).__copy__()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        # the fields are copied; the origin, the state that produced the event, is not data
        fields = copy.deepcopy(self.materialize().__dict__, memo)
        return make_event(type(self), fields, {}, self.origin)


def _lenient_completion(value: Any) -> ParsedChatCompletion[object]:
    # a snapshot mid-stream has finish_reason None, which the completed type rejects: build it
    # leniently, as openai builds its own snapshots
    if isinstance(value, ParsedChatCompletion):
        return value
    return construct(ParsedChatCompletion[object], value)


Completion: TypeAlias = Annotated[ParsedChatCompletion[object], BeforeValidator(_lenient_completion)]
"""openai's ``ParsedChatCompletion``, validated leniently (relays, recordings) as openai's snapshots."""


class ChunkReceived(BaseEvent):
    """A raw chunk arrived; ``snapshot`` is the completion accumulated up to and including it."""

    type: Literal["chunk"] = "chunk"
    chunk: ChatCompletionChunk
    snapshot: Completion


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
    completion: Completion
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
    "logprobs.content.delta",
    "logprobs.content.done",
    "logprobs.refusal.delta",
    "logprobs.refusal.done",
    "choice.done",
    "usage",
    "completion.done",
    "error",
]
