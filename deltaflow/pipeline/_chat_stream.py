"""``ChatStream`` / ``AsyncChatStream``: openai's stream-helper surface over the operator chain."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import weakref
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
from typing import Any, Generic, Literal, Self, TypeAlias, cast, get_args, overload

from openai.types.chat import ParsedChatCompletion
from reactivex import abc
from reactivex import compose as rx_compose
from typing_extensions import TypeVar

from deltaflow._arguments import checked_stream_arguments
from deltaflow._tools import is_rich_response_format
from deltaflow.dialects import Dialect, get_dialect
from deltaflow.errors import (
    ContentFilterFinishReasonError,
    LengthFinishReasonError,
    ParseError,
    StreamClosedError,
    StreamContractError,
    ToolArgumentsError,
)
from deltaflow.events import (
    EVENT_ALIASES,
    BaseEvent,
    ChoiceDone,
    ChunkReceived,
    CompletionDone,
    ContentDelta,
    ContentDone,
    ContentParsedDelta,
    ContentParsedDone,
    ErrorReported,
    Event,
    EventType,
    LogprobsContentDelta,
    LogprobsContentDone,
    LogprobsRefusalDelta,
    LogprobsRefusalDone,
    ReasoningDelta,
    ReasoningDone,
    RefusalDelta,
    RefusalDone,
    ToolCallDelta,
    ToolCallDone,
    UsageReported,
)
from deltaflow.operators import RefusalMode, normalize, to_events
from deltaflow.pipeline._driver import Chain, Driver

__all__ = ["AsyncChatStream", "ChatStream", "ParseErrors"]

# as openai's: a stream without a response_format parses nothing (its parsed is None)
ResponseFormatT = TypeVar("ResponseFormatT", default=None)
FieldsCallback: TypeAlias = (
    Callable[[Any, Any], object] | Callable[[Any, Any, Any], object] | Callable[[Any, Any, Any, Any], object]
)
"""An ``.on`` callback that takes an event's fields in order instead of the event."""
ParseErrors: TypeAlias = Literal["raise", "keep"]
"""What the facade does when content or tool arguments fail to parse: ``raise`` a ``ParseError`` at the
end of the stream (openai's helper raises too), or ``keep`` going with ``parsed`` None."""

_NOT_POSITIONAL = frozenset({"type", "choice_index"})


def _build_chain(  # noqa: PLR0917 - mirrors the facades' keyword parameters
    tools: Iterable[Mapping[str, Any]] | None,
    response_format: object,
    dialect: str | Dialect | None,
    refusals: RefusalMode,
    parsed_deltas: bool,
    parsed_done: bool,
) -> Chain:
    tools = checked_stream_arguments(tools, response_format)
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
        self.positional = _required_positional_count(callback)

    def __call__(self, event: BaseEvent) -> Any:
        if self.positional <= 1:
            return self.callback(event)
        names = [name for name in type(event).model_fields if name not in _NOT_POSITIONAL]
        return self.callback(*(getattr(event, name) for name in names[: self.positional]))


def _required_positional_count(callback: Callable[..., Any]) -> int:
    """How many positional parameters ``callback`` requires (those with a default are optional)."""
    try:
        parameters = inspect.signature(callback).parameters.values()
    except (TypeError, ValueError):
        return 1
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return sum(
        1
        for parameter in parameters
        if parameter.kind in kinds and parameter.default is inspect.Parameter.empty
    )


