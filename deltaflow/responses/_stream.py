"""``ResponseStream`` / ``AsyncResponseStream``: openai's Responses stream helper, and deltaflow's events too.

Each raw event goes through ``ResponseState`` (openai's helper events, the response snapshot) and its
chat view through deltaflow's own ``operators.to_events`` chain, so a Responses stream yields, beside
openai's events, the same ``content.delta`` / ``tool_calls.function.arguments.done`` / ``usage`` /
``completion.done`` / ``error`` events as a Chat Completions stream: every sink works on it unchanged.

Text, reasoning and argument deltas, most of the events, skip the chain while nobody sees its ``chunk``
events (no sink subscribed, no ``chunk`` handler, openai's events handed out) and no ``text_format`` is
parsed: ``DirectEvents`` builds their delta events itself, and the chain catches up on their text (one
chunk per run of them, its own events for it dropped) before anything else reaches it, before it ends or
fails, and when ``current_completion_snapshot`` is read.
"""

from __future__ import annotations

import contextlib
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
from typing import Any, Generic, Self, cast

from openai.types.chat import ChatCompletionChunk, ParsedChatCompletion
from openai.types.responses import ParsedResponse
from reactivex import Observable, Observer, abc
from reactivex.disposable import Disposable
from typing_extensions import TypeVar

from deltaflow._tools import tool_specs
from deltaflow.errors import ParseError, StreamClosedError, StreamContractError, ToolArgumentsError
from deltaflow.events import (
    BaseEvent,
    ChunkReceived,
    CompletionDone,
    ContentDelta,
    ErrorReported,
    ReasoningDelta,
    ToolCallDelta,
)
from deltaflow.operators import to_events
from deltaflow.pipeline import ParseErrors
from deltaflow.responses._direct import DirectEvents
from deltaflow.responses._errors import ResponseContractError, ResponseFailed, ResponseIncomplete
from deltaflow.responses._request import responses_tools
from deltaflow.responses._state import ResponseState

__all__ = ["AsyncResponseStream", "ResponseStream"]

TextFormatT = TypeVar("TextFormatT", default=None)

_NOT_POSITIONAL = frozenset({"type", "choice_index", "sequence_number"})
_SAID = (ChunkReceived, ContentDelta, ReasoningDelta, ToolCallDelta)
"""What the chain says of the text it catches up on: said already by the events the state built."""


def chat_tools(tools: Iterable[Mapping[str, Any]] | None) -> list[Mapping[str, Any]] | None:
    """The function tools in Chat Completions' shape, which deltaflow's operators read; others left out."""
    if tools is None:
        return None
    chat: list[Mapping[str, Any]] = []
    for tool in tools:
        if tool.get("type") != "function":
            continue
        if "function" in tool:
            chat.append(tool)
            continue
        function = {key: tool[key] for key in ("name", "description", "parameters", "strict") if key in tool}
        chat.append({"type": "function", "function": function})
    return chat


