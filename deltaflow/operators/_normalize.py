"""``normalize()``: a provider's chunks in, OpenAI-shaped chunks out."""

from __future__ import annotations

from collections.abc import Callable

from openai.types.chat import ChatCompletionChunk
from reactivex import Observable, abc

from deltaflow.dialects import Dialect, get_dialect
from deltaflow.state import RejectedChunk

__all__ = ["normalize"]

Normalized = ChatCompletionChunk | RejectedChunk
"""What ``normalize`` emits: OpenAI-shaped chunks, and stand-ins for payloads it could not read."""


def normalize(
    dialect: str | Dialect | None = "generic",
) -> Callable[[Observable[ChatCompletionChunk]], Observable[Normalized]]:
    """Rewrite a provider's chunks into the shape OpenAI sends, so ``accumulate`` reads them right.

    Per stream (state lives in the subscription): reasoning moves to ``delta.reasoning_content``;
    tool-call fragments get OpenAI's dense ``index``, with ``id`` and name on the first fragment
    only; every choice has a ``delta``; usage (an openai ``CompletionUsage``, provider extras kept)
    goes out once, cumulative usage held back and released at the end. A chunk that needs nothing
    passes through as the same object. A payload the dialect cannot read becomes a
    ``RejectedChunk`` and the stream goes on. A chunk with a top-level ``error`` (OpenRouter), or
    an upstream ``ProviderError`` carrying such a payload, ends the stream with a
    ``ProviderError``, after a chunk carrying its usage (and what was held back).

    ::

        --c1---c2(tool call, finish)---c3(cumulative usage)---?---|
        [                  normalize("generic")                    ]
        --c1---c2'(tool call)--f(finish)---c3'---------------------R---u(usage)|

    (``R``: a ``RejectedChunk`` for the payload ``?``; ``u``: a usage-only chunk.)

    Args:
        dialect: a dialect name (``dialects.known_dialects()``, or an alias), a ``Dialect``, or
            None for ``generic``.

    Returns:
        An operator from ``Observable[ChatCompletionChunk]`` to ``Observable[ChatCompletionChunk |
        RejectedChunk]``.

    Raises:
        ValueError: an unknown dialect name.
    """
    chosen = get_dialect("generic" if dialect is None else dialect)

    def _normalize(source: Observable[ChatCompletionChunk]) -> Observable[Normalized]:
        def subscribe(
            observer: abc.ObserverBase[Normalized],
            scheduler: abc.SchedulerBase | None = None,
        ) -> abc.DisposableBase:
            normalizer = chosen.normalizer()
            stopped = False

            def on_next(chunk: ChatCompletionChunk) -> None:
                if stopped:
                    return
                try:
                    outcome = normalizer.feed(chunk)
                except Exception as exc:  # noqa: BLE001 - a bug of ours ends the stream, reported
                    fail(exc)
                    return
                if not isinstance(outcome, list):
                    # the fast path: the chunk itself (or the chunk built from a dict)
                    observer.on_next(outcome)
                    return
                for item in outcome:
                    if isinstance(item, Exception):
                        fail(item)
                        return
                    observer.on_next(item)

            def on_error(error: Exception) -> None:
                if stopped:
                    return
                try:
                    outcomes = normalizer.fail(error)
                except Exception:  # noqa: BLE001 - never hide the upstream error behind ours
                    outcomes = []
                for item in outcomes:
                    if not isinstance(item, Exception):
                        observer.on_next(item)
                fail(error)

            def on_completed() -> None:
                if stopped:
                    return
                try:
                    outcomes = normalizer.complete()
                except Exception as exc:  # noqa: BLE001 - a bug of ours ends the stream, reported
                    fail(exc)
                    return
                for item in outcomes:
                    if isinstance(item, Exception):
                        fail(item)
                        return
                    observer.on_next(item)
                observer.on_completed()

            def fail(error: Exception) -> None:
                nonlocal stopped
                stopped = True
                observer.on_error(error)

            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _normalize
