"""The events of one ``POST /v1/responses`` (or a resumed ``GET``), read through the openai client.

The body is read through ``client.responses.with_streaming_response`` (so auth, base_url, headers,
retries and the connection pool are the client's) and decoded here: openai's own ``Stream`` raises an
untyped ``APIError`` at an ``error`` event and loses the events after it (openai-python#3934), while
deltaflow hands every event out and ends in a typed error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from copy import copy
from typing import Any

import openai
from openai.lib._parsing._responses import type_to_text_format_param
from openai.lib._response_resources import _make_tools  # openai's own tool conversion, kept identical

from deltaflow._openai_compat import HTTP_TIMEOUT_ERRORS, HTTP_TRANSPORT_ERRORS
from deltaflow.errors import StreamInterrupted, StreamTimeout
from deltaflow.pipeline import SSEDecoder
from deltaflow.responses._events import event_from_json

__all__ = ["AsyncResponseRequest", "ResponseRequest", "request_params", "responses_tools"]


def request_params(
    create_params: Mapping[str, Any], *, text_format: object, tools: Iterable[Mapping[str, Any]] | None
) -> tuple[dict[str, Any], list[Any]]:
    """The parameters of ``responses.create`` as openai's ``responses.stream()`` builds them, and its tools.

    Raises:
        TypeError: ``text_format`` given together with ``text.format``, as openai.
        ValueError: ``model`` or ``input`` missing, as openai.
    """
    params = {key: value for key, value in create_params.items() if value is not openai.omit}
    params.pop("stream", None)
    for required in ("input", "model"):
        if required not in params:
            raise ValueError(f"{required} must be provided when creating a new response")
    if text_format is not None:
        text = copy(params.get("text") or {})
        if "format" in text:
            raise TypeError("Cannot mix and match text.format with text_format")
        text["format"] = type_to_text_format_param(text_format)  # type: ignore[arg-type]
        params["text"] = text
    converted = responses_tools(tools)
    if tools is not None:
        params["tools"] = converted
    return params, converted


def responses_tools(tools: Iterable[Mapping[str, Any]] | None) -> list[Any]:
    """The tools as the Responses API takes them: ``pydantic_function_tool(...)`` converted as openai does."""
    return list(_make_tools(list(tools))) if tools is not None else []  # type: ignore[arg-type]


def _events(reads: Iterable[bytes], decoder: SSEDecoder) -> Iterator[Any]:
    for read in reads:
        for sse in decoder.feed(read):
            if sse.data.startswith("[DONE]"):
                return
            yield event_from_json(sse.data)
    yield from _flushed(decoder)


def _flushed(decoder: SSEDecoder) -> Iterator[Any]:
    """The end of the body: an event cut mid-line is a broken connection, not an event."""
    events = decoder.flush()
    if decoder.ended_mid_line:
        raise StreamInterrupted("the body ended in the middle of an event")
    for sse in events:
        if not sse.data.startswith("[DONE]"):
            yield event_from_json(sse.data)


def _translated(error: Exception) -> Exception:
    if isinstance(error, HTTP_TIMEOUT_ERRORS):
        return StreamTimeout(0.0)
    if isinstance(error, HTTP_TRANSPORT_ERRORS):
        return StreamInterrupted(f"the connection broke mid-stream: {error}")
    return error


class ResponseRequest:
    """The typed events of one streamed response, requested on first iteration; ``close()`` ends it."""

    def __init__(
        self, client: openai.OpenAI, params: dict[str, Any], *, response_id: str | None = None
    ) -> None:
        self.client = client
        self.params = params
        self.response_id = response_id
        self._response: Any = None

    def __iter__(self) -> Iterator[Any]:
        resource = self.client.responses.with_streaming_response
        if self.response_id is not None:
            self._response = resource.retrieve(self.response_id, stream=True, **self.params)
        else:
            self._response = resource.create(stream=True, **self.params)
        try:
            response = self._response.__enter__()
            yield from _events(response.iter_bytes(), SSEDecoder())
        except Exception as error:
            translated = _translated(error)
            if translated is error:
                raise
            raise translated from error
        finally:
            self.close()

    def close(self) -> None:
        """Close the HTTP response (idempotent)."""
        response, self._response = self._response, None
        if response is not None:
            response.__exit__(None, None, None)


class AsyncResponseRequest:
    """The async twin of ``ResponseRequest``."""

    def __init__(
        self, client: openai.AsyncOpenAI, params: dict[str, Any], *, response_id: str | None = None
    ) -> None:
        self.client = client
        self.params = params
        self.response_id = response_id
        self._response: Any = None

    async def __aiter__(self) -> AsyncIterator[Any]:
        resource = self.client.responses.with_streaming_response
        if self.response_id is not None:
            self._response = resource.retrieve(self.response_id, stream=True, **self.params)
        else:
            self._response = resource.create(stream=True, **self.params)
        try:
            response = await self._response.__aenter__()
            decoder = SSEDecoder()
            async for read in response.iter_bytes():
                for sse in decoder.feed(read):
                    if sse.data.startswith("[DONE]"):
                        return
                    yield event_from_json(sse.data)
            for event in _flushed(decoder):
                yield event
        except Exception as error:
            translated = _translated(error)
            if translated is error:
                raise
            raise translated from error
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP response (idempotent)."""
        response, self._response = self._response, None
        if response is not None:
            await response.__aexit__(None, None, None)
