"""Typed errors. Every error raised mid-stream carries ``.completion``, the partial snapshot so far.

Hierarchy::

    DeltaflowError
    ├── StreamContractError      a chunk breaks the chat-completion stream contract
    ├── StreamClosedError        the stream was closed (``close()``, the ``with`` block left) and is used
    ├── ParseError (ValueError)  a value the stream should yield could not be produced
    │   ├── JsonParseError       invalid JSON in content (position + raw text kept)
    │   │   └── JsonLimitError   a depth or size bound was exceeded
    │   ├── ContentInvalidError  valid JSON content that fails the ``response_format``
    │   └── ToolArgumentsError   tool arguments that are not valid JSON or fail the tool's model
    ├── RefusalError             raised by ``filter_refusals(mode="raise")``
    ├── ProviderError            a provider reported an error in the middle of a stream
    │   └── RelayError           a relayed stream failed upstream, or the relay answered an HTTP error
    ├── StreamInterrupted        the connection broke mid-stream (also openai's APIConnectionError)
    ├── StreamTimeout            no chunk within the idle timeout (also openai's APITimeoutError)
    ├── ToolLoopLimitError       ``recipes.tool_loop`` reached ``max_steps``
    ├── StreamAborted            a durable stream ended ``aborted``: stopped, producer lost, shut down
    └── EventLogError            a durable stream's event log refused or failed an operation
        ├── LeaseConflict        another producer holds the stream id, or the id is still retained
        ├── LeaseLost            a stale producer tried to write (fenced)
        ├── StreamNotFound       no such stream: never started, expired, or replaced by a new one
        ├── EventsTrimmed        the events after the reader's last id were trimmed (a ``gap``)
        └── EventLogUnavailable  the log's backend (Redis) cannot be reached

``ParseError`` is a ``ValueError``, as what openai's helper raises in the same places (pydantic's
``ValidationError``, ``json.JSONDecodeError``): an ``except ValueError`` written for it still works.
Where openai-python raises ``LengthFinishReasonError`` / ``ContentFilterFinishReasonError``, deltaflow
raises those same classes. Errors from the source (openai's ``APIError``, ``APIConnectionError``, a
failing iterable's own exception) keep their class and get ``.completion`` set as they pass the
accumulator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import openai
from openai import APIConnectionError, APITimeoutError

if TYPE_CHECKING:
    import httpx2 as httpx
    from openai.types.chat import ParsedChatCompletion

__all__ = [
    "ContentFilterFinishReasonError",
    "ContentInvalidError",
    "DeltaflowError",
    "EventLogError",
    "EventLogUnavailable",
    "EventsTrimmed",
    "JsonLimitError",
    "JsonParseError",
    "LeaseConflict",
    "LeaseLost",
    "LengthFinishReasonError",
    "ParseError",
    "ProviderError",
    "RefusalError",
    "RelayError",
    "StreamAborted",
    "StreamClosedError",
    "StreamContractError",
    "StreamInterrupted",
    "StreamNotFound",
    "StreamTimeout",
    "ToolArgumentsError",
    "ToolLoopLimitError",
]


LengthFinishReasonError = openai.LengthFinishReasonError
"""openai's own class, raised where openai raises it: a parsed answer cut by the token limit."""
ContentFilterFinishReasonError = openai.ContentFilterFinishReasonError
"""openai's own class, raised where openai raises it: a parsed answer stopped by the content filter."""


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


class StreamClosedError(DeltaflowError):
    """The stream was closed (``close()``, or its ``with`` block left) and then used."""


class ParseError(DeltaflowError, ValueError):
    """Content or tool arguments the stream should have parsed could not be.

    ``ChatStream`` raises it at the end of the stream (after every event, the ``error`` event
    included) unless made with ``parse_errors="keep"``; the operators report it as an ``error`` event.
    """


