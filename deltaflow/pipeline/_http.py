"""Chunks of one streamed request through the openai client, made lazily, closed promptly.

Two transports. ``fast`` (the default) reads the body through
``client.chat.completions.with_streaming_response.create(...)`` and decodes SSE itself: a chunk is
built with ``ChatCompletionChunk.model_validate_json`` (about 3 µs) instead of openai's
``construct_type`` (about 60 µs). ``openai`` iterates the client's own ``Stream``. Both go through the
client, so auth, base_url, headers, retries, timeouts and the connection pool behave as users expect.

Failures in the middle of the body become typed errors, the same on both transports: a stall past
the idle timeout ``StreamTimeout``; a broken connection or a body cut mid-line ``StreamInterrupted``
(both also openai's ``APIConnectionError``/``APITimeoutError``, as openai's own helper raises); a
provider's error, mid-stream or as a JSON body instead of an event stream, ``ProviderError``;
bytes that are not UTF-8, JSON, a chunk or a decodable ``Content-Encoding`` ``StreamContractError``.
The pipeline attaches the partial completion as they pass the accumulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, Literal

import openai
from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import Choice

from deltaflow._openai_compat import HTTP_DECODING_ERRORS, HTTP_TIMEOUT_ERRORS, HTTP_TRANSPORT_ERRORS
from deltaflow.errors import (
    DeltaflowError,
    StreamContractError,
    StreamInterrupted,
    StreamTimeout,
)
from deltaflow.pipeline._chunks import (
    DONE,
    KEEPALIVE_EVENTS,
    ChunkDecoder,
    KeepAlivePayloadError,
    chunk_from_event,
    provider_error_from,
)
from deltaflow.pipeline._sse import DEFAULT_MAX_LINE

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "AsyncChunkRequest",
    "AsyncStreamChunks",
    "ChunkRequest",
    "StreamChunks",
    "Transport",
]

Transport = Literal["fast", "openai"]

DEFAULT_IDLE_TIMEOUT = 600.0
"""The library's idle timeout, in seconds without a chunk: openai's own read timeout, counted in chunks.

