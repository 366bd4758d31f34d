"""``sinks.log``: one structlog record per milestone of a stream, with content opt-in and scrubbed."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Literal

import structlog

from deltaflow.events import (
    BaseEvent,
    ChunkReceived,
    CompletionDone,
    ContentDone,
    ErrorReported,
    ReasoningDone,
    RefusalDone,
    ToolCallDone,
    ToolCallResult,
    UsageReported,
)
from deltaflow.sinks._clip import ELLIPSIS, clip
from deltaflow.sinks._redact import redact
from deltaflow.sinks._sink import Sink
from deltaflow.sinks._timing import Clock, StreamTimer

__all__ = ["Coalesce", "Level", "LogSink", "log"]

Level = Literal["debug", "info", "warning", "error", "critical"]
Coalesce = Literal["line", "interval"]

_LEVELS: tuple[Level, ...] = ("debug", "info", "warning", "error", "critical")
_STDLIB_LEVELS: Mapping[int, Level] = MappingProxyType(
    {10: "debug", 20: "info", 30: "warning", 40: "error", 50: "critical"}
)


def log(
    logger: Any = None,
    *,
    level: Level | int = "info",
    content_level: Level | int | None = None,
    coalesce: Coalesce = "line",
    interval: float = 1.0,
    max_content: int = 200,
    include_content: bool = False,
    clock: Clock = time.monotonic,
    started_at: float | None = None,
) -> LogSink:
    """A sink that logs a stream's milestones through structlog, one record each.

    Records (the structlog ``event``, then the fields):

    - ``stream_started`` on the first event: ``completion_id``, ``model``. ``completion_id`` is then
      bound to every later record.
    - ``first_token``: ``ttft_ms``, ``kind`` (content, reasoning, refusal, tool_call), ``choice_index``.
    - ``tool_call_done``: ``name``, ``index``, ``choice_index``, ``call_id``, ``arguments_length``
      (``arguments`` too with ``include_content``).
    - ``tool_result`` (``tool_loop``'s observers; at warning when the tool failed): ``name``,
      ``index``, ``choice_index``, ``call_id``, ``is_error``, ``error_code``, ``error_type``,
      ``content_length`` (``content`` too with ``include_content``).
    - ``refusal`` (at warning): ``choice_index``, ``length`` (``refusal`` with ``include_content``).
    - ``reasoning_done``: ``choice_index``, ``length`` (``reasoning`` with ``include_content``).
    - ``usage``: ``prompt_tokens``, ``completion_tokens``, ``total_tokens``, and ``reasoning_tokens``
      / ``cached_tokens`` when reported.
    - ``stream_completed``: ``model``, ``duration_ms``, ``ttft_ms``, ``chunks``, ``finish_reasons``
      (one per choice), ``completion_tokens``, ``tokens_per_s`` (completion tokens over the time
      from the first token to the end).
    - ``stream_error`` (at error) for each ``error`` event: ``code``, ``message``, ``choice_index``.
    - ``stream_failed`` (at error) when the stream ends with an error: ``error_type``, ``error``,
      ``chunks``, ``duration_ms``.
    - with ``content_level``: ``content`` and ``reasoning`` records holding the text, coalesced by
      line (a record per complete line) or by ``interval`` seconds, with ``choice_index``, ``text``
      (cut to ``max_content`` characters) and ``length``.

    Credentials never reach the logger: every value of every record, and the logger's bound
    context, go through ``sinks.redact`` (``sk-...`` keys, ``Bearer ...`` tokens, values under keys
    such as ``Authorization`` or ``api_key``). Context merged later by your own processors
    (``merge_contextvars``) is beyond the sink's reach: add ``sinks.redact_processor`` to your
    configuration for that. The sink only calls the logger; it never configures structlog, so your
    processors and renderer (and a stdlib bridge) apply as to any other record.

    Args:
        logger: a structlog bound logger; ``structlog.get_logger("deltaflow")`` by default.
        level: the level of milestone records (refusals log at warning, errors at error).
        content_level: the level of content records; None (the default) logs no content.
        coalesce: ``line`` emits a record per complete line; ``interval`` one per ``interval`` seconds
            of text (checked as deltas arrive: there is no timer thread).
        interval: seconds of text per record with ``coalesce="interval"``.
        max_content: the most characters of any text logged (content, arguments, refusal, reasoning).
        include_content: add tool-call arguments, tool results, refusal and reasoning text to their
            records.
        clock: the monotonic clock, in seconds; tests pass a fake.
        started_at: the clock reading when the request was sent, the origin of ``ttft_ms`` and
            ``duration_ms``; by default the moment the sink is built.

    Returns:
        The sink, an Rx observer of events.

    Example::

        logger = structlog.get_logger("chat").bind(request_id=request_id)
        stream = deltaflow.ChatStream(chunks).subscribe(sinks.log(logger, content_level="debug"))
        stream.until_done()
    """
    return LogSink(
        logger,
        level=level,
        content_level=content_level,
        coalesce=coalesce,
        interval=interval,
        max_content=max_content,
        include_content=include_content,
        clock=clock,
        started_at=started_at,
    )


class _Pending:
    """Text waiting to be logged: its first characters (up to the limit) and its whole length."""

    __slots__ = ("length", "since", "text")

    def __init__(self, since: float) -> None:
        self.text = ""
        self.length = 0
        self.since = since

    def add(self, piece: str, limit: int) -> None:
        # keeping only what will be logged holds memory at `limit` however long the line
        if len(self.text) < limit:
            self.text += piece[: limit - len(self.text)]
        self.length += len(piece)


class LogSink(Sink):
    """The sink ``sinks.log(...)`` builds; see there."""

    name = "log"

    def __init__(
        self,
        logger: Any,
        *,
        level: Level | int,
        content_level: Level | int | None,
        coalesce: Coalesce,
        interval: float,
        max_content: int,
        include_content: bool,
        clock: Clock,
        started_at: float | None,
    ) -> None:
        if coalesce not in {"line", "interval"}:
            raise ValueError(f"coalesce must be 'line' or 'interval', got {coalesce!r}")
        if interval <= 0 or max_content < 0:
            raise ValueError("interval must be positive and max_content not negative")
        self._logger = _scrubbed(structlog.get_logger("deltaflow") if logger is None else logger)
        self._level = _level_name(level)
        self._content_level = None if content_level is None else _level_name(content_level)
        self._by_line = coalesce == "line"
        self._interval = interval
        self._max = max_content
        self._include = include_content
        self._timer = StreamTimer(clock, started_at)
        self._pending: dict[tuple[str, int], _Pending] = {}
        self._model: str | None = None
        self._ended = False
        self._handlers: dict[str, Callable[[Any], None]] = {
            "content.done": self._content_done,
            "reasoning.done": self._reasoning_done,
            "refusal.done": self._refusal_done,
            "tool_calls.function.arguments.done": self._tool_call_done,
            "tool_calls.function.result": self._tool_result,
            "usage": self._usage,
            "completion.done": self._completion_done,
            "error": self._error,
        }
        if self._content_level is not None:
            self._handlers["content.delta"] = self._text
            self._handlers["reasoning.delta"] = self._text

    # -- the observer ------------------------------------------------------------------------------

    def on_next(self, value: BaseEvent) -> None:
        """Log the milestone ``value`` marks, if any."""
        timer = self._timer
        first_event = timer.first_event is None
        before_token = timer.first_token is None
        timer.observe(value)
        if first_event:
            self._started(value)
        if before_token and timer.first_token is not None:
            self._emit(
                self._level,
                "first_token",
                ttft_ms=_ms(timer.time_to_first_token),
                kind=timer.first_token_kind,
                choice_index=getattr(value, "choice_index", None),
            )
        handler = self._handlers.get(getattr(value, "type", ""))
        if handler is not None:
            handler(value)

    def on_completed(self) -> None:
        """Flush pending content; log ``stream_completed`` unless ``completion.done`` did."""
        if not self._ended:
            self._flush_all()
            self._completed(finish_reasons=None)

    def on_error(self, error: Exception) -> None:
        """Flush pending content and log ``stream_failed``."""
        if self._ended:
            return
        self._ended = True
        self._flush_all()
        self._timer.finish()
        self._emit(
            "error",
            "stream_failed",
            error_type=type(error).__name__,
            error=str(error),
            chunks=self._timer.chunks,
            duration_ms=_ms(self._timer.duration),
        )

    # -- milestones --------------------------------------------------------------------------------

    def _started(self, event: BaseEvent) -> None:
        fields: dict[str, Any] = {}
        if type(event) is ChunkReceived:
            self._model = event.chunk.model
            fields = {"completion_id": event.chunk.id, "model": event.chunk.model}
            self._logger = self._logger.bind(completion_id=redact(event.chunk.id))
        self._emit(self._level, "stream_started", **fields)

    def _tool_call_done(self, event: ToolCallDone) -> None:
        fields: dict[str, Any] = {
            "name": event.name,
            "index": event.index,
            "choice_index": event.choice_index,
            "call_id": event.tool_call.id,
            "arguments_length": len(event.arguments),
        }
        if self._include:
            fields["arguments"] = clip(event.arguments, self._max)
        self._emit(self._level, "tool_call_done", **fields)

    def _tool_result(self, event: ToolCallResult) -> None:
        fields: dict[str, Any] = {
            "name": event.name,
            "index": event.index,
            "choice_index": event.choice_index,
            "call_id": event.tool_call_id,
            "is_error": event.is_error,
            "error_code": event.error_code,
            "error_type": event.error_type,
            "content_length": len(event.content),
        }
        if self._include:
            fields["content"] = clip(event.content, self._max)
        self._emit("warning" if event.is_error else self._level, "tool_result", **fields)

    def _refusal_done(self, event: RefusalDone) -> None:
        fields: dict[str, Any] = {"choice_index": event.choice_index, "length": len(event.refusal)}
        if self._include:
            fields["refusal"] = clip(event.refusal, self._max)
        self._emit("warning", "refusal", **fields)

    def _reasoning_done(self, event: ReasoningDone) -> None:
        self._flush(("reasoning", event.choice_index))
        fields: dict[str, Any] = {"choice_index": event.choice_index, "length": len(event.reasoning)}
        if self._include:
            fields["reasoning"] = clip(event.reasoning, self._max)
        self._emit(self._level, "reasoning_done", **fields)

    def _content_done(self, event: ContentDone) -> None:
        self._flush(("content", event.choice_index))

    def _usage(self, event: UsageReported) -> None:
        usage = event.usage
        fields: dict[str, Any] = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }
        completion_details = usage.completion_tokens_details
        if completion_details is not None and completion_details.reasoning_tokens is not None:
            fields["reasoning_tokens"] = completion_details.reasoning_tokens
        prompt_details = usage.prompt_tokens_details
        if prompt_details is not None and prompt_details.cached_tokens is not None:
            fields["cached_tokens"] = prompt_details.cached_tokens
        self._emit(self._level, "usage", **fields)

    def _completion_done(self, event: CompletionDone) -> None:
        self._flush_all()
        completion = event.completion
        self._model = completion.model or self._model
        self._completed(finish_reasons=[choice.finish_reason for choice in completion.choices])

    def _completed(self, finish_reasons: list[str] | None) -> None:
        self._ended = True
        timer = self._timer
        timer.finish()
        tokens_per_second = timer.tokens_per_second
        self._emit(
            self._level,
            "stream_completed",
            model=self._model,
            duration_ms=_ms(timer.duration),
            ttft_ms=_ms(timer.time_to_first_token),
            chunks=timer.chunks,
            finish_reasons=finish_reasons,
            completion_tokens=timer.completion_tokens,
            tokens_per_s=None if tokens_per_second is None else round(tokens_per_second, 1),
        )

    def _error(self, event: ErrorReported) -> None:
        self._emit(
            "error", "stream_error", code=event.code, message=event.message, choice_index=event.choice_index
        )

    # -- content, coalesced ------------------------------------------------------------------------

    def _text(self, event: Any) -> None:
        delta: str = event.delta
        if not delta:
            return
        key = ("content" if event.type == "content.delta" else "reasoning", event.choice_index)
        pending = self._pending.get(key)
        if self._by_line:
            if pending is None:
                pending = self._pending[key] = _Pending(0.0)
            if "\n" not in delta:
                pending.add(delta, self._max)
                return
            *complete, rest = delta.split("\n")
            for piece in complete:
                pending.add(piece, self._max)
                self._flush(key)
                pending = self._pending[key] = _Pending(0.0)
            pending.add(rest, self._max)
            return
        if pending is None:
            pending = self._pending[key] = _Pending(self._timer.clock())
        pending.add(delta, self._max)
        if self._timer.clock() - pending.since >= self._interval:
            self._flush(key)

    def _flush(self, key: tuple[str, int]) -> None:
        pending = self._pending.pop(key, None)
        if pending is None or not pending.length or self._content_level is None:
            return
        text = pending.text + (ELLIPSIS if pending.length > len(pending.text) else "")
        self._emit(self._content_level, key[0], choice_index=key[1], text=text, length=pending.length)

    def _flush_all(self) -> None:
        for key in sorted(self._pending):
            self._flush(key)

    def _emit(self, method: str, event: str, **fields: Any) -> None:
        getattr(self._logger, method)(event, **redact(fields))


def _scrubbed(logger: Any) -> Any:
    """``logger`` with its bound context redacted (the same logger when nothing needed it)."""
    try:
        context = dict(structlog.get_context(logger))
    except AttributeError:
        return logger
    clean = redact(context)
    if all(clean[key] is value or clean[key] == value for key, value in context.items()):
        return logger
    return logger.new(**clean)


def _level_name(level: Level | int) -> Level:
    if isinstance(level, int):
        if level not in _STDLIB_LEVELS:
            raise ValueError(f"unknown log level {level!r}; use one of {sorted(_STDLIB_LEVELS)}")
        return _STDLIB_LEVELS[level]
    name = level.lower()
    for known in _LEVELS:
        if name == known:
            return known
    raise ValueError(f"unknown log level {level!r}; use one of {', '.join(_LEVELS)}")


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)
