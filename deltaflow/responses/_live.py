"""``responses.stream`` / ``astream``: the drop-in for ``client.responses.stream(...)``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import openai
from typing_extensions import TypeVar

from deltaflow.pipeline import ParseErrors
from deltaflow.responses._request import AsyncResponseRequest, ResponseRequest, request_params
from deltaflow.responses._stream import AsyncResponseStream, ResponseStream

__all__ = ["astream", "stream"]

TextFormatT = TypeVar("TextFormatT", default=None)


def _prepared(
    response_id: str | None,
    starting_after: int | None,
    text_format: object,
    tools: Iterable[Mapping[str, Any]] | None,
    create_params: dict[str, Any],
) -> tuple[dict[str, Any], list[Any] | None]:
    given = [key for key, value in create_params.items() if value is not openai.omit]
    if response_id is not None or starting_after is not None:
        if given:
            # openai's own message, word for word
            raise ValueError(
                "Cannot provide both response_id/starting_after can't be provided together with "
                + ", ".join(given)
            )
        if response_id is None:
            raise ValueError("id must be provided when streaming an existing response")
        return {}, list(tools) if tools is not None else None
    params, _ = request_params(create_params, text_format=text_format, tools=tools)
    return params, list(tools) if tools is not None else None


def stream(
    client: openai.OpenAI,
    *,
    response_id: str | None = None,
    text_format: type[TextFormatT] | None = None,
    tools: Iterable[Mapping[str, Any]] | None = None,
    starting_after: int | None = None,
    openai_events: bool = True,
    deltaflow_events: bool = True,
    parse_errors: ParseErrors = "raise",
    **create_params: Any,
) -> ResponseStream[TextFormatT]:
    """``client.responses.stream(...)``, answered by deltaflow: the same parameters and events, and more.

    Use it as openai's (``with deltaflow.responses.stream(client, model=..., input=...) as stream:``);
    the request is sent on first iteration. See ``ResponseStream`` for deltaflow's own keywords.

    Raises:
        ValueError: ``model`` or ``input`` missing, or given with ``response_id`` (as openai).
        TypeError: ``text_format`` given together with ``text.format`` (as openai).
    """
    params, converted = _prepared(response_id, starting_after, text_format, tools, create_params)
    return ResponseStream(
        ResponseRequest(client, params, response_id=response_id),
        text_format=text_format,
        tools=converted,
        starting_after=starting_after,
        openai_events=openai_events,
        deltaflow_events=deltaflow_events,
        parse_errors=parse_errors,
    )


def astream(
    client: openai.AsyncOpenAI,
    *,
    response_id: str | None = None,
    text_format: type[TextFormatT] | None = None,
    tools: Iterable[Mapping[str, Any]] | None = None,
    starting_after: int | None = None,
    openai_events: bool = True,
    deltaflow_events: bool = True,
    parse_errors: ParseErrors = "raise",
    **create_params: Any,
) -> AsyncResponseStream[TextFormatT]:
    """The async twin of ``stream``: ``async with deltaflow.responses.astream(client, ...) as stream``."""
    params, converted = _prepared(response_id, starting_after, text_format, tools, create_params)
    return AsyncResponseStream(
        AsyncResponseRequest(client, params, response_id=response_id),
        text_format=text_format,
        tools=converted,
        starting_after=starting_after,
        openai_events=openai_events,
        deltaflow_events=deltaflow_events,
        parse_errors=parse_errors,
    )
