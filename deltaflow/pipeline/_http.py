"""Chunks of one streamed request through the openai client, made lazily, closed promptly.

Two transports. ``fast`` (the default) reads the body through
``client.chat.completions.with_streaming_response.create(...)`` and decodes SSE itself: a chunk is
built with ``ChatCompletionChunk.model_validate_json`` (about 3 µs) instead of openai's
``construct_type`` (about 60 µs). ``openai`` iterates the client's own ``Stream``. Both go through the
client, so auth, base_url, headers, retries and timeouts behave as users expect.

Failures in the middle of the body become typed errors: a stall past the idle timeout
``StreamTimeout``, a broken connection ``StreamInterrupted``, a provider's mid-stream error
``ProviderError``, malformed JSON ``StreamContractError``. The pipeline attaches the partial
completion as they pass the accumulator.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from typing import Any, Literal

import openai
from openai.types.chat import ChatCompletionChunk

from deltaflow._openai_compat import HTTP_TIMEOUT_ERRORS, HTTP_TRANSPORT_ERRORS
from deltaflow.errors import (
    DeltaflowError,
    ProviderError,
    StreamContractError,
    StreamInterrupted,
    StreamTimeout,
)
from deltaflow.pipeline._chunks import DONE, chunk_from_event
from deltaflow.pipeline._sse import SSEDecoder

__all__ = ["AsyncChunkRequest", "ChunkRequest", "Transport"]

Transport = Literal["fast", "openai"]


class _RequestBase:
    """What both twins share: parameters, the idle clock and error translation."""

    def __init__(self, params: dict[str, Any], *, transport: Transport, idle_timeout: float | None) -> None:
        if transport not in ("fast", "openai"):
            raise ValueError(f"transport must be 'fast' or 'openai', not {transport!r}")
        self.params = {**params, "stream": True}
        if idle_timeout is not None and "timeout" not in params:
            # a silent connection trips the client's read timeout; keep-alive comments are caught below
            self.params["timeout"] = idle_timeout
        self.transport = transport
        self.idle_timeout = idle_timeout
        self.started = False
        self.receiving = False
        """The response started: failures from here on happen mid-stream."""
        self.closed = False
        self._last_chunk = 0.0

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
            raise StreamTimeout(self.idle_timeout)

    def _translate(self, error: Exception, client_timeout: object) -> Exception:
        if isinstance(error, DeltaflowError) or not self.receiving:
            # before the response started, openai's own errors (connection, status) are the right ones
            return error
        if isinstance(error, (openai.APITimeoutError, asyncio.TimeoutError, *HTTP_TIMEOUT_ERRORS)):
            return StreamTimeout(self.idle_timeout or _seconds(self.params.get("timeout", client_timeout)))
        if isinstance(error, (openai.APIConnectionError, *HTTP_TRANSPORT_ERRORS)):
            return StreamInterrupted(f"the connection broke mid-stream: {error!r}")
        if isinstance(error, openai.APIStatusError):
            return error
        if isinstance(error, openai.APIError):
            # openai's Stream raises APIError for a chunk carrying `error` (OpenRouter, Groq)
            return ProviderError(error.message, error=error.body)
        if isinstance(error, json.JSONDecodeError):
            return StreamContractError(f"malformed chunk, not JSON: {error}")
        return error


class ChunkRequest(_RequestBase):
    """The chunks of ``client.chat.completions.create(**params, stream=True)``, requested on first iteration.

    Iterate it once; ``close()`` (or leaving the iteration early) closes the HTTP response at once.
    """

    def __init__(
        self,
        client: openai.OpenAI,
        params: dict[str, Any],
        *,
        transport: Transport = "fast",
        idle_timeout: float | None = None,
    ) -> None:
        super().__init__(params, transport=transport, idle_timeout=idle_timeout)
        self.client = client
        self._response: AbstractContextManager[Any] | None = None
        self._stream: openai.Stream[ChatCompletionChunk] | None = None

    def __iter__(self) -> Iterator[ChatCompletionChunk]:
        self._begin()
        try:
            if self.transport == "openai":
                yield from self._openai()
                return
            # the fast path inline: one generator level less per chunk
            self._response = self.client.chat.completions.with_streaming_response.create(**self.params)
            response = self._response.__enter__()
            self.receiving = True
            decoder = SSEDecoder()
            decode = decoder.feed
            watch = self.idle_timeout is not None
            for read in response.iter_bytes():
                for event in decode(read):
                    if event.data == DONE:
                        return
                    chunk = chunk_from_event(event)
                    if watch:
                        self._chunk_arrived()
                    yield chunk
                if watch:
                    self._check_idle()
            for event in decoder.flush():
                if event.data == DONE:
                    return
                yield chunk_from_event(event)
        except Exception as error:
            translated = self._translate(error, self.client.timeout)
            if translated is error:
                raise
            raise translated from error
        finally:
            self.close()

    def _openai(self) -> Iterator[ChatCompletionChunk]:
        self._stream = self.client.chat.completions.create(**self.params)
        self.receiving = True
        for chunk in self._stream:
            self._chunk_arrived()
            yield chunk

    def close(self) -> None:
        """Close the HTTP response (idempotent)."""
        if self.closed:
            return
        self.closed = True
        if self._response is not None:
            self._response.__exit__(None, None, None)
        if self._stream is not None:
            self._stream.close()


class AsyncChunkRequest(_RequestBase):
    """The async twin of ``ChunkRequest``, for ``openai.AsyncOpenAI``.

    The idle timeout bounds every wait for the next read with ``asyncio.timeout``.
    """

    def __init__(
        self,
        client: openai.AsyncOpenAI,
        params: dict[str, Any],
        *,
        transport: Transport = "fast",
        idle_timeout: float | None = None,
    ) -> None:
        super().__init__(params, transport=transport, idle_timeout=idle_timeout)
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
            translated = self._translate(error, self.client.timeout)
            if translated is error:
                raise
            raise translated from error
        finally:
            await self.aclose()

    async def _next(self, iterator: AsyncIterator[Any]) -> Any:
        if self.idle_timeout is None:
            return await anext(iterator)
        async with asyncio.timeout(self.idle_timeout):
            return await anext(iterator)

    async def _fast(self) -> AsyncIterator[ChatCompletionChunk]:
        self._response = self.client.chat.completions.with_streaming_response.create(**self.params)
        response = await self._response.__aenter__()
        self.receiving = True
        decoder = SSEDecoder()
        reads = aiter(response.iter_bytes())
        while True:
            try:
                read = await self._next(reads)
            except StopAsyncIteration:
                break
            for event in decoder.feed(read):
                if event.data == DONE:
                    return
                chunk = chunk_from_event(event)
                self._chunk_arrived()
                yield chunk
            self._check_idle()
        for event in decoder.flush():
            if event.data == DONE:
                return
            yield chunk_from_event(event)

    async def _openai(self) -> AsyncIterator[ChatCompletionChunk]:
        self._stream = await self.client.chat.completions.create(**self.params)
        self.receiving = True
        chunks = aiter(self._stream)
        while True:
            try:
                chunk = await self._next(chunks)
            except StopAsyncIteration:
                return
            self._chunk_arrived()
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


def _seconds(timeout: object) -> float:
    """The read timeout in seconds, from a number or an httpx ``Timeout``."""
    read = getattr(timeout, "read", timeout)
    return float(read) if isinstance(read, int | float) else float("nan")