Keep-alive comments and pings do not count, so a trickle of them cannot hold a stream open forever;
ten minutes leaves room for a reasoning model that thinks for minutes behind them (OpenRouter's
``: OPENROUTER PROCESSING``)."""

_DRAIN_SECONDS = 0.1
"""After ``[DONE]``, how long to wait for the end of the body so the connection goes back to the pool."""


class _RequestBase:
    """What both twins share: parameters, the idle clock, the body's checks and error translation."""

    def __init__(
        self,
        params: dict[str, Any],
        *,
        transport: Transport,
        idle_timeout: float | None,
        max_line: int,
        client_timeout: object = None,
    ) -> None:
        if transport not in ("fast", "openai"):
            raise ValueError(f"transport must be 'fast' or 'openai', not {transport!r}")
        if max_line < 1:
            raise ValueError(f"max_line must be positive, not {max_line}")
        if idle_timeout is not None and not idle_timeout > 0:
            raise ValueError(f"idle_timeout must be positive or None, not {idle_timeout}")
        self.params = {**params, "stream": True}
        read_timeout = _seconds(params.get("timeout", client_timeout))
        self.silence_bounded = idle_timeout is None or read_timeout <= idle_timeout
        """The client's read timeout ends a silent connection by the idle timeout: no clock needed for it."""
        if not self.silence_bounded and "timeout" not in params:
            # a silent connection trips the client's read timeout; keep-alive comments are caught below
            self.params["timeout"] = _with_read(client_timeout, idle_timeout)
            self.silence_bounded = True
        self.transport = transport
        self.idle_timeout = idle_timeout
        self.max_line = max_line
        self.started = False
        self.receiving = False
        """The response started: failures from here on happen mid-stream."""
        self.closed = False
        self._last_chunk = 0.0
        self._http: Any = None
        """The httpx response, once it started."""
        self._body_ended = False
        self._line = 0
        self._mid_line = False
        """With ``transport="openai"``: the body read so far ends inside a line."""

    def _begin(self) -> None:
        if self.started:
            raise RuntimeError("a streamed request can be iterated only once")
        self.started = True
        self._last_chunk = time.monotonic()

    def _chunk_arrived(self) -> None:
        if self.idle_timeout is not None:
            self._last_chunk = time.monotonic()

    def _check_idle(self) -> None:
        # OpenRouter-style keep-alive comments reset the read timeout but carry no chunk
        if self.idle_timeout is not None and time.monotonic() - self._last_chunk > self.idle_timeout:
            raise StreamTimeout(self.idle_timeout, request=self._request())

    def _watch_read(self, read: bytes) -> None:
        """Track, per read, what openai's ``Stream`` does not: the line length and where the body ended."""
        newline = max(read.rfind(b"\n"), read.rfind(b"\r"))
        # the line that was open, up to its end in this read (lines wholly inside one read, at most
        # a read long, are not measured: the bound is about memory, and a read is bounded already)
        ends = [index for index in (read.find(b"\n"), read.find(b"\r")) if index >= 0]
        line = self._line + (min(ends) if ends else len(read))
        if line > self.max_line:
            raise StreamContractError(f"an SSE line longer than {self.max_line} bytes")
        self._line = line if newline < 0 else len(read) - newline - 1
        self._mid_line = self._line > 0

    def _watched(self, iter_bytes: Any) -> Any:
        """Wrap openai's ``iter_bytes`` to watch it read by read (``transport="openai"``)."""

        def watched(*args: Any, **kwargs: Any) -> Iterator[bytes]:
            for read in iter_bytes(*args, **kwargs):
                self._watch_read(read)
                yield read
                # a trickle of bytes never trips the read timeout: the idle clock counts chunks
                self._check_idle()
            self._body_ended = True

        return watched

    def _awatched(self, aiter_bytes: Any) -> Any:
        """The async twin of ``_watched``."""

        async def watched(*args: Any, **kwargs: Any) -> AsyncIterator[bytes]:
            async for read in aiter_bytes(*args, **kwargs):
                self._watch_read(read)
                yield read
                self._check_idle()
            self._body_ended = True

        return watched

    async def _next(self, iterator: AsyncIterator[Any]) -> Any:
        """The next item; past the idle timeout when the client's read timeout would not end a silence."""
        if self.silence_bounded:
            # the client's read timeout ends a silence in time; a trickle is caught by _check_idle
            return await anext(iterator)
        async with asyncio.timeout(self.idle_timeout):
            return await anext(iterator)

    def _chunks_of(self, stream: openai.Stream[ChatCompletionChunk]) -> Iterator[ChatCompletionChunk]:
        """The chunks of openai's ``Stream``, its bytes watched (``transport="openai"``, ``from_chunks``)."""
        self._http.iter_bytes = self._watched(self._http.iter_bytes)
        for chunk in stream:
            if self._skipped(chunk):
                continue
            self._chunk_arrived()
            yield chunk
        self._ended()

    async def _achunks_of(
        self, stream: openai.AsyncStream[ChatCompletionChunk]
    ) -> AsyncIterator[ChatCompletionChunk]:
        """The async twin of ``_chunks_of``."""
        self._http.aiter_bytes = self._awatched(self._http.aiter_bytes)
        chunks = aiter(stream)
        while True:
            try:
                chunk = await self._next(chunks)
            except StopAsyncIteration:
                break
            if self._skipped(chunk):
                continue
            self._chunk_arrived()
            yield chunk
        self._ended()

    def _ended(self) -> None:
        """The ``Stream`` ended: a body that stopped inside a line lost its last event."""
        if self._body_ended and self._mid_line:
            raise StreamInterrupted("the body ended in the middle of a line", request=self._request())

    def _request(self) -> Any:
        return getattr(self._http, "request", None)

    def _translate(self, error: Exception, client_timeout: object) -> Exception:
        if isinstance(error, DeltaflowError) or not self.receiving:
            # before the response started, openai's own errors (connection, status) are the right ones
            return error
        cause = error.__cause__ if isinstance(error, openai.APIConnectionError) else error
        if isinstance(cause, HTTP_DECODING_ERRORS):
            encoding = self._http.headers.get("content-encoding") if self._http is not None else None
            return StreamContractError(
                f"the body could not be decoded (content-encoding {encoding}): {cause}"
            )
        if isinstance(error, UnicodeDecodeError):
            # openai's SSE decoder decodes every line, comments too
            return StreamContractError(f"an SSE line is not UTF-8: {error}")
        if isinstance(error, RecursionError):
            return StreamContractError(f"malformed chunk, nested too deeply to decode: {error}")
        if isinstance(error, json.JSONDecodeError):
            return StreamContractError(f"malformed chunk, not JSON: {error}")
        if type(error) is ValueError:
            # json's own bound on an integer's digits (``data: {"n": 1111...}``, 5,000 digits)
            return StreamContractError(f"malformed chunk, a value json cannot decode: {error}"[:300])
        if isinstance(error, (openai.APITimeoutError, asyncio.TimeoutError, *HTTP_TIMEOUT_ERRORS)):
            read_timeout = _seconds(self.params.get("timeout", client_timeout))
            waited = read_timeout if self.idle_timeout is None else min(self.idle_timeout, read_timeout)
            return StreamTimeout(waited, request=self._request())
        if isinstance(error, (openai.APIConnectionError, *HTTP_TRANSPORT_ERRORS)):
            return StreamInterrupted(f"the connection broke mid-stream: {error!r}", request=self._request())
        if isinstance(error, openai.APIStatusError):
            return error
        if isinstance(error, openai.APIError):
            # openai's Stream raises APIError for a chunk carrying `error` (OpenRouter, Groq)
            return provider_error_from({"error": error.body if error.body is not None else error.message})
        return error

    def _not_an_event_stream(self, body: bytes) -> DeltaflowError:
        """The error for a 200 answer whose body is not an event stream (a provider's JSON error, say)."""
        content_type = self._http.headers.get("content-type") if self._http is not None else None
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            payload = None
        if isinstance(payload, dict) and payload.get("error") is not None:
            return provider_error_from(payload)
        excerpt = body[:200].decode("utf-8", errors="replace")
        return StreamContractError(
            f"the provider answered with {content_type}, not an event stream: {excerpt}"
        )

    def _is_event_stream(self) -> bool:
        # only a body that says it is JSON (or a proxy's HTML error page) is read as such: some servers
        # label SSE text/plain
        content_type = (self._http.headers.get("content-type") or "").lower()
        return "json" not in content_type and "html" not in content_type

    @staticmethod
    def _skipped(chunk: Any) -> bool:
        """Whether openai's chunk is a keep-alive (``{"type": "ping"}``), to skip.

        Raises:
            StreamContractError: a payload that is not an object with a list of choices, as the fast
                transport says.
        """
        if not isinstance(chunk, ChatCompletionChunk):
            # openai builds a chunk only from a JSON object: `data: [1, 2]` comes through as the list
            raise StreamContractError(f"malformed chunk, not a JSON object: {chunk!r}"[:300])
        choices = chunk.choices
        if type(choices) is list and all(type(choice) is Choice for choice in choices):
            return False
        extra = chunk.__pydantic_extra__ or {}
        if choices is None and extra.get("type") in KEEPALIVE_EVENTS:
            return True
        raise StreamContractError(f"malformed chunk, no list of choices: {chunk!r}"[:300])


