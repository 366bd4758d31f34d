"""``relay_endpoint`` / ``relay_events``: a deltaflow stream relayed over HTTP as server-sent events.

The server side runs one stream per HTTP request and sends each event as ``id: <n>``,
``event: <type>``, ``data: <event JSON>``, then a last ``event: done``. The client side turns such
a relay back into the same typed events. Between the two, the wire format is plain SSE: a browser's
``EventSource``-style reader (over ``fetch``, since the request is a POST) reads it too.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import (
    AsyncGenerator,
    Awaitable,
    Callable,
    Collection,
    Generator,
    Mapping,
    MutableMapping,
)
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from openai.types.chat import ParsedChatCompletion
from pydantic import TypeAdapter, ValidationError

from deltaflow._openai_compat import construct
from deltaflow.errors import (
    EventLogUnavailable,
    EventsTrimmed,
    RelayError,
    StreamAborted,
    StreamContractError,
    StreamInterrupted,
    StreamNotFound,
)
from deltaflow.events import BaseEvent, ErrorReported, Event
from deltaflow.pipeline import AsyncChatStream, ChatStream, ServerSentEvent, aiter_sse, iter_sse

if TYPE_CHECKING:
    import httpx2 as httpx
else:
    try:  # openai's own HTTP client: httpx2 where openai moved to it, httpx before
        import httpx2 as httpx
    except ImportError:  # pragma: no cover - depends on the openai release installed
        import httpx

__all__ = ["RelayEndpoint", "RelayError", "StreamFactory", "arelay_events", "relay_endpoint", "relay_events"]

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]

AnyChatStream: TypeAlias = ChatStream[Any] | AsyncChatStream[Any]
StreamFactory: TypeAlias = Callable[[dict[str, Any]], AnyChatStream | Awaitable[AnyChatStream]]
"""Makes the stream for one HTTP request from its JSON body: sync or ``async def``."""

DONE_EVENT = "done"
COMPACTED_FIELDS: dict[str, tuple[str, str]] = {
    "content.delta": ("snapshot", "delta"),
    "reasoning.delta": ("snapshot", "delta"),
    "refusal.delta": ("snapshot", "delta"),
    "tool_calls.function.arguments.delta": ("arguments", "arguments_delta"),
}
"""Running texts a durable log leaves out of delta events, each with the delta field it grows by.

