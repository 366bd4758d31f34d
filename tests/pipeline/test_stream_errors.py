"""The facades never hide a failure: parse errors raised like openai's, closed streams said plainly."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2 as httpx
import openai
import pytest
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel

import deltaflow
from deltaflow import operators as ops
from deltaflow.errors import (
    ContentInvalidError,
    JsonParseError,
    ParseError,
    StreamClosedError,
    ToolArgumentsError,
)
from deltaflow.events import BaseEvent
from tests.chunks import text_stream, tool_call_stream


class City(BaseModel):
    name: str
    population: int


class Lookup(BaseModel):
    q: str


LOOKUP_TOOL = openai.pydantic_function_tool(Lookup, name="lookup")


async def _aiter(chunks: list[ChatCompletionChunk]) -> AsyncIterator[ChatCompletionChunk]:
    for item in chunks:
        yield item


class TestParseFailuresRaise:
    """As openai's helper: a parse that failed is an error, after every event was handed out."""

    @pytest.mark.parametrize(
        ("parts", "error_class"),
        [
            (['{"name": "Paris",', ' "population": "many"}'], ContentInvalidError),
            (['{"name": ', "}"], JsonParseError),
        ],
    )
    def test_content_that_fails_the_model_raises_after_every_event(
        self, parts: list[str], error_class: type[ParseError]
    ) -> None:
        stream = deltaflow.ChatStream(text_stream(*parts), response_format=City)
        seen: list[BaseEvent] = []
        with pytest.raises(error_class) as raised:
            seen.extend(stream)

        error = raised.value
        assert isinstance(error, ValueError)  # the except clause written for openai's helper still catches it
        assert error.text == "".join(parts)  # type: ignore[attr-defined]
        assert error.completion is not None
        assert error.completion.choices[0].message.content == "".join(parts)
        assert error.completion.choices[0].finish_reason == "stop"
        # every event went out first: the error event, then the completion
        types = [event.type for event in seen]
        assert "error" in types
        assert types[-1] == "completion.done"
        with pytest.raises(error_class):
            stream.get_final_completion()

    def test_get_final_completion_raises_without_iterating(self) -> None:
        stream = deltaflow.ChatStream(text_stream('{"name": 1}'), response_format=City)
        with pytest.raises(ContentInvalidError):
            stream.get_final_completion()

    def test_keep_goes_on_with_parsed_none(self) -> None:
        stream = deltaflow.ChatStream(text_stream('{"name": 1}'), response_format=City, parse_errors="keep")
        events = list(stream)
        assert stream.get_final_completion().choices[0].message.parsed is None
        errors = [event for event in events if event.type == "error"]
        assert [event.code for event in errors] == ["content_invalid"]

    def test_a_request_dict_is_not_parsed_so_nothing_is_raised(self) -> None:
        """As openai: a json_schema dict response_format leaves parsed None and raises nothing."""
        schema = {"type": "json_schema", "json_schema": {"name": "city", "schema": {}}}
        stream = deltaflow.ChatStream(text_stream('{"name": '), response_format=schema)
        events = list(stream)
        assert stream.get_final_completion().choices[0].message.content == '{"name": '
        assert [event.code for event in events if event.type == "error"] == ["content_invalid"]

    def test_pydantic_tool_arguments_that_fail_raise(self) -> None:
        chunks = tool_call_stream("lookup", '{"q": ', "3}")
        stream = deltaflow.ChatStream(chunks, tools=[LOOKUP_TOOL])
        with pytest.raises(ToolArgumentsError) as raised:
            stream.until_done()
        assert isinstance(raised.value, ValueError)
        assert raised.value.arguments == '{"q": 3}'
        assert raised.value.completion is not None
        assert raised.value.completion.choices[0].message.tool_calls[0].function.arguments == '{"q": 3}'  # type: ignore[index]

    def test_observers_see_the_failure_as_the_end(self) -> None:
        ends: list[str] = []

        class Sink:
            def on_next(self, event: BaseEvent) -> None:
                pass

            def on_error(self, error: Exception) -> None:
                ends.append(type(error).__name__)

            def on_completed(self) -> None:
                ends.append("completed")

        stream = deltaflow.ChatStream(text_stream('{"name": 1}'), response_format=City).subscribe(Sink())  # type: ignore[arg-type]
        with pytest.raises(ContentInvalidError):
            stream.until_done()
        assert ends == ["ContentInvalidError"]

    async def test_async_twin_raises_the_same(self) -> None:
        stream = deltaflow.AsyncChatStream(_aiter(text_stream('{"name": 1}')), response_format=City)
        seen: list[BaseEvent] = []
        with pytest.raises(ContentInvalidError):
            async for event in stream:
                seen.append(event)
        assert seen[-1].type == "completion.done"
        kept = deltaflow.AsyncChatStream(
            _aiter(text_stream('{"name": 1}')), response_format=City, parse_errors="keep"
        )
        assert (await kept.get_final_completion()).choices[0].message.parsed is None