class ChunkRequest(_RequestBase):
    """The chunks of ``client.chat.completions.create(**params, stream=True)``, requested on first iteration.

    Iterate it once; ``close()`` (or leaving the iteration early) closes the HTTP response at once,
    also from another thread while a read is blocked.
    """

    def __init__(
        self,
        client: openai.OpenAI,
        params: dict[str, Any],
        *,
        transport: Transport = "fast",
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        max_line: int = DEFAULT_MAX_LINE,
    ) -> None:
        super().__init__(
            params,
            transport=transport,
            idle_timeout=idle_timeout,
            max_line=max_line,
            client_timeout=getattr(client, "timeout", None),  # a look-alike client may not say
        )
        self.client = client
        self._response: AbstractContextManager[Any] | None = None
        self._stream: openai.Stream[ChatCompletionChunk] | None = None
        self._thread: int | None = None

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        self._begin()
        self._thread = threading.get_ident()
        try:
            if self.transport == "openai":
                yield from self._openai()
                return
            # the fast path inline: one generator level less per chunk
            self._response = self.client.chat.completions.with_streaming_response.create(**self.params)
            response = self._response.__enter__()
            self._http = response.http_response
            self.receiving = True
            reads = response.iter_bytes()
            if not self._is_event_stream():
                raise self._not_an_event_stream(_read_up_to(reads, self.max_line))  # noqa: TRY301 - translated below like every failure
            decoder = ChunkDecoder(max_line=self.max_line)
            # ChunkDecoder.chunks inline: no generator per read on the hot path
            decode = decoder.decoder.feed
            # the idle clock, inline: one clock read per network read, none per chunk
            idle = self.idle_timeout if self.idle_timeout is not None else float("inf")
            last_chunk = time.monotonic()
            for read in reads:
                arrived = False
                for event in decode(read):
                    if event.data == DONE:
                        return
                    if event.event is not None and event.event in KEEPALIVE_EVENTS:
                        continue
                    try:
                        chunk = chunk_from_event(event)
                    except KeepAlivePayloadError:
                        continue
                    arrived = True
                    yield chunk
                now = time.monotonic()
                if arrived:
                    last_chunk = now
                elif now - last_chunk > idle:
                    # OpenRouter-style keep-alives reset the read timeout but carry no chunk
                    raise StreamTimeout(idle, request=self._request())  # noqa: TRY301 - translated below like every failure
            yield from decoder.finish()
        except Exception as error:
            # closed from another thread, the read fails too: the facade, knowing it closed, ends quietly
            translated = self._translate(error, getattr(self.client, "timeout", None))
            if translated is error:
                raise
            raise translated from error
        finally:
            self._release()

    def _openai(self) -> Iterator[ChatCompletionChunk]:
        self._stream = self.client.chat.completions.create(**self.params)
        self._http = self._stream.response
        self.receiving = True
        if not self._is_event_stream():
            raise self._not_an_event_stream(_read_up_to(self._http.iter_bytes(), self.max_line))
        yield from self._chunks_of(self._stream)

    def close(self) -> None:
        """Close the HTTP response (idempotent).

        From another thread, while the iteration is blocked in a read, the connection's socket is shut
        down: the read fails at once (``StreamInterrupted``), and the iterating thread closes the response.
        """
        if self.closed:
            return
        self.closed = True
        if self._thread is not None and self._thread != threading.get_ident():
            _shut_down(self._http)
            return
        self._release()

    def _release(self) -> None:
        self.closed = True
        response, self._response = self._response, None
        stream, self._stream = self._stream, None
        if response is not None:
            response.__exit__(None, None, None)
        if stream is not None:
            stream.close()