class _Core(Generic[TextFormatT]):
    """What the twins share: the state, the chain of deltaflow's operators, the handlers and the end."""

    def __init__(
        self,
        *,
        text_format: type[TextFormatT] | None,
        tools: Iterable[Mapping[str, Any]] | None,
        starting_after: int | None,
        openai_events: bool,
        deltaflow_events: bool,
        parse_errors: ParseErrors,
    ) -> None:
        if parse_errors not in ("raise", "keep"):
            raise ValueError(f"parse_errors must be 'raise' or 'keep', not {parse_errors!r}")
        tools = list(tools) if tools is not None else None
        # openai's conversion for its parser (pydantic tools keep their model), chat's shape for the chain
        self._state = ResponseState(
            text_format=text_format,
            input_tools=responses_tools(tools),
            raise_parse_errors=not deltaflow_events,
            chat_view=deltaflow_events,
        )
        if deltaflow_events and openai_events and text_format is None:
            # the chain's chunk events are hidden and it parses no content: deltas may go direct
            parsed = any(spec.parseable for spec in tool_specs(chat_tools(tools)).values())
            self._state.direct = DirectEvents(arguments=not parsed)
        self._starting_after = starting_after
        self._openai_events = openai_events
        self._deltaflow_events = deltaflow_events
        self._parse_errors = parse_errors
        self._content_is_parsed = inspect.isclass(text_format)
        self._out: list[BaseEvent] = []
        self._chain_error: BaseException | None = None
        self._inlet: abc.ObserverBase[Any] = Observer()
        chain = to_events(tools=chat_tools(tools), response_format=text_format)
        # the chain's own source: what it subscribes with is where chunks are pushed (one call, no Subject)
        Observable(self._attach).pipe(chain).subscribe(self._out.append, self._chain_failed)
        self._handlers: dict[str, list[Callable[..., Any]]] = {}
        self._observers: list[abc.ObserverBase[Any]] = []
        self._completion: ParsedChatCompletion[object] | None = None
        self._latest_chunk: ChunkReceived | None = None
        self._provider_error: Any = None
        self._failed_parse: ParseError | None = None
        self._error: BaseException | None = None
        self._finished = False
        self._closed = False
        self._awaiting: list[Any] = []

    def _attach(
        self, observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None
    ) -> Disposable:
        self._inlet = observer
        return Disposable()

    def _chain_failed(self, error: Exception) -> None:
        self._chain_error = error

    def subscribe(self, observer: abc.ObserverBase[Any]) -> Self:
        """Hand deltaflow's events (not openai's) to ``observer`` (a sink) as the stream is read, and its end.

        The same events as a Chat Completions stream's: ``sinks.fan_out(...)``, ``sinks.otel``, the relay
        and the durable log take them unchanged.
        """
        if self._closed and not self._finished:
            raise StreamClosedError("the stream was closed before its end")
        self._no_direct()  # a sink gets every chunk event from now on
        self._observers.append(observer)
        return self

    def on(self, event_type: str, callback: Callable[..., object]) -> Self:
        """Call ``callback`` for each event of ``event_type`` (openai's or deltaflow's) as the stream is read.

        The callback gets the event; one with more required positional parameters gets its fields in
        order (``response.output_text.delta`` → ``content_index, delta, item_id, ...``). Returns the stream.
        """
        if self._closed and not self._finished:
            raise StreamClosedError("the stream was closed before its end")
        if event_type == "chunk":
            self._no_direct()  # every chunk event from now on
        self._handlers.setdefault(event_type, []).append(callback)
        return self

    def _no_direct(self) -> None:
        if self._state.direct is not None:
            self._state.direct.on = False

    @property
    def current_completion_snapshot(self) -> ParsedChatCompletion[object]:
        """The response so far as a chat completion (as ``ChatStream``'s): what the durable log keeps."""
        self._catch_up()
        if self._completion is not None:
            return self._completion
        if self._latest_chunk is not None:
            return self._latest_chunk.snapshot
        completion = getattr(self._error or self._chain_error, "completion", None)
        if completion is not None:
            return completion  # type: ignore[no-any-return]
        raise StreamContractError("no event has arrived yet")

    @property
    def current_response_snapshot(self) -> ParsedResponse[object]:
        """The response accumulated so far."""
        snapshot = self._state.snapshot
        if snapshot is None:
            raise StreamContractError("no event has arrived yet")
        return snapshot

    def _handle(self, raw: Any) -> list[Any]:
        """One raw event in; the events to hand out, openai's first, then deltaflow's."""
        state = self._state
        try:
            helper = state.handle(raw)
        except (StreamContractError, ParseError) as error:
            self._fail(error)
            return self._drain()
        except (AttributeError, TypeError, KeyError, IndexError, ValueError) as error:
            # an event whose fields are missing or of the wrong type (built leniently, as openai builds them)
            contract = ResponseContractError(
                f"a malformed {getattr(raw, 'type', 'event')!s:.80} event: {error}", event=raw
            )
            with contextlib.suppress(Exception):  # the state may be as broken as the event that broke it
                contract.response = state.partial_response()
            contract.__cause__ = error
            self._fail(contract)
            return self._drain()
        kind = raw.type
        if kind == "error":
            self._provider_error = self._provider_error or raw
        elif kind == "response.failed":
            self._provider_error = raw
        if not self._deltaflow_events:
            # openai's events only: deltaflow's operators have nothing to say to anyone, and do not run
            state.chunks.clear()
            if self._starting_after is not None:
                return [event for event in helper if (event.sequence_number or 0) > self._starting_after]
            return helper
        if state.chunks:
            self._catch_up()
            self._push(state.chunks)
            state.chunks.clear()
        if self._starting_after is not None:
            helper = [event for event in helper if (event.sequence_number or 0) > self._starting_after]
        events: list[Any] = helper if self._openai_events else []
        direct = state.direct
        if direct is not None and direct.events:  # built directly: the chain had nothing of this event
            events = events + direct.events
            direct.events = []
            return events
        return events + self._drain()

    def _push(self, chunks: list[Any]) -> None:
        push, validate = self._inlet.on_next, ChatCompletionChunk.model_validate
        for chunk in chunks:
            # a dict validated, not constructed as openai does (about 3 µs a chunk against 60), or a
            # text delta's chunk, built by the state
            push(validate(chunk) if type(chunk) is dict else chunk)

    def _catch_up(self) -> None:
        """The chain given the text of the events the state built directly; what it says of it was said."""
        chunks = self._state.unsent_chunks()
        if not chunks:
            return
        self._push(chunks)
        out = self._out
        for event in out:
            if type(event) is ChunkReceived:
                self._latest_chunk = event
        out[:] = [event for event in out if type(event) not in _SAID]

    def _drain(self) -> list[Any]:
        out = self._out
        if not out:
            return []
        events = out[:] if self._deltaflow_events else []
        for event in events:
            kind = type(event)
            if kind is ChunkReceived:
                self._latest_chunk = event  # type: ignore[assignment]  # told by its class
            elif kind is CompletionDone:
                self._completion = event.completion  # type: ignore[attr-defined]  # told by its class
            elif kind is ErrorReported:
                error = event.exception  # type: ignore[attr-defined]  # told by its class
                if isinstance(error, ToolArgumentsError) or (
                    isinstance(error, ParseError) and self._content_is_parsed
                ):
                    self._failed_parse = self._failed_parse or error
        out.clear()
        return events

    def _fail(self, error: BaseException) -> None:
        self._catch_up()  # the partial completion the error carries holds every delta handed out
        self._inlet.on_error(error)  # type: ignore[arg-type]  # the chain attaches the chat completion
        self._chain_error = self._chain_error or error

    def _ended(self) -> list[Any]:
        """The source ended: close the chain, with the provider's failure if there was one."""
        if self._chain_error is None:
            self._catch_up()
            failure = self._provider_failure()
            if not self._deltaflow_events:  # no chain ran: the failure is only raised
                self._chain_error = failure
                return []
            if failure is not None:
                self._fail(failure)  # the chain reports it as its last event: an ``error`` event
                return self._drain()
            self._inlet.on_completed()
        return self._drain()

    def _provider_failure(self) -> ResponseFailed | None:
        raw = self._provider_error
        if raw is None:
            return None
        if raw.type == "error":
            error: Any = getattr(raw, "error", None) or {
                key: getattr(raw, key, None) for key in ("code", "message", "param")
            }
        else:
            error = getattr(raw.response, "error", None)
        if hasattr(error, "model_dump"):
            error = error.model_dump()
        message = _message_of(error) or "the response failed"
        return ResponseFailed(
            f"the response failed: {message}", error=error, response=self._state.partial_response()
        )

    def _notify(self, event: Any) -> None:
        if self._observers and isinstance(event, BaseEvent):
            for observer in self._observers:
                observer.on_next(event)
        for handler in self._handlers.get(event.type, ()):
            result = _call(handler, event)
            if inspect.isawaitable(result):
                self._awaiting.append(result)

    def _finish(self) -> None:
        self._finished = True
        error = self._chain_error
        if error is None and self._failed_parse is not None and self._parse_errors == "raise":
            error = self._failed_parse
        observers, self._observers = self._observers, []
        for observer in observers:
            if error is not None:
                observer.on_error(error)  # type: ignore[arg-type]
            else:
                observer.on_completed()
        if error is not None:
            response = getattr(error, "response", None)
            if response is None:
                # every error leaves with what arrived: the partial response beside the chat completion
                with contextlib.suppress(AttributeError):  # an exception class with slots
                    error.response = self._state.partial_response()  # type: ignore[attr-defined]
            self._error = error
            raise error

    def _stopped_early(self) -> None:
        """Closed before the end: observers that hold resources (files) get ``close()``."""
        if self._finished:
            return
        observers, self._observers = self._observers, []
        for observer in observers:
            close = getattr(observer, "close", None)
            if callable(close):
                close()

    def _final_completion(self) -> ParsedChatCompletion[object]:
        if self._error is not None:
            raise self._error
        if self._completion is None:
            raise StreamContractError("the stream has not finished")
        return self._completion

    def _final_response(self) -> ParsedResponse[TextFormatT]:
        if self._error is not None:
            raise self._error
        completed = self._state.completed
        if completed is None:
            if self._closed:
                raise StreamClosedError("the stream was closed before its end: there is no final response")
            ended = self._state.ended
            reason = None
            if ended is not None:
                reason = getattr(getattr(ended.response, "incomplete_details", None), "reason", None)
            what = f"incomplete ({reason})" if reason else "without response.completed"
            raise ResponseIncomplete(
                f"the response ended {what}", reason=reason, response=self._state.partial_response()
            )
        return cast("ParsedResponse[TextFormatT]", completed)


