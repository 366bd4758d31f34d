"""The timing of one stream as sinks see it: start, first token, end, chunks, throughput."""

from __future__ import annotations

from collections.abc import Callable
from types import MappingProxyType

from deltaflow.events import BaseEvent, CompletionDone, UsageReported

__all__ = ["Clock", "StreamTimer"]

Clock = Callable[[], float]

_TOOL_CALL_DELTA = "tool_calls.function.arguments.delta"
# the events that carry model output, by the kind of output; an empty text delta (the role chunk's
# content "") is not a token, a tool call's first fragment is (it names the function)
_OUTPUT = MappingProxyType(
    {
        "content.delta": "content",
        "refusal.delta": "refusal",
        "reasoning.delta": "reasoning",
        _TOOL_CALL_DELTA: "tool_call",
    }
)


class StreamTimer:
    """Clock readings at a stream's milestones, fed every event in order.

    The origin is ``started_at`` when given (read it from the same clock just before sending the
    request), else the moment the timer was built: build the sink before the request goes out and
    time to first token includes the wait for the response headers.

    Attributes:
        origin: the clock reading times are measured from.
        first_event: when the first event arrived, or None.
        first_chunk: when the first ``chunk`` event arrived, or None.
        first_token: when the first model output arrived (content, reasoning, refusal or a tool
            call), or None.
        first_token_kind: ``content``, ``reasoning``, ``refusal`` or ``tool_call``.
        last_chunk: when the latest ``chunk`` event arrived, or None.
        end: when the stream ended (``completion.done``, else ``on_completed`` / ``on_error``), or None.
        chunks: how many ``chunk`` events arrived.
        completion_tokens: ``usage.completion_tokens`` when the provider reported it.
    """

    __slots__ = (
        "chunks",
        "clock",
        "completion_tokens",
        "end",
        "first_chunk",
        "first_event",
        "first_token",
        "first_token_kind",
        "last_chunk",
        "origin",
    )

    def __init__(self, clock: Clock, started_at: float | None = None) -> None:
        self.clock = clock
        self.origin = clock() if started_at is None else started_at
        self.first_event: float | None = None
        self.first_chunk: float | None = None
        self.first_token: float | None = None
        self.first_token_kind: str | None = None
        self.last_chunk: float | None = None
        self.end: float | None = None
        self.chunks = 0
        self.completion_tokens: int | None = None

    def observe(self, event: BaseEvent) -> float | None:
        """Note ``event``; returns the clock reading when it was a chunk (else None, clock unread)."""
        kind = getattr(event, "type", None)
        now: float | None = None
        if self.first_event is None:
            now = self.clock()
            self.first_event = now
        if kind == "chunk":
            now = self.clock() if now is None else now
            if self.first_chunk is None:
                self.first_chunk = now
            self.chunks += 1
            self.last_chunk = now
            return now
        output = _OUTPUT.get(kind) if self.first_token is None and kind is not None else None
        if output is not None and (kind == _TOOL_CALL_DELTA or getattr(event, "delta", "")):
            self.first_token = self.clock() if now is None else now
            self.first_token_kind = output
        elif type(event) is UsageReported and event.usage.completion_tokens is not None:
            self.completion_tokens = event.usage.completion_tokens
        elif type(event) is CompletionDone:
            self.finish()
        return None

    def finish(self) -> None:
        """Mark the end of the stream, once."""
        if self.end is None:
            self.end = self.clock()

    @property
    def time_to_first_token(self) -> float | None:
        """Seconds from the origin to the first model output."""
        return None if self.first_token is None else self.first_token - self.origin

    @property
    def duration(self) -> float | None:
        """Seconds from the origin to the end."""
        return None if self.end is None else self.end - self.origin

    @property
    def tokens_per_second(self) -> float | None:
        """``usage.completion_tokens`` over the seconds from the first token to the end.

        Measured from the first token so that the wait for the first token (queueing, prompt
        processing) does not dilute the generation rate; None without usage or with no time elapsed.
        """
        if self.completion_tokens is None or self.end is None:
            return None
        start = self.first_token if self.first_token is not None else self.origin
        elapsed = self.end - start
        return self.completion_tokens / elapsed if elapsed > 0 else None
