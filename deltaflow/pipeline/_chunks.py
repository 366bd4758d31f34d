"""Chunk objects from wire payloads: fast where the payload is well-formed, lenient where not."""

from __future__ import annotations

import json
from typing import Any

from openai.types.chat import ChatCompletionChunk
from pydantic import ValidationError

from deltaflow._openai_compat import construct
from deltaflow._shown import shown
from deltaflow.errors import ProviderError, StreamContractError
from deltaflow.pipeline._sse import ServerSentEvent

__all__ = ["DONE", "chunk_from_dict", "chunk_from_event", "chunk_from_json", "provider_error_from"]

DONE = "[DONE]"
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


def chunk_from_dict(payload: Any) -> ChatCompletionChunk:
    """Build a chunk from its decoded JSON, leniently (unknown values are kept, not rejected)."""
    if not isinstance(payload, dict):
        raise StreamContractError(f"malformed chunk, not a JSON object: {shown(payload)}")
    if payload.get("error") is not None:
        raise provider_error_from(payload)
    if not isinstance(payload.get("choices"), list):
        raise StreamContractError(f"malformed chunk, no choices list: {shown(payload)}")
    return construct(ChatCompletionChunk, payload)


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


def provider_error_from(payload: dict[str, Any]) -> ProviderError:
    """A ``ProviderError`` from a payload carrying ``error`` (and perhaps ``usage``)."""
    error = payload.get("error", payload)
    message = error.get("message") if isinstance(error, dict) else error
    return ProviderError(message if type(message) is str and message else shown(error), error=payload)


def _excerpt(data: str | bytes, limit: int = 200) -> str:
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else data
    return text if len(text) <= limit else text[:limit] + "..."