def _is_async_callable(callback: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(callback):
        return True
    call = getattr(callback, "__call__", None)  # noqa: B004 - an object with an async __call__
    return call is not None and inspect.iscoroutinefunction(call)


class _StreamCore(Generic[ResponseFormatT]):
    """The one core of the sync and async facades: it runs the chain and hands out each chunk's events.

    The twins differ only in how they pull a chunk (``next`` or ``await anext``) and in awaiting
    async handlers: ``_chunk_handed_out`` gives a chunk's events (keeping what the facade needs of
    them), ``_notify`` hands one to the observers and handlers before the twin's loop yields it,
    and ``_finish`` is the one place the stream ends.
    """

    def __init__(
        self, chain: Chain, parse_errors: ParseErrors, response_format: object, *, handlers_may_be_async: bool
    ) -> None:
        if parse_errors not in ("raise", "keep"):
            raise ValueError(f"parse_errors must be 'raise' or 'keep', not {parse_errors!r}")
        self._driver = Driver(chain)
        self._chunk_events = self._driver.events
        """The list the chain appends a chunk's events to (emptied once they are handed out)."""
        self._parse_errors = parse_errors
        # as openai: content is parsed (and its failure raised) only into a type, not for a request dict
        self._content_is_parsed = is_rich_response_format(response_format)
        self._handlers_may_be_async = handlers_may_be_async
        self._handlers: dict[str, list[_Handler]] = {}
        self._observers: list[abc.ObserverBase[BaseEvent]] = []
        self._listening = False
        """Some handler or observer wants each event: checked per event, so one added mid-chunk
        sees the rest of that chunk."""
        self._awaiting: list[Any] = []
        """What async handlers returned for the event being handed out, for the async twin to await."""
        self._final: ParsedChatCompletion[object] | None = None
        self._latest_chunk: ChunkReceived | None = None
        self._failed_parse: ParseError | None = None
        self._error: BaseException | None = None
        self._finished = False
        self._closed = False

    def subscribe(self, observer: abc.ObserverBase[BaseEvent]) -> Self:
        """Hand every event to ``observer`` (a sink) as the stream is consumed, then its end.

        The observer gets ``on_next`` for each event, then ``on_completed`` or ``on_error``. Wrap
        several sinks in ``sinks.fan_out(...)`` so that one failing sink cannot stop the others.
        """
        self._check_open()
        self._observers.append(observer)
        self._listening = True
        return self

    # one overload per event type: the callback's event is typed (``event.delat`` is an error)
    @overload
    def on(self, event_type: Literal["chunk"], callback: Callable[[ChunkReceived], object]) -> Self: ...
    @overload
    def on(
        self, event_type: Literal["content.delta"], callback: Callable[[ContentDelta], object]
    ) -> Self: ...
    @overload
    def on(self, event_type: Literal["content.done"], callback: Callable[[ContentDone], object]) -> Self: ...
    @overload
    def on(
        self, event_type: Literal["content.parsed.delta"], callback: Callable[[ContentParsedDelta], object]
    ) -> Self: ...
    @overload
    def on(
        self, event_type: Literal["content.parsed.done"], callback: Callable[[ContentParsedDone], object]
    ) -> Self: ...
    @overload
    def on(
        self, event_type: Literal["refusal.delta"], callback: Callable[[RefusalDelta], object]
    ) -> Self: ...
    @overload
    def on(self, event_type: Literal["refusal.done"], callback: Callable[[RefusalDone], object]) -> Self: ...
    @overload
    def on(
        self, event_type: Literal["reasoning.delta"], callback: Callable[[ReasoningDelta], object]
    ) -> Self: ...
    @overload
    def on(
        self, event_type: Literal["reasoning.done"], callback: Callable[[ReasoningDone], object]
    ) -> Self: ...
    @overload
    def on(
        self,
        event_type: Literal["tool_calls.function.arguments.delta", "tool_calls.delta"],
        callback: Callable[[ToolCallDelta], object],
    ) -> Self: ...
    @overload
    def on(
        self,
        event_type: Literal["tool_calls.function.arguments.done", "tool_calls.done"],
        callback: Callable[[ToolCallDone], object],
    ) -> Self: ...
    @overload
    def on(
        self,
        event_type: Literal["logprobs.content.delta"],
        callback: Callable[[LogprobsContentDelta], object],
    ) -> Self: ...
    @overload
    def on(
        self, event_type: Literal["logprobs.content.done"], callback: Callable[[LogprobsContentDone], object]
    ) -> Self: ...
    @overload
    def on(
        self,
        event_type: Literal["logprobs.refusal.delta"],
        callback: Callable[[LogprobsRefusalDelta], object],
    ) -> Self: ...
    @overload
    def on(
        self, event_type: Literal["logprobs.refusal.done"], callback: Callable[[LogprobsRefusalDone], object]
    ) -> Self: ...
    @overload
    def on(self, event_type: Literal["choice.done"], callback: Callable[[ChoiceDone], object]) -> Self: ...
    @overload
    def on(self, event_type: Literal["usage"], callback: Callable[[UsageReported], object]) -> Self: ...
    @overload
    def on(
        self, event_type: Literal["completion.done"], callback: Callable[[CompletionDone], object]
    ) -> Self: ...
    @overload
    def on(self, event_type: Literal["error"], callback: Callable[[ErrorReported], object]) -> Self: ...
    @overload
    def on(self, event_type: str, callback: FieldsCallback) -> Self: ...

    def on(self, event_type: str, callback: Callable[..., object]) -> Self:
        """Call ``callback`` for each event of ``event_type`` as the stream is consumed.

        The callback gets the event; a callback with more required positional parameters gets the
        event's fields in order instead (``content.delta`` → ``delta, snapshot``).
        ``tool_calls.delta`` and ``tool_calls.done`` are short for the
        ``tool_calls.function.arguments.*`` events. Returns the stream, so calls chain.

        Raises:
            ValueError: an unknown event type, or ``tool_calls.function.result`` (``tool_loop`` makes it).
            TypeError: an async callback on a sync ``ChatStream`` (it would never be awaited).
            StreamClosedError: the stream was closed.
        """
        self._check_open()
        name = EVENT_ALIASES.get(event_type, event_type)
        known = get_args(EventType)
        if name not in known:
            raise ValueError(f"unknown event type {event_type!r}; known: {', '.join(known)}")
        if name == "tool_calls.function.result":
            raise ValueError(
                f"a chat stream never makes {event_type!r}: tool_loop's observers see it "
                "(observers=[sinks.callback(on={...})])"
            )
        if not self._handlers_may_be_async and _is_async_callable(callback):
            raise TypeError(
                f"an async callback for {event_type!r} on a sync ChatStream would never be awaited: "
                "use a plain function, or deltaflow.astream / AsyncChatStream"
            )
        self._handlers.setdefault(name, []).append(_Handler(callback))
        self._listening = True
        return self

    @property
    def current_completion_snapshot(self) -> ParsedChatCompletion[object]:
        """The completion accumulated so far (as of the last chunk handed out)."""
        if self._final is not None:
            return self._final
        if self._latest_chunk is None:
            completion = getattr(self._error, "completion", None)
            if completion is not None:
                return completion  # type: ignore[no-any-return]
            raise StreamContractError("no chunk has arrived yet")
        return self._latest_chunk.snapshot

    def _check_open(self) -> None:
        if self._closed and not self._finished:
            raise StreamClosedError("the stream was closed before its end")

    def _chunk_handed_out(self) -> list[BaseEvent]:
        """The events the last chunk produced, to hand out in order, each through ``_notify`` first.

        The twins' loops over it are the one place events are handed out; they clear it after.
        """
        events = self._chunk_events
        if events:
            first = events[0]
            if type(first) is ChunkReceived:
                self._latest_chunk = first  # the chain's chunk event leads the chunk's events
            for event in events:
                if type(event) is ErrorReported:  # rare: an error event
                    self._watch(events)
                    break
            else:
                if self._driver.finished:  # once: the end
                    self._watch(events)
        return events

    def _watch(self, events: list[BaseEvent]) -> None:
        """What the facade keeps of a chunk's events besides the latest chunk: a failed parse, the end."""
        for event in events:
            kind = type(event)
            if kind is ErrorReported and self._raises(event.exception):  # type: ignore[attr-defined]
                self._failed_parse = self._failed_parse or event.exception  # type: ignore[attr-defined]
            elif kind is CompletionDone:
                self._final = event.completion  # type: ignore[attr-defined]

    def _raises(self, error: BaseException | None) -> bool:
        """Whether ``error``, reported by an ``error`` event, fails the stream at its end."""
        if isinstance(error, ToolArgumentsError):
            return True
        return isinstance(error, ParseError) and self._content_is_parsed

    def _notify(self, event: BaseEvent) -> None:
        for observer in self._observers:
            observer.on_next(event)
        for handler in self._handlers.get(event.type, ()):
            result = handler(event)
            if inspect.isawaitable(result):
                if not self._handlers_may_be_async:
                    close = getattr(result, "close", None)
                    if callable(close):
                        close()  # not awaited: closed, so Python does not warn about it
                    raise TypeError(
                        f"a handler for {event.type!r} returned an awaitable on a sync ChatStream"
                    )
                self._awaiting.append(result)

    def _finish(self) -> None:
        """The chain ended and every event was handed out: tell the observers, raise a failure."""
        self._finished = True
        error = self._driver.error
        if error is None and self._failed_parse is not None and self._parse_errors == "raise":
            error = self._failed_parse
            if self._final is not None:
                error.completion = self._final
        self._error = error
        observers, self._observers = self._observers, []
        for observer in observers:
            if error is not None:
                observer.on_error(error)  # type: ignore[arg-type]
            else:
                observer.on_completed()
        if error is not None:
            raise error

    def _stopped_early(self) -> None:
        """The stream was closed before its end: observers that hold resources (files) get ``close()``."""
        observers, self._observers = self._observers, []
        for observer in observers:
            close = getattr(observer, "close", None)
            if callable(close):
                close()

    def _final_completion(self) -> ParsedChatCompletion[ResponseFormatT]:
        if self._error is not None:
            raise self._error
        if self._final is None:
            if self._closed:
                raise StreamClosedError("the stream was closed before its end: there is no final completion")
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
        parse_errors: ParseErrors = "raise",
    ) -> None:
        chain = _build_chain(tools, response_format, dialect, refusals, parsed_deltas, parsed_done)
        super().__init__(chain, parse_errors, response_format, handlers_may_be_async=False)
        self._chunks = chunks
        self._source: Iterator[Any] | None = None
        self._events: Generator[Event, None, None] = self._generate()

    def __iter__(self) -> Iterator[Event]:
        self._check_open()
        return self._events

    def __next__(self) -> Event:
        self._check_open()
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
        response is closed at once and the iteration ends quietly at its next step. Afterwards, a
        stream closed before its end raises ``StreamClosedError`` when used.
        """
        self._closed = True
        # first, and here: the observers see why the caller closes (an exception it is handling)
        self._stopped_early()
        if getattr(self._events, "gi_running", False):
            self._close_source()
            return
        self._events.close()
        self._close_source()
        self._driver.dispose()

    def until_done(self) -> Self:
        """Consume the whole stream (calling ``.on`` handlers on the way)."""
        for _ in self:
            pass
        return self

    def get_final_completion(self) -> ParsedChatCompletion[ResponseFormatT]:
        """Wait for the end and return the final completion, parsed as openai's helper does.

        Raises:
            LengthFinishReasonError: a choice finished because of the token limit.
            ContentFilterFinishReasonError: a choice was stopped by the content filter.
            ParseError: content or tool arguments could not be parsed (unless ``parse_errors="keep"``).
            StreamClosedError: the stream was closed before its end.
            DeltaflowError: the stream failed; ``.completion`` holds what arrived.
        """
        if not self._finished:
            self.until_done()
        return self._final_completion()

    def _generate(self) -> Generator[Event, None, None]:
        driver = self._driver
        self._source = iter(self._chunks)
        pull, push = self._source.__next__, driver.push  # bound once: this loop runs per chunk
        try:
            while not driver.finished:
                try:
                    chunk = pull()
                except StopIteration:
                    driver.complete()
                except Exception as exc:  # noqa: BLE001 - the source's failure ends the stream
                    if self._closed:
                        return  # closed from a handler or another thread: the read failed because of it
                    driver.fail(exc)
                else:
                    push(chunk)
                events = self._chunk_handed_out()
                for event in events:
                    if self._listening:  # looked up per event: a handler may be added mid-chunk
                        self._notify(event)
                    yield event  # type: ignore[misc]  # the chain's events are Events
                events.clear()
                if self._closed:
                    return
            self._finish()
        finally:
            # left unfinished without close() (garbage collected, cancelled): observers still hear of it
            self._stopped_early()
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

    ``.on`` handlers may be async: each is awaited before the event is handed out.

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
        parse_errors: ParseErrors = "raise",
    ) -> None:
        chain = _build_chain(tools, response_format, dialect, refusals, parsed_deltas, parsed_done)
        super().__init__(chain, parse_errors, response_format, handlers_may_be_async=True)
        self._chunks = chunks
        self._source: AsyncIterator[Any] | None = None
        self._collected = False
        self._events: AsyncGenerator[Event, None] = self._generate()
        # what to close should this stream be collected unfinished: held here, not by the stream
        self._opened = _Opened()
        self._abandoned = weakref.finalize(self, _close_abandoned, self._opened)

    def __aiter__(self) -> AsyncIterator[Event]:
        self._check_open()
        return self._events

    async def __anext__(self) -> Event:
        self._check_open()
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
        closed at once and the iteration ends quietly at its next step. Afterwards, a stream
        closed before its end raises ``StreamClosedError`` when used.
        """
        self._closed = True
        # first, and here: the observers see why the caller closes (an exception it is handling)
        self._stopped_early()
        if getattr(self._events, "ag_running", False):
            await self._close_source()
            return
        await self._events.aclose()
        await self._close_source()
        self._driver.dispose()

    async def until_done(self) -> Self:
        """Consume the whole stream (calling ``.on`` handlers, awaiting async ones)."""
        async for _ in self:
            pass
        return self

    async def get_final_completion(self) -> ParsedChatCompletion[ResponseFormatT]:
        """Wait for the end and return the final completion (see ``ChatStream.get_final_completion``)."""
        if not self._finished:
            await self.until_done()
        return self._final_completion()

    async def _generate(self) -> AsyncGenerator[Event, None]:
        driver = self._driver
        self._source = aiter(self._chunks)
        self._opened.loop = asyncio.get_running_loop()
        self._opened.targets[:] = [self._chunks, self._source]
        pull, push = self._source.__anext__, driver.push
        try:
            while not driver.finished:
                try:
                    chunk = await pull()
                except StopAsyncIteration:
                    driver.complete()
                except Exception as exc:  # noqa: BLE001 - the source's failure ends the stream
                    if self._closed:
                        return  # closed from a handler or another task: the read failed because of it
                    driver.fail(exc)
                else:
                    push(chunk)
                events = self._chunk_handed_out()
                for event in events:
                    if self._listening:  # looked up per event: a handler may be added mid-chunk
                        self._notify(event)
                        awaiting = self._awaiting
                        while awaiting:
                            await awaiting.pop(0)
                    yield event  # type: ignore[misc]  # the chain's events are Events
                events.clear()
                if self._closed:
                    return
            self._finish()
        except GeneratorExit:
            if not self._closed:
                # finalised by the garbage collector: the source is closed by _close_abandoned, which
                # kept it (and its generators) out of this collection; closing it from here too
                # would race ("aclose(): asynchronous generator is already running")
                self._collected = True
            raise
        finally:
            # left unfinished without close() (garbage collected, cancelled): observers still hear of it
            self._stopped_early()
            if not self._collected:
                self._opened.targets.clear()
                await self._close_source()

    async def _close_source(self) -> None:
        await _close_in_order((self._chunks, self._source))


