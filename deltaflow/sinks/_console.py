"""``sinks.console``: a stream rendered live in the terminal with rich, plain when not a terminal."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Callable
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from deltaflow.events import (
    BaseEvent,
    CompletionDone,
    ContentDelta,
    ContentDone,
    ContentParsedDelta,
    ErrorReported,
    ReasoningDelta,
    RefusalDelta,
    ToolCallDelta,
    ToolCallDone,
    ToolCallResult,
    UsageReported,
)
from deltaflow.partial_json import JsonOp, apply_ops
from deltaflow.sinks._clip import clip
from deltaflow.sinks._sink import Sink
from deltaflow.sinks._timing import Clock, StreamTimer

if TYPE_CHECKING:
    from openai.types.completion_usage import CompletionUsage
    from rich.console import Console, RenderableType
    from rich.live import Live

__all__ = ["ConsoleSink", "console"]

_STYLES = MappingProxyType({"content": "", "reasoning": "dim italic", "refusal": "red", "tool": "cyan"})
_RESULT_SHOWN = 200
"""The most characters of a tool result shown (its content may be a whole document)."""
_LABELS = MappingProxyType({"reasoning": ("reasoning: ", "dim bold"), "refusal": ("refusal: ", "bold red")})


def console(
    console: Console | None = None,
    *,
    choice_index: int = 0,
    show_reasoning: bool = True,
    refresh_per_second: float = 10.0,
    clock: Clock = time.monotonic,
    started_at: float | None = None,
) -> ConsoleSink:
    """A sink that renders a stream in the terminal as it arrives, with rich.

    Content is printed as it streams; reasoning follows a ``reasoning:`` label, dimmed; a tool call
    shows as ``tool call name(`` with its arguments filling in and ``)`` when done; a refusal
    follows a red ``refusal:`` label; structured output (a ``response_format`` whose content parses
    as JSON) is drawn as a JSON tree growing in place from the ``content.parsed.delta`` events (or
    ``content.delta.parsed``). A closing line sums up: finish reasons, tokens, duration, time to
    first token, tokens per second and chunks; errors are printed in red.

    Text is written append-only, so long answers scroll as in any terminal program; only the JSON
    tree uses a live region (``rich.live.Live``, refreshed at most ``refresh_per_second`` times a
    second from the stream's own thread: no refresh thread). When the console is not a terminal
    (output piped to a file or a log) the same text comes out plain, without styles, and the
    tree is printed once, complete, when the content is done.

    Args:
        console: the rich console to write to; a new ``rich.console.Console()`` by default.
        choice_index: the choice shown, when the request asked for several (``n > 1``).
        show_reasoning: print reasoning text (otherwise only the closing figures mention it).
        refresh_per_second: the most redraws a second of the JSON tree.
        clock: the monotonic clock, in seconds; tests pass a fake.
        started_at: the clock reading when the request was sent; by default the sink's creation.

    Returns:
        The sink, an Rx observer of events.

    Raises:
        ImportError: rich is not installed (``pip install 'deltaflow[console]'``).

    Example::

        with deltaflow.stream(client, model="gpt-4o", messages=messages) as stream:
            stream.subscribe(sinks.console()).until_done()
    """
    return ConsoleSink(
        console,
        choice_index=choice_index,
        show_reasoning=show_reasoning,
        refresh_per_second=refresh_per_second,
        clock=clock,
        started_at=started_at,
    )


class ConsoleSink(Sink):
    """The sink ``sinks.console(...)`` builds; see there."""

    name = "console"

    def __init__(
        self,
        console: Console | None = None,
        *,
        choice_index: int = 0,
        show_reasoning: bool = True,
        refresh_per_second: float = 10.0,
        clock: Clock = time.monotonic,
        started_at: float | None = None,
    ) -> None:
        try:
            from rich.console import Console  # noqa: PLC0415 - rich is an optional dependency
        except ImportError as exc:  # pragma: no cover - rich is installed with the dev extras
            raise ImportError("sinks.console needs rich: pip install 'deltaflow[console]'") from exc
        if refresh_per_second <= 0:
            raise ValueError("refresh_per_second must be positive")
        self._console = Console() if console is None else console
        self._live_capable = self._console.is_terminal and not self._console.is_dumb_terminal
        self._choice = choice_index
        self._show_reasoning = show_reasoning
        self._refresh_interval = 1.0 / refresh_per_second
        self._timer = StreamTimer(clock, started_at)
        # what the current line is streaming: "content", "reasoning", "refusal" or ("tool", index)
        self._section: object = None
        self._line_open = False
        self._tools_closed: set[int] = set()
        # structured output: None until the first content decides, then the tree's state
        self._structured: bool | None = None
        self._tree: Any = None
        self._tree_from_ops = False
        self._latest_content: ContentDelta | None = None
        # the first piece of content, when its own event cannot tell text from JSON: a request-dict
        # response_format parses (content.parsed.delta follows) without content.delta.parsed
        self._held: ContentDelta | None = None
        self._live: Live | None = None
        self._last_refresh = float("-inf")
        self._usage: CompletionUsage | None = None
        self._finish_reasons: list[str | None] = []
        self._closed = False
        self._handlers: dict[str, Callable[[Any], None]] = {
            "content.delta": self._content_delta,
            "content.parsed.delta": self._parsed_delta,
            "content.done": self._content_done,
            "reasoning.delta": self._reasoning_delta,
            "reasoning.done": self._end_section,
            "refusal.delta": self._refusal_delta,
            "refusal.done": self._end_section,
            "tool_calls.function.arguments.delta": self._tool_delta,
            "tool_calls.function.arguments.done": self._tool_done,
            "tool_calls.function.result": self._tool_result,
            "usage": self._usage_reported,
            "completion.done": self._completion_done,
            "error": self._error,
        }

    # -- the observer ------------------------------------------------------------------------------

    def on_next(self, value: BaseEvent) -> None:
        """Render ``value``."""
        if self._closed:
            return
        self._timer.observe(value)
        kind = getattr(value, "type", "")
        choice = getattr(value, "choice_index", None)
        if choice is not None and choice != self._choice:
            return
        if self._held is not None and kind != "content.parsed.delta":
            # no parsed value followed the first piece: it was text after all
            self._release_held()
        handler = self._handlers.get(kind)
        if handler is not None:
            handler(value)

    def on_completed(self) -> None:
        """Print the closing line."""
        self._finish(None)

    def on_error(self, error: Exception) -> None:
        """Print the error and the closing line."""
        self._finish(error)

    def close(self) -> None:
        """Stop the live tree, if one is running; print nothing more than what was received."""
        if not self._closed:
            self._release_held()  # received text, held back only to tell it from JSON
        self._closed = True
        self._stop_live(None)

    # -- text --------------------------------------------------------------------------------------

    def _content_delta(self, event: ContentDelta) -> None:
        if not event.delta:
            return
        if self._structured is None:
            # read once: the partial value is lazy, and only a parsed response_format has one
            if event.parsed is None:
                self._held = event  # until the next event says whether a parsed value comes with it
                return
            self._structured = True
        if self._structured:
            self._latest_content = event
            self._show_tree(done=False)
        else:
            self._write("content", event.delta)

    def _release_held(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._structured = False
            self._write("content", held.delta)

    def _reasoning_delta(self, event: ReasoningDelta) -> None:
        if self._show_reasoning and event.delta:
            self._write("reasoning", event.delta)

    def _refusal_delta(self, event: RefusalDelta) -> None:
        if event.delta:
            self._write("refusal", event.delta)

    def _tool_delta(self, event: ToolCallDelta) -> None:
        self._open_tool(event.index, event.name)
        if event.arguments_delta:
            self._print(event.arguments_delta, _STYLES["tool"])

    def _tool_done(self, event: ToolCallDone) -> None:
        index = event.index
        if index in self._tools_closed:
            return
        if self._section != ("tool", index):
            # never shown, or interrupted by other text: show it whole on a line of its own
            self._open_tool(index, event.name)
            self._print(event.arguments, _STYLES["tool"])
        self._close_tool(index)

    def _tool_result(self, event: ToolCallResult) -> None:
        # a tool loop's: after the step whose call it answers, a line of its own
        self._begin(("result", event.index))
        if event.is_error:
            self._print("tool error ", "bold red")
        else:
            self._print("tool result ", "bold cyan")
        self._print(f"{event.name}: ", "bold")
        self._print(clip(event.content, _RESULT_SHOWN), _STYLES["tool"])
        self._end_section(None)

    def _open_tool(self, index: int, name: str) -> None:
        section = ("tool", index)
        if self._section == section:
            return
        previous = self._section
        if isinstance(previous, tuple) and previous[1] not in self._tools_closed:
            # openai's order: the next call's first fragment comes before the previous call's done
            self._close_tool(previous[1])
        self._begin(section)
        self._print("tool call ", "bold cyan")
        self._print(f"{name}(", "bold")

    def _close_tool(self, index: int) -> None:
        self._print(")", "bold cyan")
        self._tools_closed.add(index)
        self._end_section(None)

    def _write(self, section: str, text: str) -> None:
        if self._section != section:
            self._begin(section)
            label = _LABELS.get(section)
            if label is not None:
                self._print(*label)
        self._print(text, _STYLES[section])

    def _begin(self, section: object) -> None:
        self._stop_live(None)
        self._end_section(None)
        self._section = section

    def _end_section(self, event: object) -> None:
        if self._line_open:
            self._console.print()
            self._line_open = False
        self._section = None

    def _print(self, text: str, style: str = "") -> None:
        from rich.text import Text  # noqa: PLC0415 - rich is an optional dependency

        if not text:
            return
        self._console.print(Text(text, style=style), end="", soft_wrap=True)
        self._line_open = not text.endswith("\n")

    # -- structured output -------------------------------------------------------------------------

    def _parsed_delta(self, event: ContentParsedDelta) -> None:
        self._held = None  # the first piece was JSON: the tree shows it
        if self._structured is False:
            # a request-dict response_format has parsed deltas but no content.delta.parsed: the
            # first piece of text went out raw; draw the tree from here
            self._end_section(None)
        self._structured = True
        value = copy.deepcopy(event.value) if isinstance(event.value, dict | list) else event.value
        # the tree must not share containers with the event: apply_ops fills them in place
        self._tree = apply_ops(self._tree, [JsonOp(event.path, event.op, value)])
        self._tree_from_ops = True
        self._show_tree(done=False)

    def _content_done(self, event: ContentDone) -> None:
        if not self._structured:
            self._end_section(None)
            return
        try:
            final = json.loads(event.content)
        except ValueError:
            final = self._tree_value()
        self._show_tree(done=True, final=final)

    def _tree_value(self) -> Any:
        if self._tree_from_ops:
            return self._tree
        latest = self._latest_content
        return None if latest is None else latest.parsed

    def _show_tree(self, *, done: bool, final: Any = None) -> None:
        if not self._live_capable:
            if done:
                self._end_section(None)
                self._console.print(_json(final))
            return
        now = self._timer.clock()
        if not done and now - self._last_refresh < self._refresh_interval and self._live is not None:
            return
        self._last_refresh = now
        renderable = _json(final if done else self._tree_value())
        if self._live is None:
            from rich.live import Live  # noqa: PLC0415 - rich is an optional dependency

            self._end_section(None)
            self._live = Live(
                renderable,
                console=self._console,
                auto_refresh=False,
                transient=False,
                vertical_overflow="visible",
            )
            self._live.start()
        self._live.update(renderable, refresh=True)
        if done:
            self._stop_live(None)

    def _stop_live(self, renderable: RenderableType | None) -> None:
        live, self._live = self._live, None
        if live is None:
            return
        if renderable is not None:
            live.update(renderable, refresh=True)
        live.stop()

    # -- the end -----------------------------------------------------------------------------------

    def _usage_reported(self, event: UsageReported) -> None:
        self._usage = event.usage

    def _completion_done(self, event: CompletionDone) -> None:
        self._finish_reasons = [choice.finish_reason for choice in event.completion.choices]
        # a tool loop's next step is a new completion: its calls count from 0, its content is its own
        self._end_section(None)
        self._tools_closed.clear()
        self._structured = None
        self._tree = None
        self._tree_from_ops = False
        self._latest_content = None

    def _error(self, event: ErrorReported) -> None:
        self._stop_live(None)
        self._end_section(None)
        self._console.print(_text(f"error {event.code}: {event.message}", "bold red"), soft_wrap=True)

    def _finish(self, error: Exception | None) -> None:
        if self._closed:
            return
        self._release_held()
        if self._live is not None:
            self._stop_live(_json(self._tree_value()))
        self._end_section(None)
        if error is not None:
            self._console.print(
                _text(f"stream failed: {type(error).__name__}: {error}", "bold red"), soft_wrap=True
            )
        self._timer.finish()
        # soft_wrap: the terminal wraps the line, rich does not cut it at the console's width
        self._console.print(_text(self._closing_line(), "dim"), soft_wrap=True)
        self._closed = True

    def _closing_line(self) -> str:
        timer = self._timer
        parts = []
        if any(self._finish_reasons):
            # a choice cut off without a finish chunk has none: a dash keeps the positions readable
            parts.append("finish: " + ", ".join(reason or "-" for reason in self._finish_reasons))
        usage = self._usage
        if usage is not None:
            parts.append(
                f"{usage.total_tokens:,} tokens ({usage.prompt_tokens:,} prompt,"
                f" {usage.completion_tokens:,} completion)"
            )
        if timer.duration is not None:
            parts.append(f"{timer.duration:.2f} s")
        if timer.time_to_first_token is not None:
            parts.append(f"first token {timer.time_to_first_token:.2f} s")
        if timer.tokens_per_second is not None:
            parts.append(f"{timer.tokens_per_second:,.1f} tokens/s")
        parts.append(f"{timer.chunks:,} chunks")
        return "── " + " · ".join(parts)


def _text(text: str, style: str) -> RenderableType:
    from rich.text import Text  # noqa: PLC0415 - rich is an optional dependency

    return Text(text, style=style)


def _json(value: Any) -> RenderableType:
    from rich.json import JSON  # noqa: PLC0415 - rich is an optional dependency

    return JSON.from_data(value, indent=2, default=repr)
