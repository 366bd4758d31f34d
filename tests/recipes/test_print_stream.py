"""recipes.print_stream: answers, reasoning, refusals, tool calls and cut-offs all said explicitly."""

from __future__ import annotations

import io
from typing import Any

import pytest
from pydantic import BaseModel

import deltaflow
from deltaflow.errors import ProviderError
from deltaflow.recipes import aprint_stream, print_stream
from deltaflow.replay import Fault, ReplayServer, Scenario
from tests.recipes import MESSAGES, aclient, client


class Answer(BaseModel):
    text: str


def _printed(scenario: Scenario, **stream_params: Any) -> tuple[str, Any]:
    with ReplayServer(scenario) as server:
        out = io.StringIO()
        stream: deltaflow.ChatStream[Any] = deltaflow.stream(
            client(server), model="replay-1", messages=MESSAGES, **stream_params
        )
        completion = print_stream(stream, file=out)
    return out.getvalue(), completion


class _Terminal(io.StringIO):
    """A StringIO that says it is a terminal, as sys.stdout does in a console."""

    def isatty(self) -> bool:
        return True


class TestPrintStream:
    def test_reasoning_is_shown_apart_from_the_answer(self) -> None:
        """Reasoning comes after a ``thinking:`` label, the answer after ``answer:`` on its own line."""
        output, completion = _printed(Scenario.scripted("The answer is 42.", reasoning="Let me think."))
        assert output == "thinking: Let me think.\nanswer: The answer is 42.\n"
        assert completion.choices[0].message.content == "The answer is 42."

    def test_without_reasoning_the_answer_is_printed_bare(self) -> None:
        """A plain answer is printed as it is, ending with a newline."""
        output, _ = _printed(Scenario.scripted("Hello there"))
        assert output == "Hello there\n"

    def test_reasoning_can_be_hidden(self) -> None:
        """``show_reasoning=False`` prints only the answer."""
        with ReplayServer(Scenario.scripted("Hi", reasoning="Hmm")) as server:
            out = io.StringIO()
            print_stream(
                deltaflow.stream(client(server), model="m", messages=MESSAGES), file=out, show_reasoning=False
            )
        assert out.getvalue() == "Hi\n"

    def test_reasoning_is_dimmed_on_a_terminal(self) -> None:
        """On a terminal the reasoning is wrapped in ANSI dim codes; the answer is not."""
        with ReplayServer(Scenario.scripted("Hi", reasoning="Hmm", chunk_size=10)) as server:
            out = _Terminal()
            print_stream(deltaflow.stream(client(server), model="m", messages=MESSAGES), file=out)
        assert out.getvalue() == "\x1b[2mthinking: \x1b[0m\x1b[2mHmm\x1b[0m\nanswer: Hi\n"

    def test_refusal_is_printed_explicitly(self) -> None:
        """A refusal reads ``[refused] <text>`` and is not mistaken for an empty answer."""
        output, completion = _printed(Scenario.scripted(None, refusal="I can't help with that."))
        assert output == "[refused] I can't help with that.\n"
        assert completion.choices[0].message.refusal == "I can't help with that."

    def test_length_cut_off_is_explicit_and_the_completion_returned(self) -> None:
        """``finish_reason="length"`` prints the cut-off notice; the partial completion is returned."""
        output, completion = _printed(Scenario.scripted("Once upon a", finish_reason="length"))
        assert output == "Once upon a\n[cut off: max tokens reached]\n"
        assert completion.choices[0].finish_reason == "length"

    def test_length_cut_off_of_structured_output_raised_mid_stream(self) -> None:
        """With a response_format the cut-off raises mid-stream; the notice and completion still come."""
        output, completion = _printed(
            Scenario.scripted('{"text": "Once', finish_reason="length"), response_format=Answer
        )
        assert output == '{"text": "Once\n[cut off: max tokens reached]\n'
        assert completion.choices[0].message.content == '{"text": "Once'

    def test_content_filter_is_explicit(self) -> None:
        """``finish_reason="content_filter"`` prints the filter notice."""
        output, _ = _printed(Scenario.scripted("Well", finish_reason="content_filter"))
        assert output == "Well\n[stopped: content filter]\n"

    def test_empty_answer_is_never_silent(self) -> None:
        """An answer with no content says so."""
        output, _ = _printed(Scenario.scripted(""))
        assert output == "[empty answer]\n"

    def test_reasoning_without_an_answer_says_the_answer_is_empty(self) -> None:
        """Reasoning alone is not an answer: the empty-answer notice follows it."""
        output, _ = _printed(Scenario.scripted(None, reasoning="Hmm"))
        assert output == "thinking: Hmm\n[empty answer]\n"

    def test_tool_calls_are_printed(self) -> None:
        """Each tool call reads ``[tool call] name(arguments)`` on a line of its own."""
        scenario = Scenario.scripted(
            "Let me check.",
            tool_calls=[
                {"name": "get_weather", "arguments": {"city": "Paris"}},
                {"name": "get_time", "arguments": {}},
            ],
        )
        output, _ = _printed(scenario)
        assert output == (
            'Let me check.\n[tool call] get_weather({"city": "Paris"})\n[tool call] get_time({})\n'
        )

    def test_a_provider_error_is_printed_then_raised(self) -> None:
        """A mid-stream provider error is printed as ``[error]`` and raised, the line ended first."""
        scenario = Scenario.scripted("Hello world", fault=Fault.error_after(3, message="overloaded"))
        with ReplayServer(scenario) as server:
            out = io.StringIO()
            stream: deltaflow.ChatStream[Any] = deltaflow.stream(client(server), model="m", messages=MESSAGES)
            with pytest.raises(ProviderError):
                print_stream(stream, file=out)
        assert out.getvalue() == "Hello wo\n[error] overloaded\n"

    async def test_async_twin_prints_the_same(self) -> None:
        """``aprint_stream`` prints an AsyncChatStream exactly as ``print_stream`` prints a ChatStream."""
        async with ReplayServer(Scenario.scripted("The answer", reasoning="Hmm")) as server:
            out = io.StringIO()
            stream: deltaflow.AsyncChatStream[Any] = deltaflow.astream(
                aclient(server), model="m", messages=MESSAGES
            )
            completion = await aprint_stream(stream, file=out)
        assert out.getvalue() == "thinking: Hmm\nanswer: The answer\n"
        assert completion.choices[0].message.content == "The answer"

    async def test_async_twin_returns_a_cut_off_completion(self) -> None:
        """``aprint_stream`` prints the cut-off notice and returns the completion too."""
        async with ReplayServer(Scenario.scripted("Once", finish_reason="length")) as server:
            out = io.StringIO()
            stream: deltaflow.AsyncChatStream[Any] = deltaflow.astream(
                aclient(server), model="m", messages=MESSAGES
            )
            completion = await aprint_stream(stream, file=out)
        assert out.getvalue() == "Once\n[cut off: max tokens reached]\n"
        assert completion.choices[0].finish_reason == "length"
