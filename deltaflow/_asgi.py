"""The ASGI and server-sent-event plumbing the plain relay and the durable endpoint share.

Plain functions over ASGI's ``scope``/``receive``/``send``: read a request body, answer JSON, frame
an event, run a response until the client disconnects, answer the lifespan protocol.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, TypeAlias

Scope: TypeAlias = MutableMapping[str, Any]
Message: TypeAlias = MutableMapping[str, Any]
Receive: TypeAlias = Callable[[], Awaitable[Message]]
Send: TypeAlias = Callable[[Message], Awaitable[None]]

SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    # nginx buffers responses unless told otherwise, which would hold events back
    (b"x-accel-buffering", b"no"),
]


def sse_frame(event: str, data: str, event_id: str | None = None) -> bytes:
    """One server-sent event: ``id:`` (when given), ``event:`` and one ``data:`` line."""
    # event JSON holds no raw newline (json escapes them), so one data: line carries it whole
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


def response_body(chunk: bytes, *, more: bool = True) -> Message:
    """The ASGI message that sends ``chunk`` of a response body (the last one when ``more`` is false)."""
    return {"type": "http.response.body", "body": chunk, "more_body": more}


MAX_BODY_DEPTH = 64
"""How deeply a request body's arrays and objects may nest (deeper ones would exhaust the stack)."""


def json_object(body: bytes) -> dict[str, Any] | None:
    """The request body as a JSON object; None when it is not one, or nests deeper than ``MAX_BODY_DEPTH``."""
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # json recurses per level: 100,000 brackets exhaust the stack
        return None
    return value if isinstance(value, dict) and _depth_within(value, MAX_BODY_DEPTH) else None


def _depth_within(value: object, limit: int) -> bool:
    """Whether ``value`` nests at most ``limit`` arrays and objects deep (iteratively: no recursion)."""
    level: list[object] = [value]
    for _ in range(limit):
        level = [
            child
            for item in level
            for child in (item.values() if isinstance(item, dict) else item if isinstance(item, list) else ())
            if isinstance(child, dict | list)
        ]
        if not level:
            return True
    return False


async def read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client left before sending it."""
    parts: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        parts.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(parts)


async def until_disconnected(work: Awaitable[None], receive: Receive) -> None:
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


async def respond_json(
    send: Send, status: int, payload: object, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """Answer with ``payload`` as a JSON body and ``status``."""
    body = json.dumps(payload).encode()
    start_headers = [(b"content-type", b"application/json"), *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send(response_body(body, more=False))


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Answer ASGI's lifespan protocol for an app with nothing to start or stop."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
