"""``reasoning`` / ``show_reasoning``: a reasoning model's thinking kept apart from its answer."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, TextIO

from openai.types.chat import ParsedChatCompletion

from deltaflow.events import BaseEvent, ContentDelta, ReasoningDelta
from deltaflow.pipeline import AsyncChatStream, ChatStream
from deltaflow.recipes._print_stream import adrain, aprint_stream, drain, print_stream

__all__ = ["ReasoningResult", "areasoning", "ashow_reasoning", "reasoning", "show_reasoning"]


@dataclass(frozen=True, slots=True)
class ReasoningResult:
    """A completion's reasoning and answer, apart.

    Attributes:
        reasoning: the reasoning text of choice 0 (DeepSeek / Qwen / vLLM ``reasoning_content``,
            OpenRouter / Groq ``reasoning``, as the dialect normalised it); empty when none came.
        content: the answer text of choice 0; empty when there was none (a tool call, a refusal, a
            cut-off while still reasoning).
        completion: the final completion.
        finish_reason: why choice 0 ended: ``stop``, ``length`` (cut off, possibly mid-reasoning),
            ``content_filter``, ``tool_calls``...; None when the stream had no choice.
    """

    reasoning: str
    content: str
    completion: ParsedChatCompletion[Any]
    finish_reason: str | None


class _Collector:
    """Gathers choice 0's reasoning and content deltas, each into its own text."""

    def __init__(self) -> None:
        self._reasoning: list[str] = []
        self._content: list[str] = []

    def handle(self, event: BaseEvent) -> None:
        if isinstance(event, ReasoningDelta) and event.choice_index == 0:
            self._reasoning.append(event.delta)
        elif isinstance(event, ContentDelta) and event.choice_index == 0:
            self._content.append(event.delta)

    def result(self, completion: ParsedChatCompletion[Any]) -> ReasoningResult:
        choice = next((choice for choice in completion.choices if choice.index == 0), None)
        return ReasoningResult(
            reasoning="".join(self._reasoning),
            content="".join(self._content),
            completion=completion,
            finish_reason=choice.finish_reason if choice is not None else None,
        )


def reasoning(stream: ChatStream[Any]) -> ReasoningResult:
    """Consume a stream, keeping the reasoning apart from the answer.

    A cut-off (``finish_reason="length"``, common while a model is still reasoning) or a content
    filter is not raised: the result holds what came and says why it ended. Other errors are raised.
    The stream is closed on return.

    Example::

        import openai
        import deltaflow
        from deltaflow.recipes import reasoning

        client = openai.OpenAI(base_url="https://api.deepseek.com", api_key="...")
        messages = [{"role": "user", "content": "Is 1001 prime?"}]
        result = reasoning(deltaflow.stream(client, model="deepseek-reasoner", messages=messages))
        print("thought for", len(result.reasoning), "characters")
        print(result.content)                       # the answer alone
        assert result.finish_reason == "stop"

    Args:
        stream: the stream, e.g. ``deltaflow.stream(client, ...)``; consumed and closed.

    Returns:
        The reasoning, the answer, the final completion and the finish reason.
    """
    collector = _Collector()
    return collector.result(drain(stream, collector.handle))


async def areasoning(stream: AsyncChatStream[Any]) -> ReasoningResult:
    """The async twin of ``reasoning``, for ``deltaflow.astream(...)``.

    Example::

        import openai
        import deltaflow
        from deltaflow.recipes import areasoning

        async def ask(question: str) -> str:
            client = openai.AsyncOpenAI(base_url="https://api.groq.com/openai/v1", api_key="...")
            messages = [{"role": "user", "content": question}]
            stream = deltaflow.astream(client, model="qwen/qwen3-32b", messages=messages)
            result = await areasoning(stream)
            return result.content

    Args:
        stream: the stream; consumed and closed.

    Returns:
        The reasoning, the answer, the final completion and the finish reason.
    """
    collector = _Collector()
    return collector.result(await adrain(stream, collector.handle))


def show_reasoning(stream: ChatStream[Any], *, file: TextIO | None = None) -> ReasoningResult:
    """Print a stream as ``print_stream`` does, reasoning shown apart, and return both texts.

    The reasoning is printed after ``thinking:`` (dimmed on a terminal), then the answer after
    ``answer:``, with ``print_stream``'s notices for refusals, tool calls, cut-offs and empty answers.

    Example::

        import openai
        import deltaflow
        from deltaflow.recipes import show_reasoning

        client = openai.OpenAI(base_url="https://api.deepseek.com", api_key="...")
        messages = [{"role": "user", "content": "Is 1001 prime?"}]
        result = show_reasoning(deltaflow.stream(client, model="deepseek-reasoner", messages=messages))
        # thinking: 1001 = 7 * 11 * 13, so ...
        # answer: No: 1001 = 7 * 11 * 13.
        messages.append({"role": "assistant", "content": result.content})  # not the reasoning

    Args:
        stream: the stream; consumed and closed.
        file: where to print; ``sys.stdout`` (as of the call) by default.

    Returns:
        The reasoning, the answer, the final completion and the finish reason.
    """
    collector = _Collector()
    # the collector rides on the stream's own callbacks, so print_stream drives both in one pass
    stream.on("reasoning.delta", collector.handle).on("content.delta", collector.handle)
    completion = print_stream(stream, file=sys.stdout if file is None else file, show_reasoning=True)
    return collector.result(completion)


async def ashow_reasoning(stream: AsyncChatStream[Any], *, file: TextIO | None = None) -> ReasoningResult:
    """The async twin of ``show_reasoning``.

    Example::

        import openai
        import deltaflow
        from deltaflow.recipes import ashow_reasoning

        async def main() -> None:
            client = openai.AsyncOpenAI(base_url="https://api.deepseek.com", api_key="...")
            messages = [{"role": "user", "content": "Is 1001 prime?"}]
            stream = deltaflow.astream(client, model="deepseek-reasoner", messages=messages)
            result = await ashow_reasoning(stream)
            print(result.completion.usage)

    Args:
        stream: the stream; consumed and closed.
        file: where to print; ``sys.stdout`` (as of the call) by default.

    Returns:
        The reasoning, the answer, the final completion and the finish reason.
    """
    collector = _Collector()
    stream.on("reasoning.delta", collector.handle).on("content.delta", collector.handle)
    completion = await aprint_stream(stream, file=sys.stdout if file is None else file, show_reasoning=True)
    return collector.result(completion)
