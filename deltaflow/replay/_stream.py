"""The streaming answer: a scenario's events sent with pacing and faults, watching for the client leaving."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Mapping
from typing import Any

import anyio
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from deltaflow.pipeline._sse import ServerSentEvent

from ._fault import Fault
from ._journal import RecordedRequest, RequestJournal
from ._responses import response_error_event
from ._scenario import Scenario
from ._wire import DONE, Comment, ReplayItem, encode_chunk, encode_item

__all__ = ["ReplayStream", "StreamRegistry", "error_chunk"]

# an unterminated string: no JSON parser accepts it, whatever it does with the rest of the line
_MALFORMED = b'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"cut\n\n'


def error_chunk(error: Mapping[str, Any], events: tuple[ReplayItem, ...]) -> dict[str, Any]:
    """An OpenRouter-style mid-stream error: an ordinary chunk plus a top-level ``error`` object."""
    template: dict[str, Any] = {"id": "chatcmpl-replay-error", "created": 0, "model": "replay-1"}
    for item in events:
        if isinstance(item, ServerSentEvent):
            with contextlib.suppress(ValueError):
                payload = json.loads(item.data)
                if isinstance(payload, dict):
                    template = payload
                    break
    return {
        "id": template.get("id"),
        "object": "chat.completion.chunk",
        "created": template.get("created"),
        "model": template.get("model"),
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}],
        "error": dict(error),
    }


class StreamRegistry:
    """The streams in flight, so a stopping server can end them rather than wait out a stall."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._scopes: dict[anyio.CancelScope, asyncio.AbstractEventLoop] = {}
        self._closed = False

    def add(self, scope: anyio.CancelScope) -> None:
        """Track ``scope``; call on the server's event loop."""
        with self._lock:
            self._scopes[scope] = asyncio.get_running_loop()
            if self._closed:
                scope.cancel()

    def discard(self, scope: anyio.CancelScope) -> None:
        """Stop tracking ``scope``."""
        with self._lock:
            self._scopes.pop(scope, None)

    def close(self) -> None:
        """Cancel every stream, now and from then on; callable from any thread."""
        with self._lock:
            self._closed = True
            for scope, loop in self._scopes.items():
                with contextlib.suppress(RuntimeError):  # the loop already closed: nothing left to stop
                    loop.call_soon_threadsafe(scope.cancel)


class ReplayStream(Response):
    """An ASGI response sending one scenario as ``text/event-stream``.

    A watcher task waits for ``http.disconnect`` alongside the sender, so a client that leaves is noticed
    at once, even in the middle of a pacing sleep or a stall, and the sender is cancelled.
    """

    media_type = "text/event-stream"

    def __init__(  # the base __init__ would render an empty body and announce content-length: 0
        self,
        scenario: Scenario,
        *,
        fault: Fault | None,
        record: RecordedRequest,
        journal: RequestJournal,
        registry: StreamRegistry,
        headers: Mapping[str, str],
        responses_api: bool = False,
    ) -> None:
        self._scenario = scenario
        self._fault = fault
        self._record = record
        self._journal = journal
        self._registry = registry
        self._responses_api = responses_api
        self.status_code = 200
        self.background = None
        self.init_headers({"cache-control": "no-cache", **headers})
        # set before the last event goes out: a client that leaves after reading it has not left early,
        # and once the body is finished uvicorn reports http.disconnect anyway
        self._complete = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        with anyio.CancelScope() as outer:
            self._registry.add(outer)
            try:
                async with anyio.create_task_group() as group:
                    group.start_soon(self._watch, receive, group.cancel_scope)
                    await self._send_all(send)
                    group.cancel_scope.cancel()
            finally:
                self._registry.discard(outer)
                self._journal.finish(self._record)

    async def _watch(self, receive: Receive, group: anyio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        if not self._complete:
            self._journal.mark_disconnected(self._record)
        group.cancel()

    async def _send_all(self, send: Send) -> None:
        """Send the events; returning before the final message leaves the chunked body unfinished."""
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        scenario, fault = self._scenario, self._fault
        interval = 1 / scenario.tokens_per_second if scenario.tokens_per_second else 0.0
        sent, total = 0, scenario.event_count
        for item in scenario.events:
            # uvicorn's send does not yield while the socket accepts data: without this an unpaced stream
            # never lets the loop see the client leave, and keeps writing into a dead socket
            await anyio.lowlevel.checkpoint()
            if isinstance(item, Comment):
                await self._body(send, encode_item(item))
                continue
            if fault is not None and sent == fault.after:
                if fault.kind == "drop":
                    return
                if fault.kind == "stall":
                    await anyio.sleep(fault.seconds)
                elif fault.kind == "malformed":
                    await self._body(send, _MALFORMED)
                else:
                    self._complete = True
                    if self._responses_api:  # an error event, and no [DONE]: the Responses API has none
                        error = response_error_event(fault.error, scenario.events, sent)
                        await self._body(send, encode_item(error))
                        break
                    error = ServerSentEvent(data=encode_chunk(error_chunk(fault.error, scenario.events)))
                    await self._body(send, encode_item(error) + encode_item(DONE))
                    break
            delay = scenario.ttft if sent == 0 else interval
            if delay:
                await anyio.sleep(delay)
            self._complete = sent + 1 == total
            await self._body(send, encode_item(item))
            sent += 1
            self._record.events_sent = sent
        self._complete = True
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    @staticmethod
    async def _body(send: Send, data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})
