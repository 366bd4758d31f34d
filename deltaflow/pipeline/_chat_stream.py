"""``ChatStream`` / ``AsyncChatStream``: openai's stream-helper surface over the operator chain."""

from __future__ import annotations

import inspect
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from types import TracebackType
from typing import Any, Generic, Self, TypeVar, cast, get_args

from openai.types.chat import ParsedChatCompletion
from reactivex import abc
from reactivex import compose as rx_compose

from deltaflow.dialects import Dialect, get_dialect
from deltaflow.errors import ContentFilterFinishReasonError, LengthFinishReasonError, StreamContractError
from deltaflow.events import BaseEvent, CompletionDone, EventType
from deltaflow.operators import RefusalMode, normalize, to_events
from deltaflow.pipeline._driver import Chain, Driver

__all__ = ["EVENT_ALIASES", "AsyncChatStream", "ChatStream"]

ResponseFormatT = TypeVar("ResponseFormatT")

EVENT_ALIASES = {
    "tool_calls.delta": "tool_calls.function.arguments.delta",
    "tool_calls.done": "tool_calls.function.arguments.done",
}
_NOT_POSITIONAL = frozenset({"type", "choice_index"})


def _build_chain(  # noqa: PLR0917 - mirrors the facades' keyword parameters
    tools: Iterable[Mapping[str, Any]] | None,
    response_format: object,
    dialect: str | Dialect | None,
    refusals: RefusalMode,
    parsed_deltas: bool,
    parsed_done: bool,
) -> Chain:
    events = to_events(
        tools=tools,
        response_format=response_format,
        refusals=refusals,
        parsed_deltas=parsed_deltas,
        parsed_done=parsed_done,
    )
    chosen = get_dialect(dialect if dialect is not None else "generic")
    if not chosen.steps:
        # OpenAI's own dialect needs no normalisation: no layer at all on the hot path
        return events
    return rx_compose(normalize(chosen), events)


class _Handler:
    """A callback registered with ``.on``: gets the event, or its fields positionally."""

    __slots__ = ("callback", "positional")

    def __init__(self, callback: Callable[..., Any]) -> None:
        self.callback = callback
        self.positional = _positional_count(callback)

    def arguments(self, event: BaseEvent) -> tuple[Any, ...]:
        if self.positional <= 1:
            return (event,)
        names = [name for name in type(event).model_fields if name not in _NOT_POSITIONAL]
        return tuple(getattr(event, name) for name in names[: self.positional])


def _positional_count(callback: Callable[..., Any]) -> int:
    try:
        parameters = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(parameter.kind is inspect.Parameter.VAR_POSITIONAL for parameter in parameters):
        return 1
    return sum(1 for parameter in parameters if parameter.kind in kinds)


class _StreamCore(Generic[ResponseFormatT]):
    """What the sync and async facades share: handlers, the final completion, the snapshot."""

    def __init__(self, chain: Chain) -> None:
        self._driver = Driver(chain)
        self._handlers: dict[str, list[_Handler]] = {}
        self._observers: list[abc.ObserverBase[BaseEvent]] = []
        self._final: ParsedChatCompletion[object] | None = None
        self._closed = False
        # the sync facade's batch being handed out with no handler to call, and what a handler
        # added meanwhile took of it (see _listen)
        self._batch: Iterator[BaseEvent] | None = None
        self._rest: list[BaseEvent] = []

    def subscribe(self, observer: abc.ObserverBase[BaseEvent]) -> Self:
        """Hand every event to ``observer`` (a sink) as the stream is consumed, then its end.

        The observer gets ``on_next`` for each event, then ``on_completed`` or ``on_error``. Wrap
        several sinks in ``sinks.fan_out(...)`` so that one failing sink cannot stop the others.
        """
        self._observers.append(observer)
        self._listen()
        return self

    def on(self, event_type: str, callback: Callable[..., Any]) -> Self:
        """Call ``callback`` for each event of ``event_type`` as the stream is consumed.

        The callback gets the event; a callback with more positional parameters gets the event's
        fields in order instead (``content.delta`` → ``delta, snapshot``). ``tool_calls.delta`` and
        ``tool_calls.done`` are short for the ``tool_calls.function.arguments.*`` events. Returns the
        stream, so calls chain.
        """
        name = EVENT_ALIASES.get(event_type, event_type)
        known = get_args(EventType)
        if name not in known:
            raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(known)}")
        self._handlers.setdefault(name, []).append(_Handler(callback))
        self._listen()
        return self

    @property
    def current_completion_snapshot(self) -> ParsedChatCompletion[object]:
        """The completion accumulated so far."""
        state = self._driver.state
        if state is None:
            raise StreamContractError("no chunk has arrived yet")
        return state.current()

    def _listen(self) -> None:
        """A handler or observer was added: events of the chunk being handed out go through it.

        When a chunk's events are being handed out with nothing to call, the ones not handed out
        yet are taken here, and the facade's loop hands them out with the handlers.
        """
        if self._batch is not None:
            self._rest.extend(self._batch)  # exhausts the iterator: the fast hand-out stops there

    def _keep_final(self, event: BaseEvent) -> None:
        """Keep the final completion when ``event`` is ``completion.done``."""
        if type(event) is CompletionDone:
            self._final = event.completion

    def _handlers_for(self, event: BaseEvent) -> list[_Handler] | tuple[()]:
        """Hand ``event`` to the subscribed observers; return its ``.on`` handlers."""
        for observer in self._observers:
            observer.on_next(event)
        if not self._handlers:
            return ()
        return self._handlers.get(getattr(event, "type", ""), ())

    def _release_observers(self) -> None:
        """A stream closed before its end: observers that hold resources (files) get ``close()``."""
        observers, self._observers = self._observers, []
        for observer in observers:
            close = getattr(observer, "close", None)
            if callable(close):
                close()

    def _end_observers(self) -> None:
        observers, self._observers = self._observers, []
        for observer in observers:
            if self._driver.error is not None:
                observer.on_error(self._driver.error)  # type: ignore[arg-type]
            else:
                observer.on_completed()

    def _final_completion(self) -> ParsedChatCompletion[ResponseFormatT]:
        if self._driver.error is not None:
            raise self._driver.error
        if self._final is None:
            raise StreamContractError("the stream has not finished")
        # as openai's parse_chat_completion: a cut or filtered choice is an error at the end
        for choice in self._final.choices:
            if choice.finish_reason == "length":
                raise LengthFinishReasonError(completion=self._final)
            if choice.finish_reason == "content_filter":
                raise ContentFilterFinishReasonError(completion=self._final)
        return cast("ParsedChatCompletion[ResponseFormatT]", self._final)


