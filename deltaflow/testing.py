"""Helpers to test your own operators and sinks, as ``structlog.testing`` is for structlog.

- ``chat_chunks``: the chunks OpenAI would stream for a short script (content, reasoning, tool
  calls, refusal), as openai's ``ChatCompletionChunk`` objects, ready for ``from_chunks``.
- ``capture_events``: run chunks (or any observable) through a chain of operators, synchronously,
  and keep what comes out: the events, the error that ended the stream, whether it completed.
- ``run_openai``, ``run_chain``, ``run_chat_stream`` and ``assert_same``: openai's own
  ``ChatCompletionStreamState`` as the oracle. Each run keeps the events of openai's types
  (dumped as they come, with only the fields openai's classes define), the final completion and
  the error; ``assert_same`` compares two runs.

::

    from deltaflow import operators as ops
    from deltaflow.testing import assert_same, capture_events, chat_chunks, run_chain, run_openai

    chunks = chat_chunks('{"city": "Paris"}', chunk_size=3)
    captured = capture_events(chunks, ops.accumulate(), my_operator())
    assert captured.error is None and captured.completed
    assert_same(run_openai(chunks), run_chain(chunks, ops.to_events()))
"""

from __future__ import annotations

import typing
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import reactivex
from openai import NOT_GIVEN
from openai.lib.streaming.chat import ChatCompletionStreamEvent, ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from deltaflow.events import BaseEvent
from deltaflow.pipeline import ChatStream

__all__ = [
    "OPENAI_EVENT_FIELDS",
    "CapturedEvents",
    "Run",
    "assert_same",
    "capture_events",
    "chat_chunks",
    "run_chain",
    "run_chat_stream",
    "run_openai",
]

_Operator = Callable[[reactivex.Observable[Any]], reactivex.Observable[Any]]


def _openai_event_fields() -> dict[str, set[str]]:
    fields: dict[str, set[str]] = {}
    for member in typing.get_args(ChatCompletionStreamEvent):
        cls = typing.get_origin(member) or member
        fields[cls.model_fields["type"].annotation.__args__[0]] = set(cls.model_fields)
    return fields


OPENAI_EVENT_FIELDS: dict[str, set[str]] = _openai_event_fields()
"""openai's event types, each with the fields its class defines (what ``run_*`` compare)."""


def chat_chunks(
    content: str | None = "Hello world",
    *,
    reasoning: str | None = None,
    tool_calls: Sequence[Mapping[str, Any]] = (),
    refusal: str | None = None,
    finish_reason: str | None = None,
    model: str = "replay-1",
    usage: bool = True,
    chunk_size: int = 4,
) -> list[ChatCompletionChunk]:
    """The chunks OpenAI would stream for this script, as ``ChatCompletionChunk`` objects.

    The same streams as ``deltaflow.replay.scripted_chunks`` (a role chunk, reasoning, content,
    refusal, tool calls, a finish chunk, a usage chunk), validated into openai's type.

    Raises:
        ValueError: ``chunk_size`` is not positive.
    """
    # imported here: the replay package brings its server along, which a test of operators does not need
    from deltaflow.replay import scripted_chunks  # noqa: PLC0415

    dicts = scripted_chunks(
        content,
        reasoning=reasoning,
        tool_calls=tool_calls,
        refusal=refusal,
        finish_reason=finish_reason,
        model=model,
        usage=usage,
        chunk_size=chunk_size,
    )
    return [ChatCompletionChunk.model_validate(chunk) for chunk in dicts]


@dataclass
class CapturedEvents:
    """What came out of a chain: every event in order, then how it ended."""

    events: list[BaseEvent] = field(default_factory=list)
    error: BaseException | None = None
    """The error that ended the stream (deltaflow's errors carry ``.completion``), or None."""
    completed: bool = False

    def of_type(self, *types: str) -> list[BaseEvent]:
        """The events whose ``type`` is one of ``types``, in order."""
        return [event for event in self.events if event.type in types]

    @property
    def types(self) -> list[str]:
        """The ``type`` of every event, in order."""
        return [event.type for event in self.events]