class AsyncChunkRequest(_RequestBase):
    """The async twin of ``ChunkRequest``, for ``openai.AsyncOpenAI``.

    The idle timeout bounds every wait for the next chunk with ``asyncio.timeout``.
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        params: dict[str, Any],
        *,
        transport: Transport = "fast",
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
        max_line: int = DEFAULT_MAX_LINE,
    ) -> None:
        super().__init__(
            params,
            transport=transport,
            idle_timeout=idle_timeout,
            max_line=max_line,
            client_timeout=getattr(client, "timeout", None),  # a look-alike client may not say
        )
        self.client = client
        self._response: AbstractAsyncContextManager[Any] | None = None
        self._stream: openai.AsyncStream[ChatCompletionChunk] | None = None

    async def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        self._begin()
        try:
            if self.transport == "fast":
                async for chunk in self._fast():
                    yield chunk
            else:
                async for chunk in self._openai():
                    yield chunk
        except Exception as error:
            translated = self._translate(error, getattr(self.client, "timeout", None))
            if translated is error:
                raise
            raise translated from error
        finally:
            await self.aclose()

    async def _fast(self) -> AsyncIterator[ChatCompletionChunk]:
        self._response = self.client.chat.completions.with_streaming_response.create(**self.params)
        response = await self._response.__aenter__()
        self._http = response.http_response
        self.receiving = True
        reads = aiter(response.iter_bytes())
        if not self._is_event_stream():
            raise self._not_an_event_stream(await _aread_up_to(reads, self.max_line))
        decoder = ChunkDecoder(max_line=self.max_line)
        while True:
            try:
                read = await self._next(reads)
            except StopAsyncIteration:
                break
            for chunk in decoder.chunks(read):
                self._chunk_arrived()
                yield chunk
            if decoder.done:
                await _adrain(reads)
                return
            self._check_idle()
        for chunk in decoder.finish():
            yield chunk

    async def _openai(self) -> AsyncIterator[ChatCompletionChunk]:
        self._stream = await self.client.chat.completions.create(**self.params)
        self._http = self._stream.response
        self.receiving = True
        if not self._is_event_stream():
            raise self._not_an_event_stream(
                await _aread_up_to(aiter(self._http.aiter_bytes()), self.max_line)
            )
        async for chunk in self._achunks_of(self._stream):
            yield chunk

    async def aclose(self) -> None:
        """Close the HTTP response (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self._response is not None:
            await self._response.__aexit__(None, None, None)
        if self._stream is not None:
            await self._stream.close()


class StreamChunks(_RequestBase):
    """An openai ``Stream`` the user created, read under deltaflow's rules (``from_chunks``' guard).

    openai's ``Stream`` lets its decoders' exceptions out raw (``UnicodeDecodeError``,
    ``JSONDecodeError``, ``RecursionError``, ``ValueError``) and has no idle timeout: read through
    this, they become the same typed errors as on ``stream()``'s ``openai`` transport, ``ping``
    payloads are skipped, and a trickle of bytes without a chunk ends in ``StreamTimeout``, as does a
    silent connection (the response's read timeout is lowered to the idle timeout before its body is
    read).
    """

    def __init__(
        self, stream: openai.Stream[ChatCompletionChunk], *, idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT
    ) -> None:
        super().__init__({}, transport="openai", idle_timeout=idle_timeout, max_line=DEFAULT_MAX_LINE)
        self._stream = stream
        self._http = stream.response
        self._client_timeout = _bound_reads(self._http, idle_timeout)
        self.silence_bounded = idle_timeout is None or self._client_timeout <= idle_timeout

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        self._begin()
        self.receiving = True
        try:
            # its bytes are watched from before openai's generator first runs (it asks for them then)
            yield from self._chunks_of(self._stream)
        except Exception as error:
            translated = self._translate(error, self._client_timeout)
            if translated is error:
                raise
            raise translated from error
        finally:
            self.close()

    def close(self) -> None:
        """Close the stream and its HTTP response (idempotent)."""
        self.closed = True
        self._stream.close()


class AsyncStreamChunks(_RequestBase):
    """The async twin of ``StreamChunks``, for an ``openai.AsyncStream``: here a silence is bounded too."""

    def __init__(
        self,
        stream: openai.AsyncStream[ChatCompletionChunk],
        *,
        idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    ) -> None:
        super().__init__({}, transport="openai", idle_timeout=idle_timeout, max_line=DEFAULT_MAX_LINE)
        self._stream = stream
        self._http = stream.response
        self._client_timeout = _bound_reads(self._http, idle_timeout)
        self.silence_bounded = idle_timeout is None or self._client_timeout <= idle_timeout

    async def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        self._begin()
        self.receiving = True
        try:
            async for chunk in self._achunks_of(self._stream):
                yield chunk
        except Exception as error:
            translated = self._translate(error, self._client_timeout)
            if translated is error:
                raise
            raise translated from error
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the stream and its HTTP response (idempotent)."""
        self.closed = True
        await self._stream.close()


def _bound_reads(response: Any, idle_timeout: float | None) -> float:
    """Lower the read timeout of a response not yet read to ``idle_timeout``; the read timeout it gets.

    The HTTP core reads the request's ``timeout`` extension when the body starts (httpx's documented
    per-request timeouts), so a silence past the idle timeout ends there, without a timer per read.
    """
    request = getattr(response, "request", None)
    extensions = getattr(request, "extensions", None)
    if not isinstance(extensions, dict) or not isinstance(extensions.get("timeout"), dict):
        return float("inf")
    timeouts = extensions["timeout"]
    read = _seconds(timeouts.get("read"))
    if idle_timeout is not None and idle_timeout < read:
        extensions["timeout"] = {**timeouts, "read": idle_timeout}
        return idle_timeout
    return read


def _read_up_to(reads: Iterator[bytes], limit: int) -> bytes:
    """The body, or its first ``limit`` bytes."""
    body = bytearray()
    for read in reads:
        body += read
        if len(body) > limit:
            break
    return bytes(body)


async def _aread_up_to(reads: AsyncIterator[bytes], limit: int) -> bytes:
    body = bytearray()
    async for read in reads:
        body += read
        if len(body) > limit:
            break
    return bytes(body)


async def _adrain(reads: AsyncIterator[bytes]) -> None:
    """Read the end of the body after ``[DONE]`` (briefly), so the connection goes back to the pool."""
    with contextlib.suppress(TimeoutError, *HTTP_TRANSPORT_ERRORS, *HTTP_DECODING_ERRORS):
        async with asyncio.timeout(_DRAIN_SECONDS):
            async for _ in reads:
                pass


def _shut_down(response: Any) -> None:
    """Shut the response's socket down: a read blocked on it in another thread returns at once.

    Closing the response from another thread would not wake the read (``close(2)`` does not).
    """
    stream = getattr(response, "extensions", {}).get("network_stream")
    sock = stream.get_extra_info("socket") if stream is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _with_read(timeout: object, read: float | None) -> object:
    """``timeout`` with its read timeout replaced: an httpx ``Timeout`` keeps its connect, write and pool."""
    if isinstance(timeout, openai.Timeout):
        return openai.Timeout(connect=timeout.connect, read=read, write=timeout.write, pool=timeout.pool)
    return read


def _seconds(timeout: object) -> float:
    """The read timeout in seconds, from a number or an httpx ``Timeout`` (None: no timeout, infinite)."""
    read = getattr(timeout, "read", timeout)
    return float(read) if isinstance(read, int | float) else float("inf")
