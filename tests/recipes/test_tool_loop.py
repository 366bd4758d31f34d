"""recipes.tool_loop: tools run as their calls complete, results go back, until the model answers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from deltaflow.recipes import ToolLoopLimitError, atool_loop, tool_loop
from deltaflow.replay import ReplayServer, Scenario
from tests.recipes import MESSAGES, Recorder, aclient, client

ANSWER = "Sunny in Paris, rainy in Oslo."
TWO_CALLS = [
    {"name": "get_weather", "arguments": {"city": "Paris"}},
    {"name": "get_weather", "arguments": {"city": "Oslo", "unit": "fahrenheit"}},
]


def _has_tool_results(body: dict[str, Any]) -> bool:
    return any(message.get("role") == "tool" for message in body["messages"])


def _calls_then_answer(calls: list[dict[str, Any]]) -> Any:
    """A router: the tool calls first, then the answer once the request carries tool results."""

    def route(body: dict[str, Any]) -> Scenario:
        return (
            Scenario.scripted(ANSWER)
            if _has_tool_results(body)
            else Scenario.scripted(None, tool_calls=calls)
        )

    return route


class GetWeather(BaseModel):
    """The current weather in a city."""

    city: str
    unit: str = "celsius"


class TestToolLoop:
    def test_two_parallel_calls_then_the_answer(self) -> None:
        """Both calls run with their parsed arguments, their results go back, and the answer ends the loop."""
        seen: list[tuple[str, str]] = []

        def get_weather(city: str, unit: str = "celsius") -> dict[str, Any]:
            """The current weather in a city."""
            seen.append((city, unit))
            return {"city": city, "unit": unit, "sky": "sunny" if city == "Paris" else "rainy"}

        recorder = Recorder()
        with ReplayServer(_calls_then_answer(TWO_CALLS)) as server:
            result = tool_loop(
                client(server), MESSAGES, {"get_weather": get_weather}, model="replay-1", observers=[recorder]
            )
            first, second = (request.body for request in server.requests)

        assert seen == [("Paris", "celsius"), ("Oslo", "fahrenheit")]
        assert result.steps == 2
        assert result.content == ANSWER
        tool = first["tools"][0]["function"]
        assert tool["name"] == "get_weather"
        assert tool["description"] == "The current weather in a city."
        assert tool["strict"] is True
        assert set(tool["parameters"]["properties"]) == {"city", "unit"}
        # the second request carries the assistant's calls and one result per call, by id
        assistant, *results = second["messages"][len(MESSAGES) :]
        assert assistant["role"] == "assistant"
        assert [call["function"]["name"] for call in assistant["tool_calls"]] == ["get_weather"] * 2
        assert [message["tool_call_id"] for message in results] == [
            call["id"] for call in assistant["tool_calls"]
        ]
        assert [message["content"] for message in results] == [
            '{"city":"Paris","unit":"celsius","sky":"sunny"}',
            '{"city":"Oslo","unit":"fahrenheit","sky":"rainy"}',
        ]
        assert result.messages == [*second["messages"], {"role": "assistant", "content": ANSWER}]
        assert MESSAGES == [{"role": "user", "content": "hi"}]  # the caller's list is left alone
        # one continuous stream of both steps' events for the observer, completed once
        assert recorder.types.count("completion.done") == 2
        assert recorder.types.count("tool_calls.function.arguments.done") == 2
        assert "content.done" in recorder.types[recorder.types.index("completion.done") :]
        assert recorder.completed == 1
        assert recorder.errors == []

    def test_a_tool_runs_as_soon_as_its_call_is_complete(self) -> None:
        """The first tool has run before the second call's arguments are done streaming."""
        order: list[str] = []

        class Log(Recorder):
            def on_next(self, value: Any) -> None:
                if value.type == "tool_calls.function.arguments.done":
                    order.append(f"done:{value.parsed_arguments.city}")

        def get_weather(city: str, unit: str = "celsius") -> str:
            order.append(f"ran:{city}")
            return "ok"

        with ReplayServer(_calls_then_answer(TWO_CALLS)) as server:
            tool_loop(client(server), MESSAGES, {"get_weather": get_weather}, model="m", observers=[Log()])
        assert order == ["done:Paris", "ran:Paris", "done:Oslo", "ran:Oslo"]

    def test_a_model_and_function_pair_gets_the_validated_model(self) -> None:
        """A ``(Model, function)`` tool is called with the validated model instance."""
        received: list[GetWeather] = []

        def get_weather(arguments: GetWeather) -> str:
            received.append(arguments)
            return f"sunny in {arguments.city}"

        with ReplayServer(_calls_then_answer(TWO_CALLS[:1])) as server:
            result = tool_loop(
                client(server), MESSAGES, {"get_weather": (GetWeather, get_weather)}, model="m"
            )
            tool_message = server.requests[-1].body["messages"][-1]
        assert received == [GetWeather(city="Paris")]
        assert tool_message["content"] == "sunny in Paris"
        assert result.steps == 2

    def test_a_raising_tool_reports_its_error_to_the_model(self) -> None:
        """A tool's exception becomes its result text, and the loop goes on to the answer."""

        def get_weather(city: str, unit: str = "celsius") -> str:
            raise LookupError(f"no station in {city}")

        with ReplayServer(_calls_then_answer(TWO_CALLS[:1])) as server:
            result = tool_loop(client(server), MESSAGES, {"get_weather": get_weather}, model="m")
            tool_message = server.requests[-1].body["messages"][-1]
        assert tool_message["role"] == "tool"
        assert tool_message["content"] == "Error: LookupError: no station in Paris"
        assert result.content == ANSWER

    def test_unknown_tools_and_invalid_arguments_are_answered_with_errors(self) -> None:
        """A call to an unknown tool, or with arguments that fail the schema, gets an error result."""
        calls = [
            {"name": "get_time", "arguments": {}},
            {"name": "get_weather", "arguments": {"town": "Paris"}},
        ]

        def get_weather(city: str) -> str:
            raise AssertionError("not called with invalid arguments")

        with ReplayServer(_calls_then_answer(calls)) as server:
            tool_loop(client(server), MESSAGES, {"get_weather": get_weather}, model="m")
            unknown, invalid = (message["content"] for message in server.requests[-1].body["messages"][-2:])
        assert unknown == "Error: there is no tool named 'get_time'; the tools are: get_weather"
        assert invalid == "Error: invalid arguments for get_weather: city: Field required"

    def test_the_step_limit_is_enforced(self) -> None:
        """A model that keeps calling tools stops the loop after ``max_steps`` with a typed error."""
        recorder = Recorder()
        with ReplayServer(Scenario.scripted(None, tool_calls=TWO_CALLS[:1])) as server:
            with pytest.raises(ToolLoopLimitError) as raised:
                tool_loop(
                    client(server),
                    MESSAGES,
                    {"get_weather": (GetWeather, lambda arguments: "sunny")},
                    model="m",
                    max_steps=3,
                    observers=[recorder],
                )
            requests = len(server.requests)
        assert requests == 3
        error = raised.value
        assert error.max_steps == 3
        assert error.messages[-1]["role"] == "tool"
        assert error.completion is not None
        assert recorder.types.count("completion.done") == 3
        assert recorder.errors == [error]
        assert recorder.completed == 0

    def test_tools_need_type_hints_and_the_sync_loop_refuses_async_tools(self) -> None:
        """Tools are checked before any request: hints are required, async tools need atool_loop."""

        def untyped(city):  # type: ignore[no-untyped-def]
            return city

        async def asynchronous(city: str) -> str:
            return city

        with pytest.raises(TypeError, match="needs a type hint"):
            tool_loop(None, MESSAGES, {"f": untyped}, model="m")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="use atool_loop"):
            tool_loop(None, MESSAGES, {"f": asynchronous}, model="m")  # type: ignore[arg-type]


