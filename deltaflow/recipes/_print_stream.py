"""``print_stream``: a chat stream printed to a terminal as it arrives, nothing left unsaid."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any, TextIO, cast

from openai.types.chat import ParsedChatCompletion
from typing_extensions import TypeVar

from deltaflow.errors import ContentFilterFinishReasonError, LengthFinishReasonError
from deltaflow.events import (
    BaseEvent,
    ContentDelta,
    ErrorReported,
    ReasoningDelta,
    RefusalDelta,
    RefusalDone,
    ToolCallDone,
)
from deltaflow.pipeline import AsyncChatStream, ChatStream

__all__ = ["adrain", "aprint_stream", "drain", "print_stream"]

# as openai's: a stream without a response_format parses nothing (its parsed is None)
ResponseFormatT = TypeVar("ResponseFormatT", default=None)

_DIM = "\x1b[2m"
_RESET = "\x1b[0m"
# these codes end a stream whose cut-off the closing notice already explains
_NOTICED_CODES = frozenset({"length", "content_filter"})


def print_stream(
    stream: ChatStream[ResponseFormatT],
    *,
    file: TextIO | None = None,
    show_reasoning: bool = True,
) -> ParsedChatCompletion[ResponseFormatT]:
    """Print a chat stream to a terminal as it streams, and return its final completion.

    The answer is printed as it arrives. Everything else is said explicitly, so the output is never
    silently empty:

    - reasoning (DeepSeek, Qwen, Groq...) comes first after ``thinking:`` (dimmed on a terminal),
      and the answer then follows ``answer:``;
    - a refusal follows ``[refused]``; a tool call shows as ``[tool call] name(arguments)``;
    - a cut-off reads ``[cut off: max tokens reached]``, a content filter
      ``[stopped: content filter]``, an ``error`` event ``[error] message``;
    - an answer with no content, refusal or tool call reads ``[empty answer]``.

    A cut-off or filtered answer is not an error here: the notice is printed and the completion
    returned (openai's ``LengthFinishReasonError`` / ``ContentFilterFinishReasonError`` are caught and
    their ``.completion`` returned). Any other error is printed, then raised. Only choice 0 is shown.
    The stream is closed on return.

    Example::

        import openai
        import deltaflow
        from deltaflow.recipes import print_stream

        client = openai.OpenAI()
        messages = [{"role": "user", "content": "Why is the sky blue?"}]
        completion = print_stream(deltaflow.stream(client, model="gpt-4o-mini", messages=messages))
        # thinking: ...            (reasoning models only)
        # answer: Sunlight scatters off ...
        messages.append({"role": "assistant", "content": completion.choices[0].message.content})

    Args:
        stream: the stream to print, e.g. ``deltaflow.stream(client, ...)``; consumed and closed.
        file: where to print; ``sys.stdout`` (as of the call) by default.
        show_reasoning: print the reasoning text; otherwise only the answer.

    Returns:
        The final completion, as ``stream.get_final_completion()``, also when cut off or filtered.
    """
    printer = _Printer(sys.stdout if file is None else file, show_reasoning=show_reasoning)
    try:
        completion = drain(stream, printer.handle)
    except BaseException:
        printer.end_line()
        raise
    printer.finish(completion)
    return completion


async def aprint_stream(
    stream: AsyncChatStream[ResponseFormatT],
    *,
    file: TextIO | None = None,
    show_reasoning: bool = True,
) -> ParsedChatCompletion[ResponseFormatT]:
    """The async twin of ``print_stream``, for ``deltaflow.astream(...)``.

    Example::

        import openai
        import deltaflow
        from deltaflow.recipes import aprint_stream

        async def main() -> None:
            client = openai.AsyncOpenAI()
            messages = [{"role": "user", "content": "Why is the sky blue?"}]
            stream = deltaflow.astream(client, model="gpt-4o-mini", messages=messages)
            completion = await aprint_stream(stream, show_reasoning=False)
            print(completion.usage)

    Args:
        stream: the stream to print; consumed and closed.
        file: where to print; ``sys.stdout`` (as of the call) by default.
        show_reasoning: print the reasoning text; otherwise only the answer.

    Returns:
        The final completion, also when cut off or filtered.
    """
    printer = _Printer(sys.stdout if file is None else file, show_reasoning=show_reasoning)
    try:
        completion = await adrain(stream, printer.handle)
    except BaseException:
        printer.end_line()
        raise
    printer.finish(completion)
    return completion


def drain(
    stream: ChatStream[ResponseFormatT], handle: Callable[[BaseEvent], object]
) -> ParsedChatCompletion[ResponseFormatT]:
    """Hand every event to ``handle``, close the stream, and return the final completion.

    The recipes' shared ending: a cut-off or filtered completion is returned (from openai's error)
    rather than raised, since the caller reports it from ``finish_reason``.
    """
    with stream:
        try:
            for event in stream:
                handle(event)
            return stream.get_final_completion()
        except (LengthFinishReasonError, ContentFilterFinishReasonError) as error:
            return cast("ParsedChatCompletion[ResponseFormatT]", error.completion)


async def adrain(
    stream: AsyncChatStream[ResponseFormatT], handle: Callable[[BaseEvent], object]
) -> ParsedChatCompletion[ResponseFormatT]:
    """The async twin of ``drain``."""
    async with stream:
        try:
            async for event in stream:
                handle(event)
            return await stream.get_final_completion()
        except (LengthFinishReasonError, ContentFilterFinishReasonError) as error:
            return cast("ParsedChatCompletion[ResponseFormatT]", error.completion)


class _Printer:
    """Writes the events of choice 0 as labelled sections, and the closing notices."""

    def __init__(self, file: TextIO, *, show_reasoning: bool) -> None:
        self._file = file
        self._show_reasoning = show_reasoning
        isatty = getattr(file, "isatty", None)
        # NO_COLOR (no-color.org): the user asked for plain text even on a terminal
        self._styled = callable(isatty) and bool(isatty()) and "NO_COLOR" not in os.environ
        self._section: str | None = None
        self._at_line_start = True
        self._reasoned = False
        self._answered = False

    def handle(self, event: BaseEvent) -> None:
        """Print one event (choice 0 only)."""
        if getattr(event, "choice_index", 0) not in (0, None):
            return
        if isinstance(event, ReasoningDelta):
            if self._show_reasoning and event.delta:
                self._enter("reasoning", "thinking: ")
                self._write(event.delta, dim=True)
        elif isinstance(event, ContentDelta):
            if event.delta:
                # after reasoning, the answer needs a label of its own to stand apart
                self._enter("content", "answer: " if self._reasoned else "")
                self._write(event.delta)
                self._answered = True
        elif isinstance(event, RefusalDelta):
            self._enter("refusal", "[refused] ")
            self._write(event.delta)
            self._answered = True
        elif isinstance(event, RefusalDone):
            self._section = None
        elif isinstance(event, ToolCallDone):
            self.line(f"[tool call] {event.name}({event.arguments})")
            self._answered = True
        elif isinstance(event, ErrorReported) and event.code not in _NOTICED_CODES:
            self.line(f"[error] {event.message}")

    def finish(self, completion: ParsedChatCompletion[Any]) -> None:
        """Print the closing notice the completion calls for, and end the last line."""
        choice = next((choice for choice in completion.choices if choice.index == 0), None)
        finish_reason = choice.finish_reason if choice is not None else None
        if finish_reason == "length":
            self.line("[cut off: max tokens reached]")
        elif finish_reason == "content_filter":
            self.line("[stopped: content filter]")
        elif not self._answered:
            self.line("[empty answer]")
        self.end_line()

    def line(self, text: str) -> None:
        """Print ``text`` on a line of its own."""
        self.end_line()
        self._section = None
        self._write(text + "\n")

    def end_line(self) -> None:
        """Finish the current line, if anything is on it."""
        if not self._at_line_start:
            self._write("\n")

    def _enter(self, section: str, label: str) -> None:
        if self._section == section:
            return
        self.end_line()
        self._section = section
        if section == "reasoning":
            self._reasoned = True
        if label:
            self._write(label, dim=section == "reasoning")

    def _write(self, text: str, *, dim: bool = False) -> None:
        if not text:
            return
        self._file.write(f"{_DIM}{text}{_RESET}" if dim and self._styled else text)
        # a terminal shows a partial line only once flushed, and tokens arrive mid-line
        self._file.flush()
        self._at_line_start = text.endswith("\n")
