"""``relay_endpoint``: a deltaflow stream relayed over HTTP as server-sent events.

The server side runs one stream per HTTP request and sends each event as ``id: <n>``,
``event: <type>``, ``data: <event JSON>``, then a last ``event: done``. ``relay_events`` (its client
side, ``_relay_client``) turns such a relay back into the same typed events. Between the two, the
wire format is plain SSE: a browser's ``EventSource``-style reader (over ``fetch``, since the request
is a POST) reads it too.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Awaitable, Callable, Collection
from typing import Any, TypeAlias
from urllib.parse import parse_qs

from deltaflow._asgi import (
    MAX_BODY_DEPTH,
    SSE_HEADERS,
    Receive,
    Scope,
    Send,
    json_object,
    read_body,
    respond_json,
    response_body,
    serve_lifespan,
    sse_frame,
    until_disconnected,
)
from deltaflow.events import BaseEvent, ErrorReported
from deltaflow.recipes._event_sources import AnyEventStream, EventSource, events_of
from deltaflow.recipes._relay_wire import DONE_EVENT, encode_compact, failure_payload
from deltaflow.wire._choice import check_format, encoder_for, event_data, wire_request
from deltaflow.wire._encoder import WireEncoder, WireFormat, sse_data

__all__ = ["RelayEndpoint", "StreamFactory", "relay_endpoint"]

StreamFactory: TypeAlias = Callable[[dict[str, Any]], AnyEventStream | Awaitable[AnyEventStream]]
"""Makes the stream for one HTTP request from its JSON body: sync or ``async def``."""


def relay_endpoint(
    make_stream: StreamFactory, *, exclude: Collection[str] = ("chunk",), wire: WireFormat = "deltaflow"
) -> RelayEndpoint:
    """An ASGI endpoint that streams one deltaflow stream per POST and relays its events as SSE.

    The request's JSON body goes to ``make_stream``, which returns an ``AsyncChatStream`` or a
    ``ChatStream`` (or an awaitable of either; any stream of deltaflow's events, a
    ``deltaflow.responses`` one too, or a tool loop's, ``atool_loop_stream``). Each event goes out
    as ``id: <n>`` (1, 2, ...), ``event: <type>``, ``data: <the event's JSON>``, delta events
    without their running text (``snapshot``, a tool call's ``arguments``), which would make the
    traffic quadratic in the answer:
    ``relay_events`` rebuilds it from the deltas, as for the durable log;
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
        wire: what the relay speaks: deltaflow's events, ``"ai-sdk"`` (the AI SDK's UI Message
            Stream, for ``useChat``: the body is its chat request) or ``"ag-ui"`` (AG-UI events:
            the body is a ``RunAgentInput``); see ``deltaflow.wire``. A request's ``?wire=``
            chooses another. With either front-end format, ``make_stream`` gets the body with its
            ``messages`` as chat messages, and a body that is not the protocol's request is a 422.

    Returns:
        The ASGI endpoint.
    """
    return RelayEndpoint(make_stream, exclude=exclude, wire=wire)


class RelayEndpoint:
    """The ASGI app ``relay_endpoint`` returns; see there."""

    def __init__(
        self,
        make_stream: StreamFactory,
        *,
        exclude: Collection[str] = ("chunk",),
        wire: WireFormat = "deltaflow",
    ) -> None:
        self._make_stream = make_stream
        self._exclude = frozenset(exclude)
        self._wire = check_format(wire)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # served on its own, the app is asked about startup and shutdown: nothing to do
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"the relay endpoint serves HTTP, not {scope['type']!r}")
        if scope["method"] != "POST":
            await respond_json(send, 405, {"error": "POST a JSON object"}, [(b"allow", b"POST")])
            return
        body = await read_body(receive)
        if body is None:
            return
        request_json = json_object(body)
        if request_json is None:
            error = f"the request body must be a JSON object, nested at most {MAX_BODY_DEPTH} deep"
            await respond_json(send, 400, {"error": error})
            return
        chosen = await wire_request(send, _query(scope, "wire"), self._wire, request_json)
        if chosen is None:
            return
        wire, request_json = chosen
        made = self._make_stream(request_json)
        stream = await made if inspect.isawaitable(made) else made
        source = events_of(stream)
        # the client leaving stops relaying, which closes the stream; a failure of the relay itself
        # is raised (the stream's own failure was relayed, not raised)
        await until_disconnected(self._pump(source, send, encoder_for(wire, request_json)), receive)

    async def _pump(self, source: EventSource, send: Send, encoder: WireEncoder | None = None) -> None:
        sequence = 0
        reported: ErrorReported | None = None

        async def relay(event: BaseEvent) -> None:
            nonlocal sequence
            sequence += 1
            if encoder is not None:
                frames = sse_data(encoder.event(event.type, event_data(event)))
                if frames:
                    await send(response_body(frames))
                return
            data = encode_compact(event)  # running texts left out: relay_events rebuilds them
            await send(response_body(sse_frame(event.type, data, str(sequence))))

        try:
            # started here, inside the try: the stream is closed whatever happens from now on
            headers = SSE_HEADERS if encoder is None else [*SSE_HEADERS, *encoder.headers]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            if encoder is not None:
                await send(response_body(sse_data(encoder.start())))
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
                done = failure_payload(error, reported)
            else:
                done = {"ok": True}
            if encoder is not None:
                last = sse_data(encoder.finish(done)) + encoder.trailer()
            else:
                last = sse_frame(DONE_EVENT, json.dumps(done))
            await send(response_body(last, more=False))
        finally:
            await source.close()


def _query(scope: Scope, name: str) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    return values[0] if values else None
