"""``check_finish_reasons()``: openai's errors for truncated or filtered structured output."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from reactivex import Observable

from deltaflow._tools import has_parseable_input, tool_specs
from deltaflow.errors import ContentFilterFinishReasonError, LengthFinishReasonError
from deltaflow.events import BaseEvent, ChunkReceived, Event
from deltaflow.operators._stage import Fused, Stage

__all__ = ["check_finish_reasons"]


def check_finish_reasons(
    *, tools: Iterable[Mapping[str, Any]] | None = None, response_format: object = None
) -> Callable[[Observable[Event]], Observable[Event]]:
    """End the stream with openai's own error when a parsed answer was cut short.

    Under openai's conditions (a rich ``response_format`` or a strict / pydantic tool), a chunk
    that finishes a choice with ``length`` raises ``openai.LengthFinishReasonError`` and one with
    ``content_filter`` raises ``openai.ContentFilterFinishReasonError``, before that chunk's events,
    carrying the completion so far. Without parseable input, events pass untouched.

    ::

        --chunk--delta--chunk(finish=length)--...
        [        check_finish_reasons(response_format=Model)   ]
        --chunk--delta--X LengthFinishReasonError
    """
    specs = tool_specs(tools)
    active = has_parseable_input(response_format, specs)

    def _check(source: Observable[Event]) -> Observable[Event]:
        if not active:
            return source

        return Fused(source, _Check)

    return _check


class _Check(Stage):
    """One subscription: looks at each chunk's finish reasons before its events pass."""

    __slots__ = ()

    def on_next(self, event: BaseEvent) -> None:
        if self.chain.ended:
            return
        # by the type field, subclasses included: cheaper than isinstance on pydantic's ABC metaclass
        if event.type == "chunk":
            received: ChunkReceived = event  # type: ignore[assignment]  # told by its type field
            for choice in received.chunk.choices:
                reason = choice.finish_reason
                if reason is None:
                    continue
                if reason == "length":
                    self.fail(LengthFinishReasonError(completion=received.snapshot))
                    return
                if reason == "content_filter":
                    self.fail(ContentFilterFinishReasonError(completion=received.snapshot))
                    return
        self.emit(event)