class TestAsyncToolLoop:
    async def test_tools_of_one_step_run_concurrently(self) -> None:
        """Two async tools overlap: each waits for the other to start, which only concurrency allows."""
        started = {"Paris": asyncio.Event(), "Oslo": asyncio.Event()}

        async def get_weather(city: str, unit: str = "celsius") -> str:
            started[city].set()
            other = "Oslo" if city == "Paris" else "Paris"
            await asyncio.wait_for(started[other].wait(), timeout=5)
            return f"sunny in {city}"

        recorder = Recorder()
        async with ReplayServer(_calls_then_answer(TWO_CALLS)) as server:
            result = await atool_loop(
                aclient(server), MESSAGES, {"get_weather": get_weather}, model="m", observers=[recorder]
            )
            results = [message["content"] for message in server.requests[-1].body["messages"][-2:]]
        assert results == ["sunny in Paris", "sunny in Oslo"]
        assert result.steps == 2
        assert result.content == ANSWER
        assert recorder.types.count("completion.done") == 2
        assert recorder.completed == 1

    async def test_sync_tools_run_in_threads_and_errors_go_back(self) -> None:
        """A plain function runs off the event loop; one that raises reports its error to the model."""

        def get_weather(city: str, unit: str = "celsius") -> str:
            if city == "Oslo":
                raise ValueError("station offline")
            return "sunny"

        async with ReplayServer(_calls_then_answer(TWO_CALLS)) as server:
            result = await atool_loop(aclient(server), MESSAGES, {"get_weather": get_weather}, model="m")
            results = [message["content"] for message in server.requests[-1].body["messages"][-2:]]
        assert results == ["sunny", "Error: ValueError: station offline"]
        assert result.content == ANSWER

    async def test_the_step_limit_is_enforced(self) -> None:
        """The async loop stops after ``max_steps`` with the same typed error."""

        async def get_weather(city: str, unit: str = "celsius") -> str:
            return "sunny"

        async with ReplayServer(Scenario.scripted(None, tool_calls=TWO_CALLS)) as server:
            with pytest.raises(ToolLoopLimitError) as raised:
                await atool_loop(
                    aclient(server), MESSAGES, {"get_weather": get_weather}, model="m", max_steps=2
                )
            requests = len(server.requests)
        assert requests == 2
        assert [message["content"] for message in raised.value.messages[-2:]] == ["sunny", "sunny"]