async def _close_in_order(targets: Iterable[Any]) -> None:
    """Close a stream's iterable (an HTTP request) first, then its iterator, awaiting each close."""
    for target in targets:
        if getattr(target, "ag_running", False):
            continue  # suspended in a read in another task: closing the iterable ends it
        close = getattr(target, "aclose", None) or getattr(target, "close", None)
        if callable(close):
            result = close()
            if inspect.isawaitable(result):
                await result


_CLOSING: set[asyncio.Task[None]] = set()
"""Closes of abandoned streams under way: held until done, so that a task is not collected mid-way."""


class _Opened:
    """What an ``AsyncChatStream`` opened and on which loop: its finaliser holds this, not the stream."""

    __slots__ = ("loop", "targets")

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.targets: list[Any] = []
        """The source's iterable and iterator, closed in that order."""


def _close_abandoned(opened: _Opened) -> None:
    """An ``AsyncChatStream`` was collected unfinished: close its iterable, then its iterator, in order.

    They were kept alive by the finaliser (not by the stream), so the garbage collector did not
    finalise their generators at the same time, each on its own, racing each other. The close runs
    on the stream's own loop, also when the collection ran on another thread (a server's loop in
    its thread, the collector run from the main one).
    """
    loop = opened.loop
    if not opened.targets or loop is None or loop.is_closed():
        return  # nothing opened, or its loop is gone: nothing can await the close any more
    try:
        running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        _start_closing(opened)
        return
    with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
        loop.call_soon_threadsafe(_start_closing, opened)


def _start_closing(opened: _Opened) -> None:
    async def close() -> None:
        await _close_in_order(opened.targets)
        opened.targets.clear()

    task = asyncio.get_running_loop().create_task(close())
    _CLOSING.add(task)
    task.add_done_callback(_CLOSING.discard)
