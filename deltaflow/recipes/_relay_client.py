"""``relay_events`` / ``arelay_events``: a relay's server-sent events read back as deltaflow events.

The client side of ``relay_endpoint`` and of the durable endpoint: it decodes each event, rebuilds
the running texts a durable log leaves out, and resumes a durable stream by ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import TYPE_CHECKING, Any

from openai.types.chat import ParsedChatCompletion

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
from deltaflow.events import Event
from deltaflow.pipeline import ServerSentEvent, aiter_sse, iter_sse
from deltaflow.recipes._relay_wire import COMPACTED_FIELDS, DONE_EVENT, EventDecoder

if TYPE_CHECKING:
    import httpx2 as httpx
else:
    try:  # openai's own HTTP client: httpx2 where openai moved to it, httpx before
        import httpx2 as httpx
    except ImportError:  # pragma: no cover - depends on the openai release installed
        import httpx

__all__ = ["RelayError", "arelay_events", "relay_events"]

# openai's default: long enough for slow reasoning models, finite so a dead relay is noticed
_DEFAULT_TIMEOUT = httpx.Timeout(600.0, connect=5.0)


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
        self._decoder = EventDecoder()
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
        if sse.event in COMPACTED_FIELDS:
            return self._rebuilt(sse.event, sse.data)
        return self._decoder.decode(sse.event, sse.data)

    def _rebuilt(self, kind: str, data: str) -> Event:
        """A delta event whose running text was left out, with that text rebuilt (lazily) from the deltas."""
        try:
            fields = json.loads(data)
        except (ValueError, RecursionError) as error:
            raise StreamContractError(f"the relay sent {kind!r} with invalid JSON: {error}") from error
        running, grows_by = COMPACTED_FIELDS[kind]
        if not isinstance(fields, dict) or running in fields:
            return self._decoder.from_fields(kind, fields)
        key = (kind, fields.get("choice_index"), fields.get("index"))
        pieces = self._pieces.setdefault(key, [])
        event = self._decoder.from_fields(kind, {**fields, running: ""})
        delta = fields[grows_by]  # present: the decoder checked the event's required fields
        if not isinstance(delta, str):
            raise StreamContractError(f"the relay sent {kind!r} whose {grows_by!r} is not text")
        pieces.append(delta)
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


def _headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    return {"accept": "text/event-stream", **(headers or {})}