class ChatStream(_StreamCore[ResponseFormatT]):
    """The stream helper over any iterable of chunks: a drop-in for openai's ``ChatCompletionStream``.

    The driver pulls one chunk, pushes it through the operators, hands out the events it produced,
    and only then pulls the next. Closing (or leaving the ``with`` block) closes the source, and with
    it an HTTP response.

    Example::

        with ChatStream(chunks, response_format=Weather) as stream:
            for event in stream:
                if event.type == "content.delta":
                    print(event.delta, end="")
        weather = stream.get_final_completion().choices[0].message.parsed
    """

    def __init__(
        self,
        chunks: Iterable[Any],
        *,
        tools: Iterable[Mapping[str, Any]] | None = None,
        response_format: type[ResponseFormatT] | Mapping[str, Any] | None = None,
        dialect: str | Dialect | None = None,
        refusals: RefusalMode = "keep",
        parsed_deltas: bool = True,
        parsed_done: bool = False,
    ) -> None:
        super().__init__(_build_chain(tools, response_format, dialect, refusals, parsed_deltas, parsed_done))
        self._chunks = chunks
        self._source: Iterator[Any] | None = None
        self._events: Generator[BaseEvent, None, None] = self._generate()

    def __iter__(self) -> Iterator[BaseEvent]:
        return self._events

    def __next__(self) -> BaseEvent:
        return next(self._events)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop: close the source (an HTTP response, a generator) and the operator chain.

        Safe from an ``.on`` handler or another thread while the stream is being iterated: the
        response is closed at once and the iteration ends quietly at its next step.
        """
        self._closed = True
        # first, and here: the observers see why the caller closes (an exception it is handling)
        self._release_observers()
        if getattr(self._events, "gi_running", False):
            self._close_source()
            return
        self._events.close()
        self._close_source()
        self._driver.dispose()

    def until_done(self) -> Self:
        """Consume the whole stream (calling ``.on`` handlers on the way)."""
        for _ in self._events:
            pass
        return self

    def get_final_completion(self) -> ParsedChatCompletion[ResponseFormatT]:
        """Wait for the end and return the final completion, parsed as openai's helper does.

        Raises:
            LengthFinishReasonError: a choice finished because of the token limit.
            ContentFilterFinishReasonError: a choice was stopped by the content filter.
            DeltaflowError: the stream failed; ``.completion`` holds what arrived.
        """
        self.until_done()
        return self._final_completion()

    def _generate(self) -> Generator[BaseEvent, None, None]:
        driver = self._driver
        self._source = iter(self._chunks)
        # bound once: this loop runs per chunk. The chain appends to `events`, emptied after each chunk
        pull, push, events = self._source.__next__, driver.push, driver.events
        try:
            while not driver.finished:
                try:
                    chunk = pull()
                except StopIteration:
                    driver.complete()
                except Exception as exc:  # noqa: BLE001 - the source's failure ends the stream
                    if self._closed:
                        # closed from a handler or another thread: the read failed because of it
                        self._release_observers()
                        return
                    driver.fail(exc)
                else:
                    push(chunk)
                if driver.state is None:
                    driver.find_state(events)
                last = driver.completed  # the final events, completion.done among them
                remaining = events
                if not (self._handlers or self._observers or last):
                    # nothing to call: the list's own iterator hands the events out. A handler or
                    # observer added meanwhile takes what it has not handed out yet (see _listen)
                    self._batch = batch = iter(events)
                    yield from batch
                    remaining = self._rest
                for event in remaining:
                    if last:
                        self._keep_final(event)
                    # looked up per event: a handler may add another one mid-chunk
                    if self._handlers or self._observers:
                        for handler in self._handlers_for(event):
                            handler.callback(*handler.arguments(event))
                    yield event
                remaining.clear()
                events.clear()
                if self._closed:
                    self._release_observers()
                    return
            self._end_observers()
            if driver.error is not None:
                raise driver.error
        finally:
            # left unfinished without close() (garbage collected, cancelled): observers still hear of it
            self._release_observers()
            self._close_source()

    def _close_source(self) -> None:
        for target in (self._source, self._chunks):
            if getattr(target, "gi_running", False):
                continue  # blocked in a read on another thread: closing the iterable below ends it
            close = getattr(target, "close", None)
            if callable(close):
                close()


class AsyncChatStream(_StreamCore[ResponseFormatT]):
    """The async twin of ``ChatStream``, over an async iterable of chunks.

    Example::

        async with AsyncChatStream(chunks) as stream:
            async for event in stream:
                ...
            completion = await stream.get_final_completion()
    """

    def __init__(
        self,
        chunks: AsyncIterable[Any],
        *,
        tools: Iterable[Mapping[str, Any]] | None = None,
        response_format: type[ResponseFormatT] | Mapping[str, Any] | None = None,
        dialect: str | Dialect | None = None,
        refusals: RefusalMode = "keep",
        parsed_deltas: bool = True,
        parsed_done: bool = False,
    ) -> None:
        super().__init__(_build_chain(tools, response_format, dialect, refusals, parsed_deltas, parsed_done))
        self._chunks = chunks
        self._source: AsyncIterator[Any] | None = None
        self._events: AsyncGenerator[BaseEvent, None] = self._generate()

    def __aiter__(self) -> AsyncIterator[BaseEvent]:
        return self._events

    async def __anext__(self) -> BaseEvent:
        return await anext(self._events)

    async def __aenter__(self) -> Self:
        return self

    def __await__(self) -> Generator[Any, None, Self]:
        # `async with await deltaflow.astream(...)` as well as `async with deltaflow.astream(...)`
        async def itself() -> Self:
            return self

        return itself().__await__()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop: close the source (an HTTP response, a generator) and the operator chain.

        Safe from a handler or another task while the stream is being iterated: the response is
        closed at once and the iteration ends quietly at its next step.
        """
        self._closed = True
        # first, and here: the observers see why the caller closes (an exception it is handling)
        self._release_observers()
        if getattr(self._events, "ag_running", False):
            await self._close_source()
            return
        await self._events.aclose()
        await self._close_source()
        self._driver.dispose()

    async def until_done(self) -> Self:
        """Consume the whole stream (calling ``.on`` handlers, awaiting async ones)."""
        async for _ in self._events:
            pass
        return self

    async def get_final_completion(self) -> ParsedChatCompletion[ResponseFormatT]:
        """Wait for the end and return the final completion (see ``ChatStream.get_final_completion``)."""
        await self.until_done()
        return self._final_completion()

    async def _generate(self) -> AsyncGenerator[BaseEvent, None]:
        driver = self._driver
        self._source = aiter(self._chunks)
        try:
            while not driver.finished:
                try:
                    chunk = await anext(self._source)
                except StopAsyncIteration:
                    driver.complete()
                except Exception as exc:  # noqa: BLE001 - the source's failure ends the stream
                    if self._closed:
                        # closed from a handler or another task: the read failed because of it
                        self._release_observers()
                        return
                    driver.fail(exc)
                else:
                    driver.push(chunk)
                last = driver.completed
                for event in driver.take():
                    if last:
                        self._keep_final(event)
                    if self._handlers or self._observers:
                        for handler in self._handlers_for(event):
                            result = handler.callback(*handler.arguments(event))
                            if inspect.isawaitable(result):
                                await result
                    yield event
                if self._closed:
                    self._release_observers()
                    return
            self._end_observers()
            if driver.error is not None:
                raise driver.error
        finally:
            # left unfinished without close() (garbage collected, cancelled): observers still hear of it
            self._release_observers()
            await self._close_source()

    async def _close_source(self) -> None:
        for target in (self._source, self._chunks):
            if getattr(target, "ag_running", False):
                continue  # suspended in a read in another task: closing the iterable below ends it
            close = getattr(target, "aclose", None) or getattr(target, "close", None)
            if callable(close):
                result = close()
                if inspect.isawaitable(result):
                    await result
