"""The few openai-python internals deltaflow relies on, in one place.

openai builds its snapshot models with ``construct_type``: nested models without validation, so a
provider's unexpected value (an unknown ``finish_reason``, say) survives instead of failing the
stream. deltaflow builds snapshots the same way, so they compare equal to openai's field for field.
Requests with a pydantic ``response_format`` are sent with the strict JSON schema openai's own
``.stream()`` helper derives from the model.
"""

from __future__ import annotations

import importlib
from typing import Any, TypeVar, cast

from openai._models import construct_type
from openai.lib._parsing import type_to_response_format_param
from openai.types.chat import ChatCompletionChunk
from pydantic import ValidationError

__all__ = [
    "HTTP_DECODING_ERRORS",
    "HTTP_TIMEOUT_ERRORS",
    "HTTP_TRANSPORT_ERRORS",
    "build_chunk",
    "construct",
    "response_format_param",
]

ModelT = TypeVar("ModelT")


def construct(model: type[ModelT], data: dict[str, Any]) -> ModelT:
    """Build ``model`` from ``data`` recursively, without validation (as openai does)."""
    return cast(ModelT, construct_type(type_=model, value=data))


_validate_chunk = ChatCompletionChunk.__pydantic_validator__.validate_python


def build_chunk(data: dict[str, Any]) -> ChatCompletionChunk:
    """A chunk from its fields: validated if they are well-formed, else built as openai builds it.

    Validation is about 20 times cheaper than ``construct``, as for chunks from JSON; a provider's
    unexpected value fails it and is then kept, not rejected.
    """
    try:
        return cast(ChatCompletionChunk, _validate_chunk(data))
    except ValidationError:
        return construct(ChatCompletionChunk, data)


def response_format_param(response_format: object) -> Any:
    """The request's ``response_format``: a type becomes openai's strict ``json_schema`` param."""
    return type_to_response_format_param(cast(Any, response_format))


def _http_errors(name: str) -> tuple[type[BaseException], ...]:
    # openai moved from httpx to its httpx2 fork; body-read errors come from whichever it uses
    found: list[type[BaseException]] = []
    for module_name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found.append(getattr(module, name))
    return tuple(found)


HTTP_TIMEOUT_ERRORS = _http_errors("TimeoutException")
HTTP_TRANSPORT_ERRORS = _http_errors("TransportError")
HTTP_DECODING_ERRORS = _http_errors("DecodingError")
