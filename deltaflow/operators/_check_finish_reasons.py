"""``check_finish_reasons()``: openai's errors for truncated or filtered structured output."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from reactivex import Observable, abc

from deltaflow._tools import has_parseable_input, tool_specs
from deltaflow.errors import ContentFilterFinishReasonError, LengthFinishReasonError
from deltaflow.events import BaseEvent, ChunkReceived
from deltaflow.operators._report import report_and_fail

__all__ = ["check_finish_reasons"]


def check_finish_reasons(
    *, tools: Iterable[Mapping[str, Any]] | None = None, response_format: object = None
) -> Callable[[Observable[BaseEvent]], Observable[BaseEvent]]:
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

    def _check(source: Observable[BaseEvent]) -> Observable[BaseEvent]:
        if not active:
            return source

        def subscribe(
            observer: abc.ObserverBase[BaseEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def on_next(event: BaseEvent) -> None:
                if isinstance(event, ChunkReceived):
                    for choice in event.chunk.choices:
                        if choice.finish_reason == "length":
                            report_and_fail(observer, LengthFinishReasonError(completion=event.snapshot))
                            return
                        if choice.finish_reason == "content_filter":
                            report_and_fail(
                                observer, ContentFilterFinishReasonError(completion=event.snapshot)
                            )
                            return
                observer.on_next(event)

            return source.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _check
