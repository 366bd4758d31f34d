"""The typed errors a Responses stream ends in; each carries the partial response and its chat view."""

from __future__ import annotations

from typing import TYPE_CHECKING

from deltaflow.errors import DeltaflowError, ProviderError, StreamContractError

if TYPE_CHECKING:
    from openai.types.chat import ParsedChatCompletion
    from openai.types.responses import ParsedResponse

__all__ = ["ResponseContractError", "ResponseFailed", "ResponseIncomplete"]


class ResponseFailed(ProviderError):  # noqa: N818 - reads as what happened, like StreamInterrupted
    """The server ended the response with ``response.failed`` or sent an ``error`` event.

    openai's helper yields these events and ends quietly (its ``get_final_response`` then raises a bare
    ``RuntimeError``); deltaflow hands out every event first, then raises this.

    Attributes:
        error: the provider's error as a dict (``response.error``, else the ``error`` event's fields).
        response: the response as accumulated when it failed (every output item received so far).
        completion: the same, as a chat completion (what deltaflow's sinks read).
    """

    def __init__(
        self,
        message: str,
        *,
        error: object,
        response: ParsedResponse[object] | None = None,
        completion: ParsedChatCompletion[object] | None = None,
    ) -> None:
        super().__init__(message, error=error, completion=completion)
        self.response = response


class ResponseIncomplete(DeltaflowError):  # noqa: N818 - reads as what happened
    """The response ended ``incomplete``: ``max_output_tokens`` reached or stopped by a content filter.

    Attributes:
        reason: ``incomplete_details.reason`` as sent (``max_output_tokens``, ``content_filter``), or None.
        response: the partial response, every output item received so far.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str | None,
        response: ParsedResponse[object] | None = None,
        completion: ParsedChatCompletion[object] | None = None,
    ) -> None:
        super().__init__(message, completion=completion)
        self.reason = reason
        self.response = response


class ResponseContractError(StreamContractError):
    """An event broke the Responses stream contract in a way that cannot be tolerated.

    Attributes:
        event: the offending event (its decoded JSON or typed object), kept whole.
        response: the response accumulated before it.
    """

    def __init__(
        self,
        message: str,
        *,
        event: object,
        response: ParsedResponse[object] | None = None,
        completion: ParsedChatCompletion[object] | None = None,
    ) -> None:
        super().__init__(message, completion=completion)
        self.event = event
        self.response = response
