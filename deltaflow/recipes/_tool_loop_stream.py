"""``tool_loop_stream``: a tool loop's events pulled one at a time, as a relay reads a stream."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import openai
from openai.types.chat import ParsedChatCompletion
from reactivex import abc

from deltaflow.events import BaseEvent, Event
from deltaflow.recipes._tool_loop import (
    Conversation,
    ToolEntry,
    ToolLoopResult,
    arun_steps,
    prepare,
    run_steps,
)

__all__ = ["AsyncToolLoopStream", "ToolLoopStream", "atool_loop_stream", "tool_loop_stream"]


def tool_loop_stream(
    client: openai.OpenAI,
    messages: Iterable[Mapping[str, Any]],
    tools: Mapping[str, ToolEntry],
    *,
    model: str,
    max_steps: int = 8,
    observers: Sequence[abc.ObserverBase[BaseEvent]] = (),
    **create_params: Any,
) -> ToolLoopStream:
    """``tool_loop`` as a stream: iterate it for every step's events and each call's result.

    The loop advances as it is iterated: the events are those ``tool_loop``'s observers see, in the
    same order (each step's events, then one ``tool_calls.function.result`` per call), and the loop
    runs no further than the reader has read. Closing it closes the running step's HTTP response.
    ``relay_endpoint`` and ``durable_endpoint`` serve it as they serve a ``ChatStream``: return it
    from ``make_stream`` (prefer ``atool_loop_stream`` there).

    Example::

        with tool_loop_stream(client, messages, {"get_weather": get_weather}, model="gpt-4o-mini") as loop:
            for event in loop:
                if event.type == "tool_calls.function.result":
                    print(event.name, "->", event.content)
        print(loop.result.content)

    Args: as ``tool_loop``.

    Raises:
        ToolLoopLimitError: while iterating, when the model still asked for tools after ``max_steps``.
        TypeError: as ``tool_loop``, when called.
    """
    conversation = prepare(
        client, messages, tools, max_steps, observers,
        asynchronous=False, caller="tool_loop_stream", instead="atool_loop_stream(client, ...)",
    )  # fmt: skip
    return ToolLoopStream(run_steps(conversation, client, model, create_params), conversation)


def atool_loop_stream(
    client: openai.AsyncOpenAI,
    messages: Iterable[Mapping[str, Any]],
    tools: Mapping[str, ToolEntry],
    *,
    model: str,
    max_steps: int = 8,
    observers: Sequence[abc.ObserverBase[BaseEvent]] = (),
    **create_params: Any,
) -> AsyncToolLoopStream:
    """The async twin of ``tool_loop_stream``, over ``atool_loop``: a step's tools run concurrently.

    Example::

        def make_stream(body: dict) -> AsyncToolLoopStream:
            return atool_loop_stream(client, body["messages"], {"get_weather": get_weather}, model="gpt-4o")

        app = relay_endpoint(make_stream, wire="ai-sdk")  # tool outputs reach useChat

    Args: as ``atool_loop``.

    Raises:
        ToolLoopLimitError: while iterating, when the model still asked for tools after ``max_steps``.
        TypeError: as ``atool_loop``, when called.
    """
    conversation = prepare(
        client, messages, tools, max_steps, observers,
        asynchronous=True, caller="atool_loop_stream", instead="tool_loop_stream(client, ...)",
    )  # fmt: skip
    return AsyncToolLoopStream(arun_steps(conversation, client, model, create_params), conversation)


class _LoopState:
    """What both loop streams tell of their conversation."""

    def __init__(self, conversation: Conversation) -> None:
        self._conversation = conversation

    @property
    def current_completion_snapshot(self) -> ParsedChatCompletion[Any]:
        """The running step's completion so far (the last step's between steps).

        Raises:
            StreamContractError: no chunk has arrived yet.
        """
        return self._conversation.snapshot()

    @property
    def result(self) -> ToolLoopResult:
        """How the loop ended, once the stream is consumed.

        Raises:
            StreamContractError: the model has not answered (yet).
        """
        return self._conversation.result()


class ToolLoopStream(_LoopState):
    """The stream ``tool_loop_stream`` returns: iterate it once; see there."""

    def __init__(self, events: Generator[Event, None, None], conversation: Conversation) -> None:
        super().__init__(conversation)
        self._events = events

    def __iter__(self) -> Iterator[Event]:
        return self._events

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the loop: the running step's stream is closed, no further request is made.

        Safe from an observer or another thread while the loop is being iterated: the iteration then
        ends quietly at its next step.
        """
        if getattr(self._events, "gi_running", False):
            self._conversation.stop()
        else:
            self._events.close()


class AsyncToolLoopStream(_LoopState):
    """The stream ``atool_loop_stream`` returns: iterate it once with ``async for``; see there."""

    def __init__(self, events: AsyncGenerator[Event, None], conversation: Conversation) -> None:
        super().__init__(conversation)
        self._events = events

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._events

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop the loop: the running step's stream is closed and its tools cancelled.

        Safe from a handler or another task while the loop is being iterated: the iteration then
        ends quietly at its next step.
        """
        if getattr(self._events, "ag_running", False):
            await self._conversation.astop()
        else:
            await self._events.aclose()
