"""``to_events()``: the standard composition from chunks to the full event stream."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from openai.types.chat import ChatCompletionChunk
from reactivex import Observable
from reactivex import compose as rx_compose

from deltaflow.events import Event
from deltaflow.operators._accumulate import accumulate
from deltaflow.operators._assemble_tool_calls import assemble_tool_calls
from deltaflow.operators._check_finish_reasons import check_finish_reasons
from deltaflow.operators._filter_refusals import RefusalMode, filter_refusals
from deltaflow.operators._parse_partial_json import parse_partial_json
from deltaflow.state import RejectedChunk

__all__ = ["to_events"]


def to_events(
    *,
    tools: Iterable[Mapping[str, Any]] | None = None,
    response_format: object = None,
    refusals: RefusalMode = "keep",
    parsed_deltas: bool = True,
    parsed_done: bool = False,
    max_depth: int = 256,
    max_size: int | None = 64 * 1024 * 1024,
) -> Callable[[Observable[ChatCompletionChunk | RejectedChunk]], Observable[Event]]:
    """Chunks to events: the standard composition, configured from the request's parameters.

    ``accumulate``, ``check_finish_reasons``, ``assemble_tool_calls``, ``parse_partial_json`` and
    ``filter_refusals``, in that order.

    Args:
        tools: the request's ``tools`` (dicts, or ``openai.pydantic_function_tool(...)``).
        response_format: a pydantic model (or other type) to parse content into, or the request's
            ``response_format`` dict.
        refusals: ``filter_refusals`` mode.
        parsed_deltas: emit ``content.parsed.delta`` events when content is parsed.
        parsed_done: emit ``content.parsed.done`` for each sub-value when it closes.
        max_depth: deepest nesting of arrays and objects parsed in content; deeper is an ``error``
            event (``JsonLimitError``).
        max_size: most characters of content parsed per choice (None: no bound); more is an
            ``error`` event (``JsonLimitError``).

    ::

        --c1--c2--c3--|
        [ to_events() ]
        --chunk--content.delta--...--content.done--choice.done--usage--completion.done|
    """
    tools = list(tools) if tools is not None else None
    return rx_compose(
        accumulate(),
        check_finish_reasons(tools=tools, response_format=response_format),
        assemble_tool_calls(tools=tools),
        parse_partial_json(
            response_format=response_format,
            parsed_deltas=parsed_deltas,
            parsed_done=parsed_done,
            max_depth=max_depth,
            max_size=max_size,
        ),
        filter_refusals(refusals),
    )
