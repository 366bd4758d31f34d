"""Chunk objects from wire payloads: fast where the payload is well-formed, lenient where not."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from openai.types.chat import ChatCompletionChunk
from pydantic import ValidationError

from deltaflow._openai_compat import build_chunk
from deltaflow._shown import shown
from deltaflow.errors import ProviderError, StreamContractError, StreamInterrupted
from deltaflow.pipeline._sse import DEFAULT_MAX_LINE, ServerSentEvent, SSEDecoder

__all__ = [
    "DONE",
    "KEEPALIVE_EVENTS",
    "ChunkDecoder",
    "chunk_from_dict",
    "chunk_from_event",
    "chunk_from_json",
    "provider_error_from",
]

DONE = "[DONE]"
KEEPALIVE_EVENTS = frozenset({"ping", "keepalive", "keep-alive", "heartbeat"})
"""Named events that only keep a connection alive (``event: ping``): skipped like comments."""
_validate_json = ChatCompletionChunk.__pydantic_validator__.validate_json


def chunk_from_json(data: str | bytes) -> ChatCompletionChunk:
    """Build a chunk from its JSON text.

    Validation from JSON is about 20 times cheaper than openai's ``construct_type``; a payload that
    does not validate (a provider's unexpected value) is built leniently, as the openai client would.
    A payload with a top-level ``error`` (OpenRouter's mid-stream errors) raises ``ProviderError``.
    """
    try:
        chunk = ChatCompletionChunk.model_validate_json(data)
    except ValidationError:
        try:
            payload = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise StreamContractError(f"malformed chunk, not JSON: {_excerpt(data)} ({exc!r})") from exc
        return chunk_from_dict(payload)
    extra = chunk.__pydantic_extra__
    if extra and extra.get("error") is not None:
        raise provider_error_from(chunk.to_dict())
    return chunk


class KeepAlivePayloadError(StreamContractError):
    """A ``data: {"type": "ping"}`` payload: not a chunk, so a contract error to whoever builds one.

    The decoders skip it, as the ``openai`` transport skips what openai's ``Stream`` hands on for it.
    """


def chunk_from_dict(payload: Any) -> ChatCompletionChunk:
    """Build a chunk from its decoded JSON, leniently (unknown values are kept, not rejected)."""
    if not isinstance(payload, dict):
        raise StreamContractError(f"malformed chunk, not a JSON object: {shown(payload)}")
    if payload.get("error") is not None:
        raise provider_error_from(payload)
    choices = payload.get("choices")
    if choices is None and payload.get("type") in KEEPALIVE_EVENTS:
        raise KeepAlivePayloadError(f"a keep-alive payload, not a chunk: {shown(payload)}")
    if not isinstance(choices, list) or not all(isinstance(choice, dict) for choice in choices):
        raise StreamContractError(f"malformed chunk, no list of choices: {shown(payload)}")
    return build_chunk(payload)


def chunk_from_event(event: ServerSentEvent) -> ChatCompletionChunk:
    """Build a chunk from one SSE event; an ``error`` event (Groq's mid-stream failures) raises."""
    if event.event is None:
        # the hot path over HTTP, as chunk_from_json without two Python frames
        try:
            chunk: ChatCompletionChunk = _validate_json(event.data)
        except ValidationError:
            return chunk_from_json(event.data)
        extra = chunk.__pydantic_extra__
        if extra and extra.get("error") is not None:
            raise provider_error_from(chunk.to_dict())
        return chunk
    if event.event == "error":
        try:
            payload = json.loads(event.data)
        except ValueError:
            payload = {"error": {"message": event.data}}
        raise provider_error_from(payload if isinstance(payload, dict) else {"error": payload})
    return chunk_from_json(event.data)


class ChunkDecoder:
    """SSE bytes in, chunks out, up to ``[DONE]``: what every SSE path shares.

    ``chunks(read)`` yields each chunk before decoding the next, so a bad event never takes the
    chunks before it down with it. Keep-alive events are skipped; ``done`` is set at ``[DONE]``.
    """

    __slots__ = ("_feed", "decoder", "done")

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE) -> None:
        self.decoder = SSEDecoder(max_line=max_line)
        self._feed = self.decoder.feed
        self.done = False

    def chunks(self, read: bytes) -> Iterator[ChatCompletionChunk]:
        """The chunks one read completes (none once ``[DONE]`` has arrived)."""
        for event in self._feed(read):
            if event.data == DONE:
                self.done = True
                return
            if event.event not in KEEPALIVE_EVENTS:
                try:
                    chunk = chunk_from_event(event)
                except KeepAlivePayloadError:
                    continue
                yield chunk

    def finish(self) -> Iterator[ChatCompletionChunk]:
        """The end of the body: a last event without its blank line, or the sign of a body cut short.

        Raises:
            StreamInterrupted: the body ended inside a line that is not a whole event.
        """
        if self.done:
            return
        decoder = self.decoder
        events = decoder.flush()
        cut = decoder.ended_mid_line
        if cut and not events:
            raise StreamInterrupted("the body ended in the middle of a line")
        try:
            for event in events:
                if event.data == DONE:
                    self.done = True
                    return
                if event.event not in KEEPALIVE_EVENTS:
                    try:
                        chunk = chunk_from_event(event)
                    except KeepAlivePayloadError:
                        continue
                    yield chunk
        except StreamContractError as exc:
            if cut:
                raise StreamInterrupted(f"the body ended in the middle of a line: {exc}") from exc
            raise


def provider_error_from(payload: dict[str, Any]) -> ProviderError:
    """A ``ProviderError`` from a payload carrying ``error`` (and perhaps ``usage``)."""
    error = payload.get("error", payload)
    message = error.get("message") if isinstance(error, dict) else error
    return ProviderError(message if type(message) is str and message else shown(error), error=payload)


def _excerpt(data: str | bytes, limit: int = 200) -> str:
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    return text if len(text) <= limit else text[:limit] + "..."
