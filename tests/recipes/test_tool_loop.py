"""recipes.tool_loop: tools run as their calls complete, results go back, until the model answers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest
from pydantic import BaseModel

import deltaflow
from deltaflow import sinks
from deltaflow.errors import StreamContractError
from deltaflow.events import ToolCallResult
from deltaflow.recipes import ToolLoopLimitError, atool_loop, atool_loop_stream, tool_loop, tool_loop_stream
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


def _weather_or_fail(city: str, unit: str = "celsius") -> dict[str, Any]:
    """Paris has a station; Oslo's raises."""
    if city == "Oslo":
        raise LookupError("no station in Oslo")
    return {"city": city, "sky": "sunny"}


def _results(events: list[Any]) -> list[ToolCallResult]:
    return [event for event in events if isinstance(event, ToolCallResult)]


class TestToolResults:
    """Each call's result is a ``tool_calls.function.result`` event, the tool message as the model gets it."""

    def test_one_result_per_call_after_its_step_in_the_order_of_the_tool_messages(self) -> None:
        """A success and a raising tool: two results between step 1's completion.done and step 2's events."""
        recorder = Recorder()
        with ReplayServer(_calls_then_answer(TWO_CALLS)) as server:
            tool_loop(
                client(server), MESSAGES, {"get_weather": _weather_or_fail}, model="m", observers=[recorder]
            )
            sent = server.requests[-1].body["messages"]
        assistant, *tool_messages = sent[len(MESSAGES) :]
        first_done = recorder.types.index("completion.done")
        assert recorder.types[first_done + 1 : first_done + 3] == ["tool_calls.function.result"] * 2
        assert recorder.types[first_done + 3] != "tool_calls.function.result"  # step 2 begins
        assert recorder.types.count("tool_calls.function.result") == 2
        ok, failed = _results(recorder.events)
        assert [(result.tool_call_id, result.content) for result in (ok, failed)] == [
            (message["tool_call_id"], message["content"]) for message in tool_messages
        ]
        assert [result.tool_call_id for result in (ok, failed)] == [
            call["id"] for call in assistant["tool_calls"]
        ]
        assert (ok.choice_index, ok.index, ok.name) == (0, 0, "get_weather")
        assert json.loads(ok.content) == {"city": "Paris", "sky": "sunny"}
        assert (ok.is_error, ok.error_code, ok.error_type, ok.exception) == (False, None, None, None)
        assert (failed.index, failed.content) == (1, "Error: LookupError: no station in Oslo")
        assert (failed.is_error, failed.error_code, failed.error_type) == (True, "tool_failed", "LookupError")
        assert isinstance(failed.exception, LookupError)
        assert "exception" not in failed.model_dump(mode="json")
        assert recorder.completed == 1

    def test_unknown_tools_and_invalid_arguments_are_error_results_with_their_codes(self) -> None:
        """The unknown tool and the arguments that fail the schema: is_error, each with its code, no exception."""
        calls = [
            {"name": "get_time", "arguments": {}},
            {"name": "get_weather", "arguments": {"town": "Paris"}},
        ]
        recorder = Recorder()

        def get_weather(city: str) -> str:
            raise AssertionError("not called with invalid arguments")

        with ReplayServer(_calls_then_answer(calls)) as server:
            tool_loop(client(server), MESSAGES, {"get_weather": get_weather}, model="m", observers=[recorder])
            contents = [message["content"] for message in server.requests[-1].body["messages"][-2:]]
        unknown, invalid = _results(recorder.events)
        assert [unknown.content, invalid.content] == contents
        assert (unknown.name, unknown.is_error, unknown.error_code) == ("get_time", True, "tool_unknown")
        assert (invalid.name, invalid.is_error, invalid.error_code) == (
            "get_weather",
            True,
            "tool_arguments_invalid",
        )
        assert (unknown.error_type, unknown.exception, invalid.exception) == (None, None, None)

    def test_callback_sinks_take_the_result_by_its_name_or_short_name(self) -> None:
        """``sinks.callback(on={"tool_calls.result": ...})`` as an observer; a ChatStream refuses it."""
        seen: list[str] = []
        sink = sinks.callback(on={"tool_calls.result": lambda event: seen.append(event.content)})
        with ReplayServer(_calls_then_answer(TWO_CALLS[:1])) as server:
            tool_loop(
                client(server), MESSAGES, {"get_weather": _weather_or_fail}, model="m", observers=[sink]
            )
            stream = deltaflow.stream(client(server), model="m", messages=MESSAGES)
            with stream, pytest.raises(ValueError, match="tool_loop's observers see it"):
                stream.on("tool_calls.function.result", print)
        assert seen == ['{"city":"Paris","sky":"sunny"}']

    async def test_the_async_loop_tells_results_in_message_order_though_the_second_finished_first(
        self,
    ) -> None:
        """Concurrent tools: Oslo's fails before Paris's returns; the results still follow the messages."""
        paris_may_finish = asyncio.Event()

        async def get_weather(city: str, unit: str = "celsius") -> str:
            if city == "Oslo":
                paris_may_finish.set()
                raise ValueError("station offline")
            await asyncio.wait_for(paris_may_finish.wait(), timeout=5)
            return "sunny"

        recorder = Recorder()
        async with ReplayServer(_calls_then_answer(TWO_CALLS)) as server:
            await atool_loop(
                aclient(server), MESSAGES, {"get_weather": get_weather}, model="m", observers=[recorder]
            )
            sent = server.requests[-1].body["messages"][-2:]
        ok, failed = _results(recorder.events)
        assert [(ok.tool_call_id, ok.content), (failed.tool_call_id, failed.content)] == [
            (message["tool_call_id"], message["content"]) for message in sent
        ]
        assert (ok.is_error, failed.is_error, failed.error_type) == (False, True, "ValueError")
        first_done = recorder.types.index("completion.done")
        assert recorder.types[first_done + 1 : first_done + 3] == ["tool_calls.function.result"] * 2