class TestClosedStreams:
    def test_a_stream_closed_before_its_end_says_so(self) -> None:
        stream = deltaflow.ChatStream(text_stream("a", "b", "c"))
        first = next(iter(stream))
        assert first.type == "chunk"
        stream.close()

        with pytest.raises(StreamClosedError, match="closed"):
            list(stream)
        with pytest.raises(StreamClosedError):
            stream.on("content.delta", print)
        with pytest.raises(StreamClosedError):
            stream.get_final_completion()
        with pytest.raises(StreamClosedError):
            stream.until_done()

    def test_leaving_with_early_is_a_close(self) -> None:
        with deltaflow.ChatStream(text_stream("a", "b")) as stream:
            for _ in stream:
                break
        with pytest.raises(StreamClosedError):
            stream.get_final_completion()

    def test_a_finished_stream_closed_afterwards_keeps_its_completion(self) -> None:
        with deltaflow.ChatStream(text_stream("a", "b")) as stream:
            stream.until_done()
        assert stream.get_final_completion().choices[0].message.content == "ab"
        assert list(stream) == []

    async def test_async_twin(self) -> None:
        stream = deltaflow.AsyncChatStream(_aiter(text_stream("a", "b")))
        async for _ in stream:
            break
        await stream.close()
        with pytest.raises(StreamClosedError):
            await stream.get_final_completion()
        with pytest.raises(StreamClosedError):
            stream.on("content.delta", print)
        with pytest.raises(StreamClosedError):
            async for _ in stream:
                pass


class TestHandlers:
    def test_an_async_handler_on_a_sync_stream_is_refused_at_registration(self) -> None:
        async def handler(event: BaseEvent) -> None:
            pass

        class AsyncCallable:
            async def __call__(self, event: BaseEvent) -> None:
                pass

        stream = deltaflow.ChatStream(text_stream("a"))
        with pytest.raises(TypeError, match="astream"):
            stream.on("content.delta", handler)
        with pytest.raises(TypeError, match="astream"):
            stream.on("content.delta", AsyncCallable())
        assert stream.get_final_completion().choices[0].message.content == "a"

    def test_a_handler_with_a_defaulted_parameter_gets_the_event(self) -> None:
        seen: list[Any] = []

        def handler(event: BaseEvent, verbose: bool = False) -> None:
            seen.append((event, verbose))

        deltaflow.ChatStream(text_stream("a", "b")).on("content.delta", handler).until_done()
        assert [event.delta for event, _ in seen] == ["", "a", "b"]  # type: ignore[attr-defined]
        assert {verbose for _, verbose in seen} == {False}

    def test_a_handler_with_two_required_parameters_gets_the_fields(self) -> None:
        seen: list[tuple[str, str]] = []
        deltaflow.ChatStream(text_stream("a", "b")).on(
            "content.delta", lambda delta, snapshot: seen.append((delta, snapshot))
        ).until_done()
        assert seen == [("", ""), ("a", "a"), ("b", "ab")]

    async def test_async_handlers_are_awaited_on_the_async_stream(self) -> None:
        seen: list[str] = []

        async def handler(event: BaseEvent) -> None:
            await asyncio.sleep(0)
            seen.append(event.delta)  # type: ignore[attr-defined]

        stream = deltaflow.AsyncChatStream(_aiter(text_stream("a", "b"))).on("content.delta", handler)
        await stream.until_done()
        assert seen == ["", "a", "b"]


class TestSourceErrors:
    """An error from the source keeps its class (openai's ``except`` clauses still work) and gets ``.completion``."""

    @staticmethod
    def _failing(error: Exception) -> Iterator[ChatCompletionChunk]:
        yield from text_stream("Hel", "lo")[:3]
        raise error

    @pytest.mark.parametrize(
        "error",
        [
            openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1/v1/chat/completions")),
            openai.APIError("overloaded", request=httpx.Request("POST", "http://127.0.0.1"), body=None),
            ValueError("a JSON error in the source"),
        ],
    )
    def test_rx_chain_on_error_gets_the_completion(self, error: Exception) -> None:
        errors: list[Exception] = []
        events: list[BaseEvent] = []
        deltaflow.from_chunks(self._failing(error)).pipe(ops.to_events()).subscribe(
            events.append, errors.append
        )

        assert errors == [error]
        assert type(errors[0]) is type(error)
        completion = errors[0].completion  # type: ignore[attr-defined]
        assert completion.choices[0].message.content == "Hello"
        assert events[-1].type == "error"

    def test_the_facade_raises_it_with_the_completion(self) -> None:
        error = openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1"))
        stream = deltaflow.ChatStream(self._failing(error))
        with pytest.raises(openai.APIConnectionError) as raised:
            stream.until_done()
        assert raised.value.completion.choices[0].message.content == "Hello"  # type: ignore[attr-defined]
        assert stream.current_completion_snapshot.choices[0].message.content == "Hello"