def _message_of(error: Any) -> str | None:
    message = error.get("message") if isinstance(error, Mapping) else getattr(error, "message", None)
    return message if isinstance(message, str) else None


def _call(handler: Callable[..., Any], event: Any) -> Any:
    try:
        parameters = inspect.signature(handler).parameters.values()
    except (TypeError, ValueError):
        return handler(event)
    kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    positional = sum(1 for p in parameters if p.kind in kinds and p.default is inspect.Parameter.empty)
    if positional <= 1:
        return handler(event)
    names = [name for name in type(event).model_fields if name not in _NOT_POSITIONAL]
    return handler(*(getattr(event, name, None) for name in names[:positional]))


class ResponseStream(_Core[TextFormatT]):
    """A drop-in for openai's ``ResponseStream`` over any iterable of Responses events.

    Yields openai's events (the same classes and fields as ``client.responses.stream()``) and
    deltaflow's (``content.delta``, ``tool_calls.function.arguments.done``, ``usage``,
    ``completion.done``, ``error``...), in that order for each raw event.

    Args:
        events: openai's typed Responses events (an openai ``Stream``, a list) or ``ResponseRequest``.
        text_format: a pydantic model to parse the output text into (``output_parsed``).
        tools: the request's tools, to parse function-call arguments.
        starting_after: hand out only openai's events after this sequence number (a resumed stream).
        openai_events: hand out openai's events; False hands out deltaflow's only, ``chunk`` events (the
            chat view of each raw event) included: what a ``ChatStream`` yields (a relay, a durable log).
        deltaflow_events: hand out deltaflow's events; False is openai's helper exactly, and cheaper:
            deltaflow's operators do not run (sinks get nothing), a text that fails ``text_format`` raises
            ``ContentInvalidError`` where openai raises pydantic's ``ValidationError`` (both ValueErrors).
        parse_errors: ``raise`` a ``ParseError`` at the end for text or arguments that fail to parse,
            or ``keep`` going.
    """

    def __init__(
        self,
        events: Iterable[Any],
        *,
        text_format: type[TextFormatT] | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        starting_after: int | None = None,
        openai_events: bool = True,
        deltaflow_events: bool = True,
        parse_errors: ParseErrors = "raise",
    ) -> None:
        super().__init__(
            text_format=text_format,
            tools=tools,
            starting_after=starting_after,
            openai_events=openai_events,
            deltaflow_events=deltaflow_events,
            parse_errors=parse_errors,
        )
        self._source = events
        self._iterator = self._generate()

    def __iter__(self) -> Iterator[Any]:
        return self._iterator

    def __next__(self) -> Any:
        return next(self._iterator)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the source (an HTTP response) and stop."""
        self._closed = True
        self._stopped_early()
        if not getattr(self._iterator, "gi_running", False):
            self._iterator.close()
        close = getattr(self._source, "close", None)
        if callable(close):
            close()

    def until_done(self) -> Self:
        """Consume the whole stream (calling ``.on`` handlers on the way)."""
        for _ in self:
            pass
        return self

    def get_final_response(self) -> ParsedResponse[TextFormatT]:
        """Wait for the end and return the final response, ``output_parsed`` included.

        Raises:
            ResponseFailed: ``response.failed`` or an ``error`` event; ``.response`` holds what arrived.
            ResponseIncomplete: ``response.incomplete``, or the stream ended without ``response.completed``.
            ParseError: the output text or a tool's arguments did not parse (unless ``parse_errors="keep"``).
        """
        if not self._finished:
            self.until_done()
        return self._final_response()

    def get_final_completion(self) -> ParsedChatCompletion[object]:
        """Wait for the end and return the response as a chat completion: what deltaflow's sinks read."""
        if not self._finished:
            self.until_done()
        return self._final_completion()

    def _generate(self) -> Generator[Any, None, None]:
        source = iter(self._source)
        hide_chunks = self._openai_events
        while True:
            try:
                raw = next(source)
            except StopIteration:
                events = self._ended()
                ended = True
            except Exception as error:  # noqa: BLE001 - the source's failure ends the stream, typed
                if self._closed:
                    return
                self._fail(error)
                events = self._drain()
                ended = True
            else:
                events = self._handle(raw)
                ended = self._chain_error is not None
            for event in events:
                if self._handlers or self._observers:
                    self._notify(event)
                if hide_chunks and event.type == "chunk":
                    continue  # openai's events stand for them; observers (sinks.otel's timing) had them
                yield event
            if ended:
                break
            if self._closed:
                return
        self._finish()