Logged whole, they would make a stream's log quadratic in its length; a reader rebuilds them from
the deltas it has read (so a reader that joins mid-stream has them from where it joined)."""
# openai's default: long enough for slow reasoning models, finite so a dead relay is noticed
_DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=5.0)
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # nginx buffers responses unless told otherwise, which would hold events back
    (b"x-accel-buffering", b"no"),
]


def relay_endpoint(make_stream: StreamFactory, *, exclude: Collection[str] = ("chunk",)) -> RelayEndpoint:
    """An ASGI endpoint that streams one deltaflow stream per POST and relays its events as SSE.

    The request's JSON body goes to ``make_stream``, which returns an ``AsyncChatStream`` or a
    ``ChatStream`` (or an awaitable of either). Each event
    goes out as ``id: <n>`` (1, 2, ...), ``event: <type>``, ``data: <event.model_dump_json()>``;
    the relay ends with ``event: done``, whose data is ``{"ok": true}``, or, when the stream failed,
    ``{"ok": false, "error": {"type", "code", "message"}, "completion": <partial completion>}``. The
    failure itself travels first as the stream's own ``error`` event (one is made when the stream
    did not report it).

    When the HTTP client goes away, the relay stops and closes the stream, and with it the upstream
    HTTP response. Prefer an ``AsyncChatStream`` (``deltaflow.astream``): a sync ``ChatStream`` is
    read in the event loop's default executor, one thread per waiting read, so that pool's size
    bounds how many sync relays progress at once, and a sync stream is closed only once its pending
    read returns.

    The result is an ASGI app: mount it as a Starlette route, or serve it as it is.

    Example::

        import openai
        import deltaflow
        from starlette.applications import Starlette
        from starlette.routing import Route
        from deltaflow.recipes import relay_endpoint

        client = openai.AsyncOpenAI()

        def make_stream(body: dict) -> deltaflow.AsyncChatStream:
            return deltaflow.astream(client, model="gpt-4o-mini", messages=body["messages"])

        app = Starlette(routes=[Route("/chat", relay_endpoint(make_stream), methods=["POST"])])
        # uvicorn module:app, then: relay_events("http://127.0.0.1:8000/chat", json={"messages": [...]})

    Args:
        make_stream: builds the stream for a request's JSON body; validate the body here (raising
            makes a 500) and never pass it to the provider unchecked.
        exclude: event types not relayed. ``chunk`` events are left out by default: each carries
            the whole snapshot so far, which makes the relay's traffic quadratic in the answer.

    Returns:
        The ASGI endpoint.
    """
    return RelayEndpoint(make_stream, exclude=exclude)


class RelayEndpoint:
    """The ASGI app ``relay_endpoint`` returns; see there."""

    def __init__(self, make_stream: StreamFactory, *, exclude: Collection[str] = ("chunk",)) -> None:
        self._make_stream = make_stream
        self._exclude = frozenset(exclude)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # served on its own, the app is asked about startup and shutdown: nothing to do
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"the relay endpoint serves HTTP, not {scope['type']!r}")
        if scope["method"] != "POST":
            await _respond(send, 405, {"error": "POST a JSON object"}, [(b"allow", b"POST")])
            return
        body = await _read_body(receive)
        if body is None:
            return
        request_json = _json_object(body)
        if request_json is None:
            await _respond(send, 400, {"error": "the request body must be a JSON object"})
            return
        made = self._make_stream(request_json)
        stream = await made if inspect.isawaitable(made) else made
        source: _EventSource = (
            _AsyncEvents(stream) if isinstance(stream, AsyncChatStream) else _ThreadEvents(stream)
        )
        # the client leaving stops relaying, which closes the stream; a failure of the relay itself
        # is raised (the stream's own failure was relayed, not raised)
        await _until_disconnected(self._pump(source, send), receive)

    async def _pump(self, source: _EventSource, send: Send) -> None:
        sequence = 0
        reported: ErrorReported | None = None

        async def relay(event: BaseEvent) -> None:
            nonlocal sequence
            sequence += 1
            data = event.model_dump_json(fallback=repr)
            await send(_body(_frame(event.type, data, str(sequence))))

        try:
            # started here, inside the try: the stream is closed whatever happens from now on
            await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            try:
                while (event := await source.next()) is not None:
                    if type(event) is ErrorReported:
                        reported = event
                    if event.type not in self._exclude:
                        await relay(event)
            except Exception as error:  # noqa: BLE001 - the failure is relayed, not raised
                if reported is None or reported.exception is not error:
                    reported = ErrorReported(
                        code="relay_upstream_error", message=str(error) or type(error).__name__
                    )
                    await relay(reported)
                done = _failure(error, reported)
            else:
                done = {"ok": True}
            await send(_body(_frame(DONE_EVENT, json.dumps(done)), more=False))
        finally:
            await source.close()


def relay_events(
    url: str,
    *,
    json: object = None,
    http_client: httpx.Client | None = None,
    headers: Mapping[str, str] | None = None,
    retries: int = 3,
    retry_delay: float = 0.25,
    last_event_id: str | None = None,
) -> Generator[Event, None, None]:
    """Read a relay (``relay_endpoint``) back as deltaflow events.

    POSTs ``json`` to ``url`` and yields each relayed event, rebuilt as its deltaflow event class
    (``pydantic.TypeAdapter(Event)``): fields equal the server side's, except what JSON cannot
    carry (``ErrorReported.exception`` is None; parsed models arrive as dicts). When the relayed
    stream failed, its ``error`` event is yielded first, then ``RelayError`` is raised, carrying
    the partial completion; a relay that stops before ``done`` raises ``StreamInterrupted``.
    Closing the generator early closes the HTTP response, and the relay then closes its upstream.

    A durable relay (``deltaflow.durable.durable_endpoint``) names the stream in its answer's
    ``Location``: when the connection breaks there, the client reconnects to it with
    ``Last-Event-ID`` and continues from exactly the next event, transparently, up to ``retries``
    times in a row without a new event (behind a load balancer, any instance sharing the log serves
    it). A durable stream that was stopped or lost its producer raises ``StreamAborted``.

    Example::

        from deltaflow.recipes import print_stream, relay_events

        events = relay_events(
            "http://127.0.0.1:8000/chat",
            json={"messages": [{"role": "user", "content": "Hi"}]},
        )
        for event in events:
            if event.type == "content.delta":
                print(event.delta, end="", flush=True)
            elif event.type == "completion.done":
                print(event.completion.usage)

    Args:
        url: the relay endpoint's URL.
        json: the request body (what the endpoint's ``make_stream`` expects); None sends a GET
            instead, to follow a durable stream at ``url`` (``<endpoint>/<stream id>``).
        http_client: an ``httpx2.Client`` (``httpx.Client`` with older openai) to send with; by
            default a new one, closed at the end, with openai's timeouts.
        headers: extra request headers (authentication...).
        retries: reconnections to a durable relay allowed in a row without a new event.
        retry_delay: seconds before the first reconnection, doubled for each following one.
        last_event_id: with a GET, read a durable stream from after this event id.

    Yields:
        The relayed events, in order.

    Raises:
        RelayError: the relayed stream failed, or the relay answered with an HTTP error.
        StreamInterrupted: the connection broke (past the retries), or the relay ended without ``done``.
        StreamContractError: the relay sent something that is not a deltaflow event.
        StreamAborted: a durable stream ended ``aborted`` (stopped, producer lost, shutdown).
        EventsTrimmed: a durable stream's events after the last one read were trimmed.
        StreamNotFound: a durable stream expired or was replaced before it could be resumed.
        EventLogUnavailable: a durable relay's event log (Redis) cannot be reached.
    """
    reader = _Reader(
        url, following=json is None, retries=retries, retry_delay=retry_delay, last_event_id=last_event_id
    )
    client = http_client or httpx.Client(timeout=_DEFAULT_TIMEOUT)
    try:
        method, target, body = "GET" if json is None else "POST", url, json
        while reader.done is None:
            broken: Exception | None = None
            try:
                with client.stream(method, target, json=body, headers=reader.headers(headers)) as response:
                    if response.status_code >= 300 or response.status_code == 204:
                        raise reader.http_error(response.status_code, response.read())
                    reader.connected(response.headers)
                    for sse in iter_sse(response.iter_bytes()):
                        event = reader.read(sse)
                        if event is not None:
                            yield event
                        if reader.done is not None:
                            break
            except httpx.TransportError as error:
                broken = error
            if reader.done is None:
                method, target, body = "GET", reader.resumption(broken), None
                time.sleep(reader.delay())
        reader.finish()
    finally:
        if http_client is None:
            client.close()


async def arelay_events(
    url: str,
    *,
    json: object = None,
    http_client: httpx.AsyncClient | None = None,
    headers: Mapping[str, str] | None = None,
    retries: int = 3,
    retry_delay: float = 0.25,
    last_event_id: str | None = None,
) -> AsyncGenerator[Event, None]:
    """The async twin of ``relay_events``, with an ``httpx2.AsyncClient``.

    Example::

        from deltaflow.recipes import arelay_events

        async def answer(question: str) -> str:
            parts = []
            body = {"messages": [{"role": "user", "content": question}]}
            async for event in arelay_events("http://127.0.0.1:8000/chat", json=body):
                if event.type == "content.delta":
                    parts.append(event.delta)
            return "".join(parts)

    Args:
        url: the relay endpoint's URL.
        json: the request body; None sends a GET, to follow a durable stream at ``url``.
        http_client: an ``httpx2.AsyncClient`` to send with; by default a new one, closed at the end.
        headers: extra request headers.
        retries: reconnections to a durable relay allowed in a row without a new event.
        retry_delay: seconds before the first reconnection, doubled for each following one.
        last_event_id: with a GET, read a durable stream from after this event id.

    Yields:
        The relayed events, in order.

    Raises:
        RelayError: the relayed stream failed, or the relay answered with an HTTP error.
        StreamInterrupted: the connection broke (past the retries), or the relay ended without ``done``.
        StreamContractError: the relay sent something that is not a deltaflow event.
        StreamAborted: a durable stream ended ``aborted`` (stopped, producer lost, shutdown).
        EventsTrimmed: a durable stream's events after the last one read were trimmed.
        StreamNotFound: a durable stream expired or was replaced before it could be resumed.
        EventLogUnavailable: a durable relay's event log (Redis) cannot be reached.
    """
    reader = _Reader(
        url, following=json is None, retries=retries, retry_delay=retry_delay, last_event_id=last_event_id
    )
    client = http_client or httpx.AsyncClient(timeout=_DEFAULT_TIMEOUT)
    try:
        method, target, body = "GET" if json is None else "POST", url, json
        while reader.done is None:
            broken: Exception | None = None
            try:
                async with client.stream(
                    method, target, json=body, headers=reader.headers(headers)
                ) as response:
                    if response.status_code >= 300 or response.status_code == 204:
                        raise reader.http_error(response.status_code, await response.aread())
                    reader.connected(response.headers)
                    async for sse in aiter_sse(response.aiter_bytes()):
                        event = reader.read(sse)
                        if event is not None:
                            yield event
                        if reader.done is not None:
                            break
            except httpx.TransportError as error:
                broken = error
            if reader.done is None:
                method, target, body = "GET", reader.resumption(broken), None
                await asyncio.sleep(reader.delay())
        reader.finish()
    finally:
        if http_client is None:
            await client.aclose()


class _Reader:
    """The client side's decoding and resumption, shared by both twins: SSE in, deltaflow events out."""

    def __init__(
        self,
        url: str,
        *,
        following: bool = False,
        retries: int = 3,
        retry_delay: float = 0.25,
        last_event_id: str | None = None,
    ) -> None:
        # built per relay read, not at import: importing deltaflow.recipes stays cheap
        self._adapter: TypeAdapter[Event] = TypeAdapter(Event)
        self.done: dict[str, Any] | None = None
        self._url = url
        self._retries = retries
        self._retry_delay = retry_delay
        self._failures = 0
        # known up front when following a durable stream by its URL, else told by a durable relay
        self.stream_id = url.rstrip("/").rsplit("/", 1)[-1] if following else ""
        self._resume_url: str | None = url if following else None
        # the deltas of each running text a durable log left out, by (event type, choice, tool call)
        self._pieces: dict[tuple[str, object, object], list[str]] = {}
        self._last_id = last_event_id

    def headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = _headers(extra)
        if self._last_id is not None:
            headers["last-event-id"] = self._last_id
        return headers

    def connected(self, headers: Mapping[str, str]) -> None:
        location, stream_id = headers.get("location"), headers.get("x-stream-id")
        if location and stream_id and self._resume_url is None:
            self._resume_url = str(httpx.URL(self._url).join(location))
            self.stream_id = stream_id

    def resumption(self, broken: Exception | None) -> str:
        """Where to reconnect after a broken read, or StreamInterrupted when that is not possible."""
        what = (
            f"the relay's connection broke: {broken!r}"
            if broken
            else "the relay ended before its 'done' event"
        )
        if self._resume_url is None:
            raise StreamInterrupted(what) from broken
        if self._failures >= self._retries:
            raise StreamInterrupted(f"{what} ({self._retries} reconnections failed)") from broken
        self._failures += 1
        return self._resume_url

    def delay(self) -> float:
        return float(self._retry_delay * 2 ** (self._failures - 1))

    def read(self, sse: ServerSentEvent) -> Event | None:
        self._failures = 0
        if sse.id is not None and self._resume_url is not None:
            self._last_id = sse.id
        if sse.event == DONE_EVENT:
            try:
                done = json.loads(sse.data)
            except ValueError:
                done = None
            self.done = done if isinstance(done, dict) else {"ok": False, "error": {"message": sse.data}}
            return None
        if sse.event in ("gap", "log_error"):
            raise self._log_failure(sse)
        try:
            if sse.event in COMPACTED_FIELDS:
                return self._rebuilt(sse.event, sse.data)
            return self._adapter.validate_json(sse.data)
        except ValidationError as error:
            raise StreamContractError(
                f"the relay sent {sse.event!r}, not a deltaflow event: {error}"
            ) from error

    def _rebuilt(self, kind: str, data: str) -> Event:
        """A delta event whose running text was left out, with that text rebuilt (lazily) from the deltas."""
        try:
            fields = json.loads(data)
        except ValueError as error:
            raise StreamContractError(f"the relay sent {kind!r} with invalid JSON: {error}") from error
        running, grows_by = COMPACTED_FIELDS[kind]
        if not isinstance(fields, dict) or running in fields:
            return self._adapter.validate_python(fields)
        key = (kind, fields.get("choice_index"), fields.get("index"))
        pieces = self._pieces.setdefault(key, [])
        event = self._adapter.validate_python({**fields, running: ""})
        pieces.append(fields[grows_by])  # validated as a string just above
        # joined on first read, as the pipeline's own snapshots are: reading none costs nothing
        return event.evolve(lazy={running: (_joined, (pieces, len(pieces)))})

    def _log_failure(self, sse: ServerSentEvent) -> Exception:
        try:
            detail = json.loads(sse.data)
        except ValueError:
            detail = None
        detail = detail if isinstance(detail, dict) else {}
        if sse.event == "gap":
            return EventsTrimmed(
                f"{detail.get('missing')} events of stream {self.stream_id!r} were trimmed",
                stream_id=self.stream_id,
                after=str(detail.get("after")),
                next_id=str(detail.get("next")),
                missing=int(detail.get("missing") or 0),
            )
        message = str(detail.get("message") or "the relay's event log failed")
        kind = EventLogUnavailable if detail.get("code") == "unavailable" else StreamNotFound
        return kind(message, stream_id=self.stream_id)

    def finish(self) -> None:
        done = self.done
        if done is None:
            raise StreamInterrupted("the relay ended before its 'done' event")
        if done.get("ok") is True:
            return
        completion = None
        if isinstance(done.get("completion"), dict):
            # built as openai builds snapshots, unvalidated: a partial one lacks its finish_reason
            completion = construct(ParsedChatCompletion[object], done["completion"])
        if done.get("outcome") == "aborted":
            reason = str(done.get("reason") or "aborted")
            usage = done.get("usage") if isinstance(done.get("usage"), dict) else None
            raise StreamAborted(
                f"the stream was aborted: {reason}", reason=reason, usage=usage, completion=completion
            )
        reported = done.get("error")
        error = reported if isinstance(reported, dict) else {}
        message = str(error.get("message") or "the relayed stream failed")
        raise RelayError(f"the relayed stream failed: {message}", error=error, completion=completion)

    def http_error(self, status: int, body: bytes) -> Exception:
        text = body.decode("utf-8", errors="replace")
        if self._resume_url is not None and status in (404, 503):
            kind = StreamNotFound if status == 404 else EventLogUnavailable
            return kind(f"the relay answered HTTP {status}: {text[:500]}", stream_id=self.stream_id)
        return RelayError(
            f"the relay answered HTTP {status}: {text[:500]}",
            error={"status": status, "body": text},
            status_code=status,
        )


def _joined(pieces_and_count: tuple[list[str], int]) -> str:
    pieces, count = pieces_and_count
    return "".join(pieces[:count])


class _EventSource(Protocol):
    async def next(self) -> BaseEvent | None: ...

    async def close(self) -> None: ...


class _AsyncEvents:
    def __init__(self, stream: AsyncChatStream[Any]) -> None:
        self._stream = stream
        self._events = aiter(stream)

    async def next(self) -> BaseEvent | None:
        return await anext(self._events, None)

    async def close(self) -> None:
        await self._stream.close()


class _ThreadEvents:
    """A sync stream read one event at a time in a worker thread, off the event loop."""

    def __init__(self, stream: ChatStream[Any]) -> None:
        self._stream = stream
        self._events = iter(stream)
        self._pending: asyncio.Future[Event | None] | None = None

    async def next(self) -> Event | None:
        self._pending = asyncio.ensure_future(asyncio.to_thread(next, self._events, None))
        # shielded: a cancelled relay must not abandon a read the thread is still doing
        return await asyncio.shield(self._pending)

    async def close(self) -> None:
        pending = self._pending
        if pending is not None and not pending.done():
            # the stream's generator is busy in that thread until its read returns; closing it
            # meanwhile would fail with "generator already executing"
            await asyncio.wait([pending])
        if pending is not None and not pending.cancelled():
            pending.exception()  # retrieved here, so asyncio does not log it as never retrieved
        await asyncio.to_thread(self._stream.close)


def _failure(error: Exception, reported: ErrorReported) -> dict[str, Any]:
    # DeltaflowError and openai's LengthFinishReasonError / ContentFilterFinishReasonError carry it
    completion = getattr(error, "completion", None)
    return {
        "ok": False,
        "error": {"type": type(error).__name__, "code": reported.code, "message": reported.message},
        "completion": completion.model_dump(mode="json") if completion is not None else None,
    }


def _frame(event: str, data: str, event_id: str | None = None) -> bytes:
    # event JSON holds no raw newline (json escapes them), so one data: line carries it whole
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


def _body(chunk: bytes, *, more: bool = True) -> Message:
    return {"type": "http.response.body", "body": chunk, "more_body": more}


def _headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {"accept": "text/event-stream", **(headers or {})}


def _json_object(body: bytes) -> dict[str, Any] | None:
    """The request body as a JSON object, or None when it is not one."""
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client left before sending it."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def _until_disconnected(work: Awaitable[None], receive: Receive) -> None:
    """Run ``work`` until it ends or the client disconnects, which cancels it; re-raise its failure."""
    pump = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({pump, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
        pump.cancel()
        outcome, _ = await asyncio.gather(pump, watch, return_exceptions=True)
    if isinstance(outcome, Exception):
        raise outcome


async def _disconnected(receive: Receive) -> None:
    """Return when the client disconnects (the body was read already: nothing else comes)."""
    while (await receive())["type"] != "http.disconnect":
        pass


async def _respond(
    send: Send, status: int, payload: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(payload).encode()
    start_headers = [(b"content-type", b"application/json"), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send(_body(body, more=False))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