class TestToolLoopStream:
    """``tool_loop_stream`` / ``atool_loop_stream``: the loop's events pulled, as a relay reads them."""

    def test_the_stream_yields_what_observers_see_and_ends_with_the_result(self) -> None:
        """The same events as the observer, in order; then the loop's result and last completion."""
        recorder = Recorder()
        with ReplayServer(_calls_then_answer(TWO_CALLS)) as server:
            with tool_loop_stream(
                client(server), MESSAGES, {"get_weather": _weather_or_fail}, model="m", observers=[recorder]
            ) as loop:
                events = list(loop)
                snapshot = loop.current_completion_snapshot
            requests = len(server.requests)
        assert requests == 2
        assert [event.type for event in events] == recorder.types
        assert events == recorder.events
        assert [result.is_error for result in _results(events)] == [False, True]
        assert loop.result.content == ANSWER
        assert loop.result.steps == 2
        assert snapshot.choices[0].message.content == ANSWER
        assert recorder.completed == 1

    def test_closing_mid_loop_makes_no_further_request(self) -> None:
        """Closed at the first result: the second step is never requested, the observer is not completed."""
        recorder = Recorder()
        with ReplayServer(_calls_then_answer(TWO_CALLS)) as server:
            loop = tool_loop_stream(
                client(server), MESSAGES, {"get_weather": _weather_or_fail}, model="m", observers=[recorder]
            )
            for event in loop:
                if event.type == "tool_calls.function.result":
                    break
            loop.close()
            requests = len(server.requests)
        assert requests == 1
        assert (recorder.completed, recorder.errors) == (0, [])
        with pytest.raises(StreamContractError, match="has not answered"):
            _ = loop.result

    def test_the_arguments_are_checked_when_it_is_called(self) -> None:
        """Before any iteration: the wrong client, a bad step limit."""

        def get_weather(city: str) -> str:
            return city

        with pytest.raises(TypeError, match=r"^tool_loop_stream needs openai\.OpenAI.*atool_loop_stream"):
            tool_loop_stream(
                openai.AsyncOpenAI(api_key="x"), MESSAGES, {"get_weather": get_weather}, model="m"
            )  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="max_steps must be at least 1"):
            atool_loop_stream(
                openai.AsyncOpenAI(api_key="x"),
                MESSAGES,
                {"get_weather": get_weather},
                model="m",
                max_steps=0,
            )

    async def test_the_async_stream_yields_the_results_and_closing_cancels_running_tools(self) -> None:
        """Iterated to its end it has the results; closed while a tool runs, the tool is cancelled."""
        async with ReplayServer(_calls_then_answer(TWO_CALLS)) as server:
            async with atool_loop_stream(
                aclient(server), MESSAGES, {"get_weather": _weather_or_fail}, model="m"
            ) as loop:
                events = [event async for event in loop]
            assert [result.content for result in _results(events)] == [
                '{"city":"Paris","sky":"sunny"}',
                "Error: LookupError: no station in Oslo",
            ]
            assert loop.result.content == ANSWER

            started, cancelled = asyncio.Event(), asyncio.Event()

            async def slow(city: str, unit: str = "celsius") -> str:
                started.set()
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    cancelled.set()
                    raise
                return "late"

            before = len(server.requests)
            loop = atool_loop_stream(aclient(server), MESSAGES, {"get_weather": slow}, model="m")
            async for event in loop:
                if event.type == "tool_calls.function.arguments.done":
                    await asyncio.wait_for(started.wait(), timeout=5)
                    break
            await loop.close()
            assert cancelled.is_set()
            assert len(server.requests) == before + 1


