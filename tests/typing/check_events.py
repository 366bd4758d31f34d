"""Checked by mypy in ``make test`` (never run): users' type checkers see the ``Event`` union.

Lines marked ``# type: ignore[...]`` must be errors: mypy's ``warn_unused_ignores`` (on under
``--strict``) fails the check if one of them stops being an error.
"""

from __future__ import annotations

from typing import assert_type

import openai
import reactivex.operators as rx
from openai.types.chat import ChatCompletionChunk, ParsedChatCompletion
from pydantic import BaseModel

import deltaflow
from deltaflow import operators as ops
from deltaflow.events import ContentDelta, ContentDone, ErrorReported, Event, ToolCallDone, ToolCallResult


class Weather(BaseModel):
    city: str


def iterate(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Hi"}]
    with deltaflow.stream(client, model="gpt-4o-mini", messages=messages) as stream:
        for event in stream:
            assert_type(event, Event)
            if event.type == "content.delta":
                assert_type(event, ContentDelta)
                assert_type(event.delta, str)
                print(event.delat)  # type: ignore[attr-defined]
            elif event.type == "tool_calls.function.arguments.done":
                assert_type(event, ToolCallDone)
            print(event.delta)  # type: ignore[union-attr]  # not every event has one


def final(client: openai.OpenAI) -> None:
    stream = deltaflow.stream(client, model="gpt-4o-mini", messages=[], response_format=Weather)
    completion = stream.get_final_completion()
    assert_type(completion, ParsedChatCompletion[Weather])
    parsed = completion.choices[0].message.parsed
    if parsed is not None:
        assert_type(parsed.city, str)
        print(parsed.country)  # type: ignore[attr-defined]


async def iterate_async(client: openai.AsyncOpenAI) -> None:
    async with deltaflow.astream(client, model="gpt-4o-mini", messages=[]) as stream:
        async for event in stream:
            assert_type(event, Event)
            if event.type == "content.done":
                assert_type(event, ContentDone)
                assert_type(event.content, str)


def handlers(stream: deltaflow.ChatStream[Weather]) -> None:
    stream.on("content.delta", lambda event: print(event.delta))
    stream.on("content.delta", lambda event: print(event.delat))  # type: ignore[arg-type]  # no such field

    def on_error(event: ErrorReported) -> None:
        print(event.code)

    stream.on("error", on_error)
    stream.on("content.delta", on_error)  # type: ignore[arg-type]  # the callback's event type must match
    stream.on("tool_calls.done", lambda event: print(event.tool_call.function.name))
    # the fields, positionally: any callable with more parameters
    stream.on("content.delta", lambda delta, snapshot: print(f"{delta!r} -> {snapshot!r}"))


def chain(chunks: list[ChatCompletionChunk]) -> None:
    def is_done(event: Event) -> bool:
        return event.type == "content.done"

    def show(event: Event) -> None:
        assert_type(event, Event)

    deltaflow.from_chunks(chunks).pipe(ops.to_events(), rx.filter(is_done)).subscribe(show)
    events = deltaflow.from_chunks(chunks).pipe(
        ops.accumulate(), ops.parse_partial_json(response_format=Weather)
    )
    events.subscribe(lambda event: print(event.type))
    events.subscribe(lambda event: print(event.typo))  # type: ignore[union-attr]


def tool_loop_events(client: openai.OpenAI) -> None:
    from deltaflow.recipes import tool_loop_stream  # noqa: PLC0415

    def get_weather(city: str) -> str:
        return city

    with tool_loop_stream(client, [], {"get_weather": get_weather}, model="gpt-4o-mini") as loop:
        for event in loop:
            assert_type(event, Event)
            if event.type == "tool_calls.function.result":
                assert_type(event, ToolCallResult)
                assert_type(event.content, str)
                assert_type(event.is_error, bool)
                print(event.result)  # type: ignore[attr-defined]  # it is `content`
