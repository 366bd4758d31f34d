"""Typed errors. Every error raised mid-stream carries ``.completion``, the partial snapshot so far.

Hierarchy::

    DeltaflowError
    ├── StreamContractError      a chunk breaks the chat-completion stream contract
    ├── JsonParseError           invalid JSON in content or tool arguments (position + raw text kept)
    │   └── JsonLimitError       a depth or size bound was exceeded
    ├── ToolArgumentsError       tool arguments that are not valid JSON or fail the tool's model
    ├── RefusalError             raised by ``filter_refusals(mode="raise")``
    ├── ProviderError            a provider reported an error in the middle of a stream
    ├── StreamInterrupted        the connection broke mid-stream (also openai's APIConnectionError)
    └── StreamTimeout            no chunk within the idle timeout (also openai's APITimeoutError)

Where openai-python raises ``LengthFinishReasonError`` / ``ContentFilterFinishReasonError``, deltaflow
raises those same classes, so existing ``except`` clauses keep working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from openai import (
    APIConnectionError,
    APITimeoutError,
    ContentFilterFinishReasonError,
    LengthFinishReasonError,
)

if TYPE_CHECKING:
    import httpx2 as httpx
    from openai.types.chat import ParsedChatCompletion

__all__ = [
    "ContentFilterFinishReasonError",
    "DeltaflowError",
    "JsonLimitError",
    "JsonParseError",
    "LengthFinishReasonError",
    "ProviderError",
    "RefusalError",
    "StreamContractError",
    "StreamInterrupted",
    "StreamTimeout",
    "ToolArgumentsError",
]


class DeltaflowError(Exception):
    """Base of every deltaflow error.

    Attributes:
        completion: the completion accumulated up to the failure, or None when nothing had arrived
            (or the error was raised outside a stream). The pipeline fills it in as the error passes
            the accumulator, so it is set by the time a subscriber or ``ChatStream`` sees it.
    """

    completion: ParsedChatCompletion[object] | None

    def __init__(self, message: str, *, completion: ParsedChatCompletion[object] | None = None) -> None:
        super().__init__(message)
        self.completion = completion


class StreamContractError(DeltaflowError):
    """A chunk broke the stream contract: a malformed chunk, a delta for an unknown choice, bad types."""


class JsonParseError(DeltaflowError):
    """Invalid JSON.

    Attributes:
        position: the character offset in ``text`` where parsing failed.
        text: the raw text received so far; nothing is lost.
    """

    def __init__(
        self,
        message: str,
        *,
        position: int,
        text: str,
        completion: ParsedChatCompletion[object] | None = None,
    ) -> None:
        super().__init__(f"{message} at position {position}", completion=completion)
        self.position = position
        self.text = text


class JsonLimitError(JsonParseError):
    """The JSON exceeded a configured depth or size bound."""


class ToolArgumentsError(DeltaflowError):
    """A finished tool call whose arguments are not valid JSON or fail validation.

    Attributes:
        name: the function name.
        index: the tool call's index within its choice.
        choice_index: the choice the call belongs to.
        arguments: the raw arguments text, kept whole.
        position: the character offset of a JSON error, or None for a validation error.
    """

    def __init__(
        self,
        message: str,
        *,
        name: str,
        index: int,
        choice_index: int,
        arguments: str,
        position: int | None = None,
        completion: ParsedChatCompletion[object] | None = None,
    ) -> None:
        super().__init__(message, completion=completion)
        self.name = name
        self.index = index
        self.choice_index = choice_index
        self.arguments = arguments
        self.position = position


class RefusalError(DeltaflowError):
    """The model refused; raised by ``operators.filter_refusals(mode="raise")``.

    Attributes:
        refusal: the refusal text.
        choice_index: the choice that refused.
    """

    def __init__(
        self,
        refusal: str,
        *,
        choice_index: int,
        completion: ParsedChatCompletion[object] | None = None,
    ) -> None:
        super().__init__(f"the model refused (choice {choice_index}): {refusal}", completion=completion)
        self.refusal = refusal
        self.choice_index = choice_index


class ProviderError(DeltaflowError):
    """A provider sent an error in the middle of a stream (often with HTTP 200).

    Attributes:
        error: the provider's error object as it was sent.
    """

    def __init__(
        self,
        message: str,
        *,
        error: object,
        completion: ParsedChatCompletion[object] | None = None,
    ) -> None:
        super().__init__(message, completion=completion)
        self.error = error


class StreamTimeout(DeltaflowError, APITimeoutError):  # noqa: N818 - the name the issue and users expect
    """No chunk arrived within the idle timeout (or the client's read timeout, mid-stream).

    Also an openai ``APITimeoutError`` (an ``APIConnectionError``), which openai's own stream helper
    raises for a read timeout mid-stream: existing ``except`` clauses keep working.

    Attributes:
        timeout: the timeout that passed, in seconds.
        request: the HTTP request, when the stream came over HTTP.
    """

    def __init__(
        self,
        timeout: float,
        *,
        request: httpx.Request | None = None,
        completion: ParsedChatCompletion[object] | None = None,
    ) -> None:
        _init_connection_error(self, f"no chunk arrived within {timeout:g} s", request)
        self.completion = completion
        self.timeout = timeout


class StreamInterrupted(DeltaflowError, APIConnectionError):  # noqa: N818 - reads as what happened
    """The connection broke in the middle of a stream (reset, closed early, body cut mid-line).

    Also an openai ``APIConnectionError``, which openai's own stream helper raises for a dropped
    connection: existing ``except`` clauses keep working. The transport's exception is the ``__cause__``.

    Attributes:
        request: the HTTP request, when the stream came over HTTP.
    """

    def __init__(
        self,
        message: str,
        *,
        request: httpx.Request | None = None,
        completion: ParsedChatCompletion[object] | None = None,
    ) -> None:
        _init_connection_error(self, message, request)
        self.completion = completion


def _init_connection_error(error: APIConnectionError, message: str, request: httpx.Request | None) -> None:
    """Run openai's constructor, not DeltaflowError's; without a request (not over HTTP), set its fields."""
    if request is not None:
        APIConnectionError.__init__(error, message=message, request=request)  # strips auth headers
        return
    Exception.__init__(error, message)
    error.message = message
    error.request = cast("httpx.Request", None)
    error.body = error.code = error.param = error.type = None
