"""``durable_endpoint``: start streams with a POST, follow them from any instance with a GET.

Routes, relative to where the endpoint is mounted::

    GET  /             the browser page
    POST /             start a stream from a JSON body; SSE from its first event, or
                       {"stream_id", "url"} with ``Accept: application/json``
    GET  /<stream id>  the stream as SSE after ``Last-Event-ID`` (header or ``?last_event_id=``)
    POST /<stream id>/stop   ask the stream's producer to stop, from any instance
    GET  /<chat id>/stream   the AI SDK's resume: the chat's running answer from its start (204: none)

``?wire=ai-sdk`` or ``?wire=ag-ui`` on a POST or a GET chooses a front-end's format (``deltaflow.wire``).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import inspect
import json
import logging
import re
import secrets
from collections.abc import Collection
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from deltaflow._asgi import (
    MAX_BODY_DEPTH,
    SSE_HEADERS,
    Message,
    Receive,
    Scope,
    Send,
    json_object,
    respond_json,
    response_body,
    serve_lifespan,
    sse_frame,
    until_disconnected,
)
from deltaflow.errors import EventLogError, EventLogUnavailable, LeaseConflict
from deltaflow.recipes import StreamFactory
from deltaflow.wire._choice import check_format, stream_key, wire_request
from deltaflow.wire._encoder import WireFormat

from ._follow import Gap, Idle, follow_batches, resume_point
from ._log import STREAM_ID, EventLog, LogEntry
from ._memory import MemoryEventLog
from ._producer import produce
from ._timeouts import reader_wait
from ._wire_follow import WIRE_START, claim_conversation, follow_in_wire, start_in_wire

__all__ = ["DurableEndpoint", "durable_endpoint"]

_logger = logging.getLogger("deltaflow.durable")
_LAST_EVENT_ID = re.compile(r"\d{1,19}-\d{1,19}")
_KEEP_ALIVE = b": keep-alive\n\n"
_ACTIONS = ("stop", "stream")
# the end of a response its reader did not read in time: it resumes by Last-Event-ID
_LAGGING = b": lagging: resume with Last-Event-ID\n\n"


def durable_endpoint(
    make_stream: StreamFactory,
    log: EventLog | None = None,
    *,
    exclude: Collection[str] = ("chunk",),
    keep_alive: float = 15.0,
    retry: float = 1.0,
    max_body: int = 1 << 20,
    wire: WireFormat = "deltaflow",
    send_timeout: float = 30.0,
) -> DurableEndpoint:
    """An ASGI endpoint whose streams outlive their HTTP connections, resumable from any instance.

    A POST's JSON body goes to ``make_stream`` (validate it there: a ``ValueError``, pydantic's
    ``ValidationError`` included, answers 422). The stream runs in the background into ``log``; each
    event goes out as SSE with the log's entry id as ``id:``, so a reader (``EventSource``, or
    ``relay_events``) that reconnects with ``Last-Event-ID`` continues from exactly the next event, on
    this instance or any other sharing the log. The last event is always ``event: done`` whose data
    says the outcome (``done``, ``error`` or ``aborted``). Leaving does not stop the generation;
    ``POST <endpoint>/<id>/stop`` does. A ``stream_id`` query parameter chooses the id (URL-safe,
    up to 128 characters); by default a random one is made.

    Mount it as a Starlette route as it is (``Mount("/chat", app=endpoint)``) and call ``aclose``
    on shutdown (served on its own, its lifespan does it), which ends running streams ``aborted``.

    Args:
        make_stream: builds the stream for a request's JSON body: an ``AsyncChatStream`` (preferred)
            or a ``ChatStream``, or an awaitable of either (any stream of deltaflow's events: a tool
            loop's, ``atool_loop_stream``, too).
        log: where streams live; a ``MemoryEventLog`` (one process) by default, a ``RedisEventLog``
            for many instances.
        exclude: event types not logged (``chunk``: each carries the whole snapshot so far).
        keep_alive: seconds of silence after which a comment goes out, so proxies keep the
            connection while a reasoning model thinks.
        retry: the reconnection delay the browser is told (SSE ``retry:``), in seconds.
        max_body: the largest request body accepted, in bytes.
        wire: the format streams are started and followed in unless a request's ``?wire=`` says
            otherwise: deltaflow's events, ``"ai-sdk"`` (the AI SDK's UI Message Stream; a POST is
            ``useChat``'s request, the stream id its chat id, and ``GET /<chat id>/stream`` is its
            ``resume``) or ``"ag-ui"`` (a POST is a ``RunAgentInput``, the stream id its thread id).
            With either, ``make_stream`` gets the body with its ``messages`` as chat messages, and
            a conversation's next answer replaces its finished one under the same id.
        send_timeout: seconds a reader may leave the relay's writes unread (a stalled or far too slow
            client); then its response ends with a ``: lagging`` comment, and the reader resumes by
            ``Last-Event-ID`` as after any broken connection. Nothing is buffered for it meanwhile.

    Returns:
        The ASGI endpoint.
    """
    return DurableEndpoint(
        make_stream,
        log if log is not None else MemoryEventLog(),
        exclude=exclude,
        keep_alive=keep_alive,
        retry=retry,
        max_body=max_body,
        wire=wire,
        send_timeout=send_timeout,
    )


class DurableEndpoint:
    """The ASGI app ``durable_endpoint`` returns; see there.

    Attributes:
        log: the event log the streams live in.
    """

    def __init__(
        self,
        make_stream: StreamFactory,
        log: EventLog,
        *,
        exclude: Collection[str] = ("chunk",),
        keep_alive: float = 15.0,
        retry: float = 1.0,
        max_body: int = 1 << 20,
        wire: WireFormat = "deltaflow",
        send_timeout: float = 30.0,
    ) -> None:
        if keep_alive <= 0 or retry < 0 or max_body < 1 or send_timeout <= 0:
            raise ValueError("keep_alive, max_body and send_timeout must be positive, retry not negative")
        self.log = log
        self._make_stream = make_stream
        self._exclude = frozenset(exclude)
        # a reader waits at most this long: a keep-alive, and a check that the producer lives
        self._idle = reader_wait(keep_alive, log.lease_time)
        self._retry = f"retry: {int(retry * 1000)}\n\n".encode()
        self._max_body = max_body
        self._send_timeout = send_timeout
        self._producers: set[asyncio.Task[Any]] = set()
        self._wire = check_format(wire)

    async def aclose(self, grace: float = 0.0) -> None:
        """Stop this instance's running streams, after ``grace`` seconds for them to finish.

        Those still running then end ``aborted`` (reason ``shutdown``); those that finish within
        the grace end as they would.
        """
        producers = list(self._producers)
        if producers and grace > 0:
            _, producers_left = await asyncio.wait(producers, timeout=grace)
            producers = list(producers_left)
        for task in producers:
            task.cancel()
        await asyncio.gather(*producers, return_exceptions=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            await self.aclose()
            return
        if scope["type"] != "http":
            raise ValueError(f"the durable endpoint serves HTTP, not {scope['type']!r}")
        path = _relative_path(scope)
        method = scope["method"]
        parts = [part for part in path.split("/") if part]
        if not parts:
            if method == "GET":
                await _respond_bytes(send, 200, _page(self.log), b"text/html; charset=utf-8")
            elif method == "POST":
                await self._start(scope, receive, send)
            else:
                await respond_json(
                    send, 405, {"error": "GET the page or POST a JSON object"}, _allow(b"GET, POST")
                )
            return
        stream_id = parts[0]
        action = parts[1] if len(parts) == 2 else None
        if not STREAM_ID.fullmatch(stream_id) or len(parts) > 2 or action not in (None, *_ACTIONS):
            await respond_json(send, 404, {"error": "no such route"})
        elif action == "stream":
            if method != "GET":
                await respond_json(send, 405, {"error": "GET a chat's running stream"}, _allow(b"GET"))
            else:
                await self._resume_chat(scope, receive, send, stream_id)
        elif len(parts) == 2:
            if method != "POST":
                await respond_json(send, 405, {"error": "POST to stop a stream"}, _allow(b"POST"))
            else:
                await self._stop(stream_id, send)
        elif method != "GET":
            await respond_json(send, 405, {"error": "GET a stream"}, _allow(b"GET"))
        else:
            await self._follow(scope, receive, send, stream_id=stream_id, last_event_id=_last_event_id(scope))

    async def _resume_chat(self, scope: Scope, receive: Receive, send: Send, chat_id: str) -> None:
        # the AI SDK's resume reads the whole running answer: its page lost what it had shown
        try:
            info = await self.log.info(chat_id)
        except EventLogError as error:
            await respond_json(send, 503, {"error": str(error)})
            return
        if info is None or info.finished:
            await _respond_bytes(send, 204, b"", b"text/plain")  # no running answer: nothing to resume
            return
        await self._follow(scope, receive, send, stream_id=chat_id, last_event_id=None, wire="ai-sdk")

    async def _start(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_limited(receive, self._max_body)
        if body is None:
            await respond_json(send, 413, {"error": f"the request body exceeds {self._max_body} bytes"})
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
        stream_id = _query(scope, "stream_id") or stream_key(wire, request_json) or secrets.token_urlsafe(12)
        if not STREAM_ID.fullmatch(stream_id):
            await respond_json(send, 400, {"error": "stream_id: 1 to 128 of A-Z a-z 0-9 _ -"})
            return
        try:
            made = self._make_stream(request_json)
            stream = await made if inspect.isawaitable(made) else made
        except ValueError as error:
            await respond_json(send, 422, {"error": str(error)[:2000]})
            return
        try:
            if wire == "deltaflow":
                lease = await self.log.claim(stream_id)
            else:
                lease = await claim_conversation(self.log, stream_id)
                await start_in_wire(self.log, lease, wire, request_json)
        except EventLogError as error:
            await _close(stream)
            status = 409 if isinstance(error, LeaseConflict) else 503
            await respond_json(send, status, {"error": str(error)})
            return
        task = asyncio.ensure_future(self._produce(produce(self.log, lease, stream, exclude=self._exclude)))
        self._producers.add(task)
        task.add_done_callback(self._producers.discard)
        if b"application/json" in _header(scope, b"accept"):
            url = f"{_mount_path(scope)}/{stream_id}"
            created = {"stream_id": stream_id, "url": url}
            await respond_json(send, 201, created, _stream_headers(scope, stream_id))
            return
        await self._follow(scope, receive, send, stream_id=stream_id, last_event_id=None, wire=wire)

    @staticmethod
    async def _produce(running: Any) -> None:
        try:
            await running
        except EventLogError as error:
            # readers see the log's failure (or the reaped stream) themselves; no content is logged
            _logger.warning("durable stream %s ended without its terminal entry: %r", error.stream_id, error)

    async def _stop(self, stream_id: str, send: Send) -> None:
        try:
            stopping = await self.log.request_stop(stream_id)
            known = stopping or await self.log.info(stream_id) is not None
        except EventLogUnavailable as error:
            await respond_json(send, 503, {"error": str(error)})
            return
        if stopping:
            await respond_json(send, 202, {"stream_id": stream_id, "stopping": True})
        elif known:
            await respond_json(send, 409, {"error": f"stream {stream_id!r} has ended already"})
        else:
            await respond_json(send, 404, {"error": f"no stream {stream_id!r}"})

    async def _follow(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        *,
        stream_id: str,
        last_event_id: str | None,
        wire: WireFormat | None = None,
    ) -> None:
        try:
            wire = wire or check_format(_query(scope, "wire") or self._wire)
        except ValueError as error:
            await respond_json(send, 400, {"error": str(error)})
            return
        if last_event_id is not None and not _LAST_EVENT_ID.fullmatch(last_event_id):
            await respond_json(send, 400, {"error": "Last-Event-ID must be an event id of this relay"})
            return
        try:
            # one read of the stream's state per reader joining
            info = await self.log.info(stream_id)
            position = resume_point(info, stream_id, last_event_id)
        except EventLogError as error:
            await respond_json(
                send, 503 if isinstance(error, EventLogUnavailable) else 404, {"error": str(error)}
            )
            return
        if info is not None and info.finished and position[1] >= info.sequence:
            # the reader has everything: 204 tells an EventSource not to reconnect
            await _respond_bytes(send, 204, b"", b"text/plain")
            return
        # a reader leaving ends this response only: the stream's producer goes on
        headers = _stream_headers(scope, stream_id)
        if wire != "deltaflow":
            following = follow_in_wire(
                self.log, send, stream_id=stream_id, position=position, wire=wire, idle=self._idle,
                headers=headers,
            )  # fmt: skip
            await until_disconnected(following, receive)
            return
        await until_disconnected(self._pump(send, stream_id, position, headers), receive)

    async def _pump(
        self, send: Send, stream_id: str, position: tuple[int, int], headers: list[tuple[bytes, bytes]]
    ) -> None:
        start: Message = {"type": "http.response.start", "status": 200, "headers": [*SSE_HEADERS, *headers]}
        await send(start)
        await send(response_body(self._retry))
        try:
            async for batch in follow_batches(self.log, stream_id, position, idle=self._idle):
                # one write per read of the log: a catch-up of thousands of events is a few writes
                frames = _KEEP_ALIVE if isinstance(batch, Idle) else b"".join(map(_log_frame, batch))
                try:
                    # the log is read at the reader's pace: a reader that stops reading holds a batch, no more
                    await asyncio.wait_for(send(response_body(frames)), self._send_timeout)
                except TimeoutError:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(send(response_body(_LAGGING, more=False)), 1.0)
                    return
        except EventLogError as error:
            code = "unavailable" if isinstance(error, EventLogUnavailable) else "not_found"
            failure = {"code": code, "message": str(error)}
            await send(response_body(sse_frame("log_error", json.dumps(failure)), more=False))
            return
        await send(response_body(b"", more=False))


def _log_frame(item: LogEntry | Gap) -> bytes:
    if isinstance(item, LogEntry) and item.kind == WIRE_START:
        return b""  # a front-end format's own entry: deltaflow's readers have no use for it
    if isinstance(item, Gap):
        gap = {"after": item.after, "next": item.next_id, "missing": item.missing}
        return sse_frame("gap", json.dumps(gap))
    return sse_frame(item.kind, item.data, item.id)


def _relative_path(scope: Scope) -> str:
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    # Starlette's Mount leaves the whole path in `path` and the mount point in `root_path`
    return path[len(root) :] if root and path.startswith(root) else path


def _mount_path(scope: Scope) -> str:
    root: str = scope.get("root_path", "")
    path: str = scope["path"]
    return (root if root and path.startswith(root) else "").rstrip("/")


def _stream_headers(scope: Scope, stream_id: str) -> list[tuple[bytes, bytes]]:
    # where a reader resumes: relay_events follows `location` when the connection breaks
    location = f"{_mount_path(scope)}/{stream_id}".encode()
    return [(b"location", location), (b"x-stream-id", stream_id.encode())]


def _header(scope: Scope, name: bytes) -> bytes:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value)
    return b""


def _query(scope: Scope, name: str) -> str | None:
    values = parse_qs(scope.get("query_string", b"").decode("latin-1")).get(name)
    return values[0] if values else None


def _last_event_id(scope: Scope) -> str | None:
    header = _header(scope, b"last-event-id").decode("latin-1").strip(" \t")
    return header or _query(scope, "last_event_id") or None


def _allow(methods: bytes) -> list[tuple[bytes, bytes]]:
    return [(b"allow", methods)]


async def _read_limited(receive: Receive, limit: int) -> bytes | None:
    """The request body, or None when it is larger than ``limit`` (or the client left)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        part = message.get("body", b"")
        size += len(part)
        if size > limit:
            return None
        parts.append(part)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _respond_bytes(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {"type": "http.response.start", "status": status, "headers": [(b"content-type", content_type)]}
    )
    await send(response_body(body, more=False))


async def _close(stream: Any) -> None:
    with contextlib.suppress(Exception):
        if hasattr(stream, "__aiter__"):  # AsyncChatStream, AsyncResponseStream: closed on the loop
            await stream.close()
        else:
            await asyncio.to_thread(stream.close)


def _page(log: EventLog) -> bytes:
    page = resources.files("deltaflow.durable").joinpath("_page.html").read_text(encoding="utf-8")
    return page.replace("{{EVENT_LOG}}", html.escape(describe_log(log))).encode()


def describe_log(log: EventLog) -> str:
    """Which event log serves the streams, for the page: its kind and where, never a credential."""
    if isinstance(log, MemoryEventLog):
        return "in memory (this instance's streams only)"
    where = getattr(log, "where", None)
    return f"{type(log).__name__}{f' at {where}' if where else ''}"