class AsyncResponseStream(_Core[TextFormatT]):
    """The async twin of ``ResponseStream``, over an async iterable of Responses events.

    ``.on`` handlers may be async: each is awaited before its event is handed out.
    """

    def __init__(
        self,
        events: AsyncIterable[Any],
        *,
        text_format: type[TextFormatT] | None = None,
        tools: Iterable[Mapping[str, Any]] | None = None,
        starting_after: int | None = None,
        openai_events: bool = True,
        deltaflow_events: bool = True,
        parse_errors: ParseErrors = "raise",
    ) -> None:
        super().__init__(
            text_format=text_format,
            tools=tools,
            starting_after=starting_after,
            openai_events=openai_events,
            deltaflow_events=deltaflow_events,
            parse_errors=parse_errors,
        )
        self._source = events
        self._iterator = self._generate()

    def __aiter__(self) -> AsyncIterator[Any]:
        return self._iterator

    async def __anext__(self) -> Any:
        return await anext(self._iterator)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the source (an HTTP response) and stop."""
        self._closed = True
        self._stopped_early()
        if not getattr(self._iterator, "ag_running", False):
            await self._iterator.aclose()
        close = getattr(self._source, "aclose", None) or getattr(self._source, "close", None)
        if callable(close):
            result = close()
            if inspect.isawaitable(result):
                await result

    async def until_done(self) -> Self:
        """Consume the whole stream (calling ``.on`` handlers, awaiting async ones)."""
        async for _ in self:
            pass
        return self

    async def get_final_response(self) -> ParsedResponse[TextFormatT]:
        """Wait for the end and return the final response (see ``ResponseStream.get_final_response``)."""
        if not self._finished:
            await self.until_done()
        return self._final_response()

    async def get_final_completion(self) -> ParsedChatCompletion[object]:
        """Wait for the end and return the response as a chat completion (see ``ResponseStream``)."""
        if not self._finished:
            await self.until_done()
        return self._final_completion()

    async def _generate(self) -> AsyncGenerator[Any, None]:
        source = aiter(self._source)
        hide_chunks = self._openai_events
        while True:
            try:
                raw = await anext(source)
            except StopAsyncIteration:
                events = self._ended()
                ended = True
            except Exception as error:  # noqa: BLE001 - the source's failure ends the stream, typed
                if self._closed:
                    return
                self._fail(error)
                events = self._drain()
                ended = True
            else:
                events = self._handle(raw)
                ended = self._chain_error is not None
            for event in events:
                if self._handlers or self._observers:
                    self._notify(event)
                    while self._awaiting:
                        await self._awaiting.pop(0)
                if hide_chunks and event.type == "chunk":
                    continue  # openai's events stand for them; observers (sinks.otel's timing) had them
                yield event
            if ended:
                break
            if self._closed:
                return
        self._finish()
