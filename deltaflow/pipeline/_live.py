"""``deltaflow.stream`` / ``astream``: the drop-in for ``client.chat.completions.stream(...)``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import openai
from typing_extensions import TypeVar

from deltaflow._arguments import check_client, checked_stream_arguments
from deltaflow._openai_compat import response_format_param
from deltaflow._tools import is_rich_response_format
from deltaflow.dialects import Dialect, detect_dialect, get_dialect
from deltaflow.operators import RefusalMode
from deltaflow.pipeline._chat_stream import AsyncChatStream, ChatStream, ParseErrors
from deltaflow.pipeline._http import DEFAULT_IDLE_TIMEOUT, AsyncChunkRequest, ChunkRequest, Transport
from deltaflow.pipeline._sse import DEFAULT_MAX_LINE

__all__ = ["astream", "request_params", "stream"]

# as openai's: a stream without a response_format parses nothing (its parsed is None)
ResponseFormatT = TypeVar("ResponseFormatT", default=None)


def request_params(
    create_params: Mapping[str, Any],
    *,
    tools: Iterable[Mapping[str, Any]] | None,
    response_format: object,
    include_usage: bool,
) -> dict[str, Any]:
    """The parameters for ``chat.completions.create``, as openai's ``.stream()`` helper sends them.

    A type ``response_format`` becomes openai's strict ``json_schema`` param; usage is requested
    (``stream_options.include_usage``) unless the caller set ``stream_options`` or the provider
    does not accept it.
    """
    tools = checked_stream_arguments(tools, response_format)
    params = dict(create_params)
    if tools is not None:
        params["tools"] = tools
    if response_format is not None:
        params["response_format"] = (
            response_format_param(response_format)
            if is_rich_response_format(response_format)
            else response_format
        )
    if include_usage and "stream_options" not in params:
        params["stream_options"] = {"include_usage": True}
    params.pop("stream", None)
    return params


def _prepare(
    base_url: str,
    dialect: str | Dialect | None,
    create_params: Mapping[str, Any],
    tools: Iterable[Mapping[str, Any]] | None,
    response_format: object,
) -> tuple[Dialect, dict[str, Any]]:
    """The dialect (named, else detected from the base URL) and the request parameters it allows."""
    chosen = get_dialect(dialect) if dialect is not None else detect_dialect(base_url)
    params = request_params(
        create_params, tools=tools, response_format=response_format, include_usage=chosen.include_usage
    )
    return chosen, params


def _facade_options(  # noqa: PLR0917 - the facades' own keyword parameters, passed on
    dialect: Dialect,
    params: dict[str, Any],
    response_format: Any,
    refusals: RefusalMode,
    parsed_deltas: bool,
    parsed_done: bool,
    parse_errors: ParseErrors,
) -> dict[str, Any]:
    return {
        "tools": params.get("tools"),
        "response_format": response_format,
        "dialect": dialect,
        "refusals": refusals,
        "parsed_deltas": parsed_deltas,
        "parsed_done": parsed_done,
        "parse_errors": parse_errors,
    }


def stream(
    client: openai.OpenAI,
    *,
    tools: Iterable[Mapping[str, Any]] | None = None,
    response_format: type[ResponseFormatT] | Mapping[str, Any] | None = None,
    dialect: str | Dialect | None = None,
    transport: Transport = "fast",
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    max_line: int = DEFAULT_MAX_LINE,
    refusals: RefusalMode = "keep",
    parsed_deltas: bool = True,
    parsed_done: bool = False,
    parse_errors: ParseErrors = "raise",
    **create_params: Any,
) -> ChatStream[ResponseFormatT]:
    """Stream a chat completion through ``client``: the drop-in for ``client.chat.completions.stream``.

    The request starts when the stream is first iterated (or on ``until_done()``), and the HTTP
    response is closed when the stream ends, is closed, or its ``with`` block is left.

    Args:
        client: an ``openai.OpenAI`` client (any OpenAI-compatible ``base_url``).
        tools: the request's tools, including ``openai.pydantic_function_tool(...)``.
        response_format: a pydantic model to parse into, or a ``response_format`` dict.
        dialect: the provider's dialect (a name or a ``Dialect``); by default detected from
            ``client.base_url``: OpenAI's own, a known provider, else the tolerant ``generic``.
            Usage is requested only from providers that accept ``stream_options``.
        transport: ``"fast"`` decodes the HTTP body itself; ``"openai"`` iterates openai's ``Stream``.
        idle_timeout: seconds without a chunk before the stream ends with ``StreamTimeout``, from
            the request on; keep-alive comments, pings and stray bytes do not count. The default,
            ``DEFAULT_IDLE_TIMEOUT`` (600 s, openai's read timeout), leaves a reasoning model minutes
            to think; a shorter client read timeout ends a silence sooner. None waits as long as
            the client's read timeout, which any byte resets.
        max_line: the longest SSE line accepted, in bytes; longer ends the stream with
            ``StreamContractError`` (a chunk is one line: this bounds a chunk's size).
        refusals: ``operators.filter_refusals`` mode.
        parsed_deltas: emit ``content.parsed.delta`` events when content is parsed.
        parsed_done: emit ``content.parsed.done`` for each sub-value when it closes.
        parse_errors: ``"raise"`` (default, as openai's helper) a ``ParseError`` at the end of the
            stream when content or tool arguments failed to parse, after every event; ``"keep"``
            going, ``parsed`` None and the ``error`` event telling.
        **create_params: everything else ``chat.completions.create`` takes (model, messages, ...).

    Raises:
        TypeError: before any request, when ``client`` is not an ``openai.OpenAI`` (an async
            client goes to ``astream``), or ``tools`` / ``response_format`` are not what openai takes.

    Example::

        with deltaflow.stream(client, model="gpt-4o-mini", messages=messages) as s:
            for event in s:
                if event.type == "content.delta":
                    print(event.delta, end="")
    """
    check_client(
        client,
        asynchronous=False,
        caller="deltaflow.stream",
        instead="async with deltaflow.astream(client, ...)",
    )
    chosen, params = _prepare(str(client.base_url), dialect, create_params, tools, response_format)
    chunks = ChunkRequest(client, params, transport=transport, idle_timeout=idle_timeout, max_line=max_line)
    return ChatStream(
        chunks,
        **_facade_options(
            chosen, params, response_format, refusals, parsed_deltas, parsed_done, parse_errors
        ),
    )


def astream(
    client: openai.AsyncOpenAI,
    *,
    tools: Iterable[Mapping[str, Any]] | None = None,
    response_format: type[ResponseFormatT] | Mapping[str, Any] | None = None,
    dialect: str | Dialect | None = None,
    transport: Transport = "fast",
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
    max_line: int = DEFAULT_MAX_LINE,
    refusals: RefusalMode = "keep",
    parsed_deltas: bool = True,
    parsed_done: bool = False,
    parse_errors: ParseErrors = "raise",
    **create_params: Any,
) -> AsyncChatStream[ResponseFormatT]:
    """The async twin of ``stream``, for ``openai.AsyncOpenAI``.

    Both ``async with deltaflow.astream(...) as s`` and ``async with await deltaflow.astream(...)``
    work; the request starts on first iteration.
    """
    check_client(
        client, asynchronous=True, caller="deltaflow.astream", instead="with deltaflow.stream(client, ...)"
    )
    chosen, params = _prepare(str(client.base_url), dialect, create_params, tools, response_format)
    chunks = AsyncChunkRequest(
        client, params, transport=transport, idle_timeout=idle_timeout, max_line=max_line
    )
    return AsyncChatStream(
        chunks,
        **_facade_options(
            chosen, params, response_format, refusals, parsed_deltas, parsed_done, parse_errors
        ),
    )