class _Closable(Recorder):
    """A recorder that also counts ``close()`` calls (what an abandoned stream tells a sink)."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


class TestToolLoopStreamEnds:
    """However a tool loop stream ends, its observers hear of it once, and the partial answer is kept."""

    async def test_a_later_step_failing_before_its_first_chunk_keeps_the_last_step_as_the_partial(
        self,
    ) -> None:
        """Step 2's request is a 404: the error is raised, and the snapshot is step 1's completion, with its
        tool call (the relays' terminal payload carries it), not a 'no chunk' error."""

        def route(body: dict[str, Any]) -> Scenario | None:
            return None if _has_tool_results(body) else Scenario.scripted(None, tool_calls=TWO_CALLS[:1])

        async with ReplayServer(route) as server:
            loop = atool_loop_stream(aclient(server), MESSAGES, {"get_weather": _weather_or_fail}, model="m")
            with pytest.raises(openai.NotFoundError):
                _ = [event async for event in loop]
            snapshot = loop.current_completion_snapshot
        (call,) = snapshot.choices[0].message.tool_calls or []
        assert (call.function.name, json.loads(call.function.arguments)) == ("get_weather", {"city": "Paris"})

    async def test_cancelled_while_its_tools_run_the_observers_are_closed(self) -> None:
        """The reader's task is cancelled after the step's stream ended, while a tool runs: observers are
        closed (as a ChatStream abandoned), the tool is cancelled, no further request is made."""
        started = asyncio.Event()
        cancelled = asyncio.Event()

        async def slow(city: str) -> str:
            """Waits for ever."""
            started.set()
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return city

        step_done = asyncio.Event()

        class StepWatcher(_Closable):
            def on_next(self, value: Any) -> None:
                super().on_next(value)
                if value.type == "completion.done":
                    step_done.set()

        recorder = StepWatcher()
        async with ReplayServer(_calls_then_answer(TWO_CALLS[:1])) as server:
            loop = atool_loop_stream(
                aclient(server), MESSAGES, {"get_weather": slow}, model="m", observers=[recorder]
            )

            async def read() -> None:
                async for _ in loop:
                    pass

            reading = asyncio.ensure_future(read())
            # the tool starts at its call's arguments.done; the window is once the step's stream has ended
            await asyncio.wait_for(asyncio.gather(started.wait(), step_done.wait()), 10)
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)
            requests = len(server.requests)
        assert cancelled.is_set()
        assert requests == 1
        assert (recorder.closed, recorder.completed, recorder.errors) == (1, 0, [])
        assert recorder.types[-1] == "completion.done"

    def test_closing_from_an_observer_ends_the_iteration_quietly(self) -> None:
        """``close()`` called by an observer while the loop runs (a user's stop button): no error, no
        further request, the observers closed once, nothing after the event that asked."""
        holder: dict[str, Any] = {}

        class Stopper(_Closable):
            def on_next(self, value: Any) -> None:
                super().on_next(value)
                if value.type == "tool_calls.function.arguments.done":
                    holder["loop"].close()

        stopper = Stopper()
        with ReplayServer(_calls_then_answer(TWO_CALLS)) as server:
            loop = tool_loop_stream(
                client(server), MESSAGES, {"get_weather": _weather_or_fail}, model="m", observers=[stopper]
            )
            holder["loop"] = loop
            events = list(loop)
            requests = len(server.requests)
        assert requests == 1
        assert stopper.closed == 1
        assert (stopper.completed, stopper.errors) == (0, [])
        assert "tool_calls.function.result" not in [event.type for event in events]
        assert events[-1].type == "tool_calls.function.arguments.done"

    async def test_closing_from_another_task_ends_the_async_iteration_quietly(self) -> None:
        """The async twin closed by another task while the reader waits on the stream: it ends quietly."""
        recorder = _Closable()
        scenario = Scenario.scripted("a long answer " * 40, chunk_size=2, tokens_per_second=200)
        async with ReplayServer(scenario) as server:
            loop = atool_loop_stream(
                aclient(server), MESSAGES, {"get_weather": _weather_or_fail}, model="m", observers=[recorder]
            )
            seen: list[str] = []
            streaming = asyncio.Event()

            async def read() -> None:
                async for event in loop:
                    seen.append(event.type)
                    if event.type == "content.delta":
                        streaming.set()

            reading = asyncio.ensure_future(read())
            await asyncio.wait_for(streaming.wait(), 10)
            await loop.close()
            await asyncio.wait_for(reading, 10)
        assert recorder.closed == 1
        assert "completion.done" not in seen

    def test_observers_get_each_result_as_the_reader_does_not_before(self) -> None:
        """The loop runs no further than the reader has read: at the first result the reader takes, the
        observers have that one result, not the step's second."""
        recorder = Recorder()
        with ReplayServer(_calls_then_answer(TWO_CALLS)) as server:
            loop = tool_loop_stream(
                client(server), MESSAGES, {"get_weather": _weather_or_fail}, model="m", observers=[recorder]
            )
            for event in loop:
                if event.type == "tool_calls.function.result":
                    told = recorder.types.count("tool_calls.function.result")
                    break
            loop.close()
        assert told == 1
