"""``normalize()``: a provider's chunks in, OpenAI-shaped chunks out."""

from __future__ import annotations

from collections.abc import Callable

from openai.types.chat import ChatCompletionChunk
from reactivex import Observable, abc

from deltaflow.dialects import Dialect, StreamNormalizer, get_dialect
from deltaflow.operators._stage import Fused, Stage
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
        return Fused(source, lambda observer: _Normalize(chosen.normalizer(), observer))

    return _normalize


class _Normalize(Stage):
    """One subscription: the dialect's normalizer, with its per-stream state."""

    __slots__ = ("normalizer",)

    def __init__(self, normalizer: StreamNormalizer, observer: abc.ObserverBase[Normalized]) -> None:
        super().__init__(observer)
        self.normalizer = normalizer

    def on_next(self, chunk: ChatCompletionChunk) -> None:
        if self.chain.ended:
            return
        try:
            outcome = self.normalizer.feed(chunk)
        except Exception as exc:  # noqa: BLE001 - a bug of ours ends the stream, reported
            self._end(exc)
            return
        if not isinstance(outcome, list):
            # the fast path: the chunk itself (or the chunk built from a dict)
            self.emit(outcome)
            return
        for item in outcome:
            if isinstance(item, Exception):
                self._end(item)
                return
            self.emit(item)

    def on_error(self, error: Exception) -> None:
        if self.stopped:
            return
        try:
            outcomes = self.normalizer.fail(error)
        except Exception:  # noqa: BLE001 - never hide the upstream error behind ours
            outcomes = []
        for item in outcomes:
            if not isinstance(item, Exception):
                self.emit(item)
        self._end(error)

    def on_completed(self) -> None:
        if self.stopped:
            return
        try:
            outcomes = self.normalizer.complete()
        except Exception as exc:  # noqa: BLE001 - a bug of ours ends the stream, reported
            self._end(exc)
            return
        for item in outcomes:
            if isinstance(item, Exception):
                self._end(item)
                return
            self.emit(item)
        super().on_completed()

    def _end(self, error: Exception) -> None:
        # no error event here: accumulate, below, reports the error with the completion so far
        super().on_error(error)
        self.chain.ended = True
