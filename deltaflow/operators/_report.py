"""Ending a stream the same way from every operator: an ``error`` event, then ``on_error``."""

from __future__ import annotations

import openai
from reactivex import abc

from deltaflow.errors import (
    ProviderError,
    RefusalError,
    StreamContractError,
    StreamInterrupted,
    StreamTimeout,
)
from deltaflow.events import BaseEvent, ErrorReported

__all__ = ["error_code", "report_and_fail"]

_CODES: tuple[tuple[type[BaseException], str], ...] = (
    (ProviderError, "provider_error"),
    (StreamContractError, "stream_contract"),
    (StreamTimeout, "timeout"),
    # before openai.APIError: a StreamInterrupted is also openai's APIConnectionError
    (StreamInterrupted, "interrupted"),
    (RefusalError, "refusal"),
    (openai.LengthFinishReasonError, "length"),
    (openai.ContentFilterFinishReasonError, "content_filter"),
    (openai.APIError, "api_error"),
)


def error_code(error: BaseException) -> str:
    """A stable machine-readable name for an error that ends a stream."""
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code
    return "source_error"


def report_and_fail(observer: abc.ObserverBase[BaseEvent], error: Exception) -> None:
    """Emit an ``error`` event describing ``error``, then end the stream with it."""
    observer.on_next(
        ErrorReported(
            code=error_code(error),
            message=str(error) or type(error).__name__,
            choice_index=getattr(error, "choice_index", None),
            detail=getattr(error, "error", None),
            exception=error,
        )
    )
    observer.on_error(error)