class TestWrongArguments:
    """A list of tools or the other kind of client fails with a TypeError that names the fix, sending nothing."""

    def test_a_list_of_functions_is_answered_with_the_mapping_to_write(self) -> None:
        def get_weather(city: str) -> str:
            return city

        def get_time(city: str) -> str:
            return city

        recorder = Recorder()
        with ReplayServer(Scenario.scripted(ANSWER)) as server:
            with pytest.raises(
                TypeError,
                match=r"mapping of tool name to function.*\{'get_weather': get_weather, 'get_time': get_time\}",
            ):
                tool_loop(client(server), MESSAGES, [get_weather, get_time], model="m", observers=[recorder])  # type: ignore[arg-type]
            with pytest.raises(TypeError, match=r"tool names must be non-empty strings, got int 1"):
                tool_loop(client(server), MESSAGES, {1: get_weather}, model="m")  # type: ignore[dict-item]
            assert server.requests == []
        assert (recorder.events, recorder.errors, recorder.completed) == ([], [], 0)

    async def test_each_loop_refuses_the_other_kind_of_client(self) -> None:
        def get_weather(city: str) -> str:
            return city

        async with ReplayServer(Scenario.scripted(ANSWER)) as server:
            with pytest.raises(
                TypeError, match=r"atool_loop needs openai\.AsyncOpenAI.*`tool_loop\(client, \.\.\.\)`"
            ):
                await atool_loop(client(server), MESSAGES, {"get_weather": get_weather}, model="m")  # type: ignore[arg-type]
            with pytest.raises(
                TypeError, match=r"^tool_loop needs openai\.OpenAI.*`await atool_loop\(client, \.\.\.\)`"
            ):
                tool_loop(aclient(server), MESSAGES, {"get_weather": get_weather}, model="m")  # type: ignore[arg-type]
            with pytest.raises(TypeError, match=r"atool_loop takes tools as a mapping"):
                await atool_loop(aclient(server), MESSAGES, (get_weather,), model="m")  # type: ignore[arg-type]
            assert server.requests == []
            # the same server answers a right call: the journal above was empty for want of requests
            result = await atool_loop(aclient(server), MESSAGES, {"get_weather": get_weather}, model="m")
            assert result.content == ANSWER
            assert len(server.requests) == 1