class JsonParseError(ParseError):
    """Invalid JSON.

    Attributes:
        position: the character offset in ``text`` where parsing failed.
        text: the raw text received so far; nothing is lost.
        choice_index: the choice whose content it is, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        position: int,
        text: str,
        choice_index: int | None = None,
        completion: ParsedChatCompletion[object] | None = None,
    ) -> None:
        super().__init__(f"{message} at position {position}", completion=completion)
        self.position = position
        self.text = text
        self.choice_index = choice_index


class JsonLimitError(JsonParseError):
    """The JSON exceeded a configured depth or size bound."""


class ContentInvalidError(ParseError):
    """Content that is valid JSON but fails the ``response_format``.

    Attributes:
        text: the content, kept whole.
        errors: pydantic's validation errors (the ``ValidationError`` is the ``__cause__``).
        choice_index: the choice whose content it is.
    """

    def __init__(
        self,
        message: str,
        *,
        text: str,
        errors: list[Any],
        choice_index: int,
        completion: ParsedChatCompletion[object] | None = None,
    ) -> None:
        super().__init__(message, completion=completion)
        self.text = text
        self.errors = errors
        self.choice_index = choice_index


class ToolArgumentsError(ParseError):
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


_CREDENTIAL_HEADERS = frozenset({"authorization", "api-key", "x-api-key", "proxy-authorization"})


def _init_connection_error(error: APIConnectionError, message: str, request: httpx.Request | None) -> None:
    """Run openai's constructor, not DeltaflowError's; without a request (not over HTTP), set its fields.

    The request kept on the error never holds a credential (openai strips them only from 3.x on): an
    error ends up in logs and trackers.
    """
    if request is not None:
        headers = [
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in _CREDENTIAL_HEADERS
        ]
        safe = type(request)(request.method, request.url, headers=headers)
        APIConnectionError.__init__(error, message=message, request=safe)
        return
    Exception.__init__(error, message)
    error.message = message
    error.request = cast("httpx.Request", None)
    error.body = error.code = error.param = error.type = None


class RelayError(ProviderError):
    """The relayed stream failed upstream, or the relay answered with an HTTP error.

    Attributes:
        error: what the relay said: ``{"type", "code", "message"}`` for an upstream failure, or
            ``{"status", "body"}`` for an HTTP error.
        status_code: the relay's HTTP status for an HTTP error, else None.
        completion: the upstream's partial completion when the relay sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        error: object,
        status_code: int | None = None,
        completion: ParsedChatCompletion[object] | None = None,
    ) -> None:
        super().__init__(message, error=error, completion=completion)
        self.status_code = status_code


class ToolLoopLimitError(DeltaflowError):
    """The model still asked for tools after ``max_steps`` requests.

    The tools of the last step have run and their results are in ``messages``, so the
    conversation can go on: ``tool_loop(client, error.messages, tools, model=...)``.

    Attributes:
        max_steps: the limit that was reached.
        messages: the conversation so far, tool results of the last step included.
        completion: the last step's completion (its message asks for tools).
    """

    def __init__(
        self,
        max_steps: int,
        *,
        messages: list[dict[str, Any]],
        completion: ParsedChatCompletion[object] | None = None,
    ) -> None:
        super().__init__(f"the model still asked for tools after {max_steps} steps", completion=completion)
        self.max_steps = max_steps
        self.messages = messages


class StreamAborted(DeltaflowError):  # noqa: N818 - reads as what happened, like StreamInterrupted
    """A durable stream ended ``aborted`` rather than ``done``.

    Attributes:
        reason: ``stopped`` (a stop request), ``producer_lost`` (its producer died or lost its lease)
            or ``shutdown`` (its relay instance stopped).
        usage: the usage reported so far as a dict, or None when the provider had not reported it.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str,
        usage: dict[str, object] | None = None,
        completion: ParsedChatCompletion[object] | None = None,
    ) -> None:
        super().__init__(message, completion=completion)
        self.reason = reason
        self.usage = usage


class EventLogError(DeltaflowError):
    """A durable stream's event log refused or failed an operation.

    Attributes:
        stream_id: the stream concerned.
    """

    def __init__(
        self, message: str, *, stream_id: str, completion: ParsedChatCompletion[object] | None = None
    ) -> None:
        super().__init__(message, completion=completion)
        self.stream_id = stream_id


class LeaseConflict(EventLogError):  # noqa: N818 - names what happened, like StreamTimeout
    """A producer asked for a stream id another producer holds, or that a retained stream still uses."""


class LeaseLost(EventLogError):  # noqa: N818 - names what happened, like StreamTimeout
    """A producer's lease was gone or taken over when it wrote: a stale producer cannot write."""


class StreamNotFound(EventLogError):  # noqa: N818 - names what happened, like StreamTimeout
    """No such stream: never started, expired after its retention, or replaced under the same id."""


class EventsTrimmed(EventLogError):  # noqa: N818 - names what happened, like StreamTimeout
    """Events after the reader's last id were trimmed from the log (retention by length).

    Attributes:
        after: the reader's last event id.
        next_id: the first event id still in the log.
        missing: how many events were lost between the two.
    """

    def __init__(self, message: str, *, stream_id: str, after: str, next_id: str, missing: int) -> None:
        super().__init__(message, stream_id=stream_id)
        self.after = after
        self.next_id = next_id
        self.missing = missing


class EventLogUnavailable(EventLogError):  # noqa: N818 - names what happened, like StreamTimeout
    """The event log's backend (Redis) cannot be reached; the backend's exception is the ``__cause__``."""
