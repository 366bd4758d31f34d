"""openai's own ChatCompletionStreamState as the oracle: run both on the same chunks, compare."""

from __future__ import annotations

import typing
import warnings
from dataclasses import dataclass, field
from typing import Any

from openai import NOT_GIVEN
from openai.lib.streaming.chat import ChatCompletionStreamEvent, ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from deltaflow import ChatStream

# openai's event classes by their `type`, to compare only the fields openai defines
OPENAI_EVENT_FIELDS: dict[str, set[str]] = {}
for _cls in typing.get_args(ChatCompletionStreamEvent):
    _cls = typing.get_origin(_cls) or _cls
    OPENAI_EVENT_FIELDS[_cls.model_fields["type"].annotation.__args__[0]] = set(_cls.model_fields)


@dataclass
class Run:
    """What one implementation produced: event dumps (taken at event time), final, error."""

    events: list[dict[str, Any]] = field(default_factory=list)
    final: dict[str, Any] | None = None
    error: BaseException | None = None


def run_openai(chunks: list[ChatCompletionChunk], tools: Any = None, response_format: Any = None) -> Run:
    """openai's helper on the chunks; events dumped as they come (its snapshot object mutates)."""
    run = Run()
    state = ChatCompletionStreamState(
        input_tools=tools if tools is not None else NOT_GIVEN,
        response_format=response_format if response_format is not None else NOT_GIVEN,
    )
    try:
        with warnings.catch_warnings():
            # openai's own ParsedChatCompletion[object] warns when dumping a parsed model
            warnings.filterwarnings("ignore", message="Pydantic serializer warnings")
            for chunk in chunks:
                run.events.extend(event.model_dump() for event in state.handle_chunk(chunk))
            run.final = state.get_final_completion().model_dump()
    except Exception as exc:
        run.error = exc
    return run


def run_deltaflow(chunks: list[ChatCompletionChunk], tools: Any = None, response_format: Any = None) -> Run:
    """deltaflow's ChatStream on the same chunks, keeping only events of openai's types."""
    run = Run()
    stream = ChatStream(iter(chunks), tools=tools, response_format=response_format)
    try:
        for event in stream:
            fields = OPENAI_EVENT_FIELDS.get(event.type)
            if fields is not None:
                run.events.append(event.model_dump(include=fields))
        run.final = stream.get_final_completion().model_dump()
    except Exception as exc:
        run.error = exc
    return run


def assert_same(expected: Run, actual: Run) -> None:
    """Same error class, same events in the same order with equal fields, same final completion."""
    assert type(actual.error) is type(expected.error), (actual.error, expected.error)
    assert [event["type"] for event in actual.events] == [event["type"] for event in expected.events]
    for position, (mine, theirs) in enumerate(zip(actual.events, expected.events, strict=True)):
        assert mine == theirs, f"event {position} ({theirs['type']}) differs"
    assert actual.final == expected.final
