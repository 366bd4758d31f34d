"""recipes.reasoning / show_reasoning: reasoning and answer collected apart, printed apart."""

from __future__ import annotations

import io

import deltaflow
from deltaflow.recipes import areasoning, ashow_reasoning, reasoning, show_reasoning
from deltaflow.replay import ReplayServer, Scenario
from tests.recipes import MESSAGES, aclient, client

THINKING = "The user greets me; I should greet back."


class TestReasoning:
    def test_reasoning_and_content_are_collected_apart(self) -> None:
        """Scripted reasoning and content land in their own fields of the result."""
        with ReplayServer(Scenario.scripted("Hello!", reasoning=THINKING)) as server:
            result = reasoning(deltaflow.stream(client(server), model="m", messages=MESSAGES))
        assert result.reasoning == THINKING
        assert result.content == "Hello!"
        assert result.finish_reason == "stop"
        assert result.completion.choices[0].message.content == "Hello!"

    def test_a_cut_off_while_reasoning_is_returned_not_raised(self) -> None:
        """A stream cut off mid-reasoning yields the reasoning so far and says why it ended."""
        with ReplayServer(Scenario.scripted(None, reasoning=THINKING, finish_reason="length")) as server:
            result = reasoning(deltaflow.stream(client(server), model="m", messages=MESSAGES))
        assert result.reasoning == THINKING
        assert result.content == ""
        assert result.finish_reason == "length"

    def test_show_reasoning_prints_and_collects(self) -> None:
        """The printing variant prints reasoning apart from the answer and returns both texts."""
        with ReplayServer(Scenario.scripted("Hello!", reasoning=THINKING)) as server:
            out = io.StringIO()
            result = show_reasoning(deltaflow.stream(client(server), model="m", messages=MESSAGES), file=out)
        assert out.getvalue() == f"thinking: {THINKING}\nanswer: Hello!\n"
        assert (result.reasoning, result.content) == (THINKING, "Hello!")

    async def test_async_twins(self) -> None:
        """``areasoning`` and ``ashow_reasoning`` collect the same over an AsyncOpenAI client."""
        async with ReplayServer(Scenario.scripted("Hello!", reasoning=THINKING)) as server:
            collected = await areasoning(deltaflow.astream(aclient(server), model="m", messages=MESSAGES))
            out = io.StringIO()
            shown = await ashow_reasoning(
                deltaflow.astream(aclient(server), model="m", messages=MESSAGES), file=out
            )
        assert (collected.reasoning, collected.content) == (THINKING, "Hello!")
        assert (shown.reasoning, shown.content) == (THINKING, "Hello!")
        assert out.getvalue() == f"thinking: {THINKING}\nanswer: Hello!\n"
