"""Typed errors. Every error raised mid-stream carries ``.completion``, the partial snapshot so far.

Hierarchy::

    DeltaflowError
    ├── StreamContractError      a chunk breaks the chat-completion stream contract
    ├── JsonParseError           invalid JSON in content or tool arguments (position + raw text kept)
    │   └── JsonLimitError       a depth or size bound was exceeded
    ├── ToolArgumentsError       tool arguments that are not valid JSON or fail the tool's model
    ├── RefusalError             raised by ``filter_refusals(mode="raise")``
    ├── ProviderError            a provider reported an error in the middle of a stream
    ├── StreamInterrupted        the connection broke in the middle of a stream
    ├── StreamTimeout            no chunk arrived within the idle timeout
    ├── StreamAborted            a durable stream ended ``aborted``: stopped, producer lost, shut down
    └── EventLogError            a durable stream's event log refused or failed an operation
        ├── LeaseConflict        another producer holds the stream id, or the id is still retained
        ├── LeaseLost            a stale producer tried to write (fenced)
        ├── StreamNotFound       no such stream: never started, expired, or replaced by a new one
        ├── EventsTrimmed        the events after the reader's last id were trimmed (a ``gap``)
        └── EventLogUnavailable  the log's backend (Redis) cannot be reached

Where openai-python raises ``LengthFinishReasonError`` / ``ContentFilterFinishReasonError``, deltaflow
raises those same classes, so existing ``except`` clauses keep working.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from openai import ContentFilterFinishReasonError, LengthFinishReasonError

if TYPE_CHECKING:
    from openai.types.chat import ParsedChatCompletion

__all__ = [
    "ContentFilterFinishReasonError",
    "DeltaflowError",
    "EventLogError",
    "EventLogUnavailable",
    "EventsTrimmed",
    "JsonLimitError",
    "JsonParseError",
    "LeaseConflict",
    "LeaseLost",
    "LengthFinishReasonError",
    "ProviderError",
    "RefusalError",
    "StreamAborted",
    "StreamContractError",
    "StreamInterrupted",
    "StreamNotFound",
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


class StreamTimeout(DeltaflowError):  # noqa: N818 - the name the issue and users expect
    """No chunk arrived within the idle timeout."""

    def __init__(
        self,
        timeout: float,
        *,
        completion: ParsedChatCompletion[object] | None = None,
    ) -> None:
        super().__init__(f"no chunk arrived within {timeout:g} s", completion=completion)
        self.timeout = timeout


class StreamInterrupted(DeltaflowError):  # noqa: N818 - reads as what happened, like StreamTimeout
    """The connection broke in the middle of a stream (reset, closed early, incomplete body).

    The transport's exception is the ``__cause__``.
    """


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