def capture_events(
    source: Iterable[Any] | reactivex.Observable[Any], *operators: _Operator
) -> CapturedEvents:
    """Run ``source`` (chunks, or an observable) through ``operators``, synchronously; keep what comes out.

    The chain is subscribed once, as a user's code would:
    ``reactivex.from_iterable(source).pipe(*operators)``.
    """
    observable = source if isinstance(source, reactivex.Observable) else reactivex.from_iterable(source)
    captured = CapturedEvents()

    def on_error(error: Exception) -> None:
        captured.error = error

    def on_completed() -> None:
        captured.completed = True

    observable.pipe(*operators).subscribe(captured.events.append, on_error, on_completed)
    return captured


@dataclass
class Run:
    """What one implementation produced: event dumps (taken at event time), final completion, error."""

    events: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] | None = None
    error: BaseException | None = None


def run_openai(chunks: Iterable[ChatCompletionChunk], tools: Any = None, response_format: Any = None) -> Run:
    """The oracle: openai's ``ChatCompletionStreamState`` on the chunks.

    Events are dumped as they come: openai's snapshot object changes as the stream goes on.
    """
    run = Run()
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState(
        input_tools=tools if tools is not None else cast(Any, NOT_GIVEN),
        response_format=response_format if response_format is not None else cast(Any, NOT_GIVEN),
    )
    try:
        with warnings.catch_warnings():
            # openai's own ParsedChatCompletion[object] warns when dumping a parsed model
            warnings.filterwarnings("ignore", message="Pydantic serializer warnings")
            for chunk in chunks:
                run.events.extend(event.model_dump() for event in state.handle_chunk(chunk))
            run.final = state.get_final_completion().model_dump()
    except Exception as exc:  # noqa: BLE001 - the oracle's error is part of what is compared
        run.error = exc
    return run


def _dump(event: BaseEvent) -> dict[str, Any] | None:
    fields = OPENAI_EVENT_FIELDS.get(event.type)
    return event.model_dump(include=fields) if fields is not None else None


def run_chain(chunks: Iterable[ChatCompletionChunk], *operators: _Operator) -> Run:
    """A chain of operators on the chunks, kept as ``run_openai`` keeps openai's.

    The final completion is ``completion.done``'s; None when the chain ended with an error.
    """
    run = Run()
    captured = CapturedEvents()

    def on_next(event: BaseEvent) -> None:
        captured.events.append(event)
        dumped = _dump(event)
        if dumped is not None:
            run.events.append(dumped)
        elif event.type == "completion.done":
            run.final = event.completion.model_dump()  # type: ignore[attr-defined]  # told by its type

    def on_error(error: Exception) -> None:
        run.error = error

    reactivex.from_iterable(chunks).pipe(*operators).subscribe(on_next, on_error)
    if run.error is not None:
        run.final = None
    return run


def run_chat_stream(
    chunks: Iterable[ChatCompletionChunk], tools: Any = None, response_format: Any = None
) -> Run:
    """A ``ChatStream`` on the chunks, kept as ``run_openai`` keeps openai's."""
    run = Run()
    stream: ChatStream[Any] = ChatStream(iter(chunks), tools=tools, response_format=response_format)
    try:
        for event in stream:
            dumped = _dump(event)
            if dumped is not None:
                run.events.append(dumped)
        run.final = stream.get_final_completion().model_dump()
    except Exception as exc:  # noqa: BLE001 - the error is part of what is compared
        run.error = exc
    return run


def assert_same(expected: Run, actual: Run) -> None:
    """Same error class, the same events in the same order with equal fields, the same final completion.

    Raises:
        AssertionError: naming the first difference.
    """
    if type(actual.error) is not type(expected.error):
        raise AssertionError(f"error {actual.error!r}, expected {expected.error!r}")
    actual_types = [event["type"] for event in actual.events]
    expected_types = [event["type"] for event in expected.events]
    if actual_types != expected_types:
        raise AssertionError(f"event types {actual_types}, expected {expected_types}")
    for position, (mine, theirs) in enumerate(zip(actual.events, expected.events, strict=True)):
        if mine != theirs:
            raise AssertionError(f"event {position} ({theirs['type']}) differs: {mine} != {theirs}")
    if actual.final != expected.final:
        raise AssertionError(f"final completion {actual.final}, expected {expected.final}")
