"""``assemble_tool_calls()``: parsed arguments for tool-call fragments, errors that name the call."""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pydantic import ValidationError
from reactivex import Observable, abc

from deltaflow._tools import ToolSpec, tool_specs
from deltaflow.errors import JsonParseError, ToolArgumentsError
from deltaflow.events import BaseEvent, ErrorReported, ToolCallDelta, ToolCallDone
from deltaflow.operators._stage import Fused, Stage
from deltaflow.partial_json import IncrementalJsonParser
from deltaflow.state import CompletionState, ToolCallState

__all__ = ["assemble_tool_calls"]

_UNSET: Any = object()


class _CallParse:
    """The partial parse of one tool call's arguments, remembered per chunk for snapshots."""

    __slots__ = ("final", "final_seq", "parser", "seqs", "versions")

    def __init__(self) -> None:
        self.parser: IncrementalJsonParser | None = IncrementalJsonParser(emit_ops=False)
        self.seqs: list[int] = []
        self.versions: list[int] = []
        self.final: Any = _UNSET
        self.final_seq = 0

    def feed(self, text: str, seq: int) -> None:
        if self.parser is None or not text:
            return
        try:
            self.parser.feed(text)
        except JsonParseError:
            # reported once, with the whole text, when the call completes
            self.parser = None
            return
        if self.parser.has_value and (not self.versions or self.versions[-1] != self.parser.version):
            self.seqs.append(seq)
            self.versions.append(self.parser.version)

    def value(self, version: int | None) -> Any:
        if self.parser is None or version is None:
            return None
        return self.parser.value(version)

    def current_version(self) -> int | None:
        return self.versions[-1] if self.versions else None

    def delta_at(self, seq: int) -> Any:
        """The partial arguments as of chunk ``seq``: ``ToolCallDelta.parsed_arguments``."""
        position = bisect_right(self.seqs, seq)
        return self.value(self.versions[position - 1]) if position else None

    def at(self, seq: int) -> Any:
        """The arguments in a snapshot as of chunk ``seq``: partial, then final once done."""
        if self.final is not _UNSET and seq >= self.final_seq:
            return self.final
        return self.delta_at(seq)


def assemble_tool_calls(
    *, tools: Iterable[Mapping[str, Any]] | None = None
) -> Callable[[Observable[BaseEvent]], Observable[BaseEvent]]:
    """Parse tool-call arguments as they stream, and validate each call when it completes.

    For strict tools and ``openai.pydantic_function_tool`` tools (openai's conditions),
    ``tool_calls.function.arguments.delta`` carries ``parsed_arguments``, the partial JSON so far
    (parsed incrementally: each character once), and ``tool_calls.function.arguments.done`` the
    final value: the pydantic model for pydantic tools, the JSON value for strict tools. Other
    tools get None, as in openai. Arguments that are not valid JSON, or fail the tool's model,
    give ``parsed_arguments=None`` on the done event followed by an ``error`` event naming the call
    (``code="tool_arguments_invalid"``, a ``ToolArgumentsError`` with the raw text and JSON
    position); the stream goes on.

    The operator hands its values to the accumulator of the stream it follows (snapshots and the
    final completion show them): put ``share()`` after it, not between ``accumulate`` and it, when
    several subscribers need different configurations.

    ::

        --delta('{"ci')--delta('ty":"Paris"}')--done----------------------|
        [                 assemble_tool_calls(tools=[strict_tool])        ]
        --delta(parsed={})--delta(parsed={"city":"Paris"})--done(parsed)--|
    """
    specs = tool_specs(tools)

    def _assemble(source: Observable[BaseEvent]) -> Observable[BaseEvent]:
        if not any(spec.parseable for spec in specs.values()):
            # nothing to parse: openai leaves parsed_arguments None, and so do we, at no cost
            return source

        return Fused(source, lambda observer: _Assemble(specs, observer))

    return _assemble


class _Assemble(Stage):
    """One subscription: a parse per tool call."""

    __slots__ = ("calls", "specs")

    def __init__(self, specs: dict[str, ToolSpec], observer: abc.ObserverBase[BaseEvent]) -> None:
        super().__init__(observer)
        self.specs = specs
        self.calls: dict[tuple[int, int], _CallParse] = {}

    def on_next(self, event: BaseEvent) -> None:
        if isinstance(event, ToolCallDelta):
            self.emit(_on_delta(event, self.specs.get(event.name), self.calls))
        elif isinstance(event, ToolCallDone):
            for out in _on_done(event, self.specs.get(event.name), self.calls):
                self.emit(out)
        else:
            self.emit(event)


def _call_state(event: ToolCallDelta | ToolCallDone) -> tuple[CompletionState | None, ToolCallState | None]:
    origin = event.origin
    if not isinstance(origin, CompletionState):
        return None, None
    choice = origin.choices.get(event.choice_index)
    return origin, choice.tool_calls.get(event.index) if choice else None


def _on_delta(
    event: ToolCallDelta, spec: ToolSpec | None, calls: dict[tuple[int, int], _CallParse]
) -> BaseEvent:
    if spec is None or not spec.parseable:
        return event
    key = (event.choice_index, event.index)
    parse = calls.get(key)
    origin, call_state = _call_state(event)
    if parse is None:
        parse = calls[key] = _CallParse()
        if call_state is not None:
            call_state.parsed_at = parse.at
            # from the next fragment on, accumulate gives the delta a lazy parsed_arguments itself
            call_state.delta_parsed_at = parse.delta_at
    parse.feed(event.arguments_delta, origin.seq if origin is not None else len(parse.seqs) + 1)
    version = parse.current_version()
    if version is None or "parsed_arguments" not in event.__dict__:
        # no value yet, or the hook already made parsed_arguments lazy
        return event
    parser = parse.parser
    return event.evolve(lazy={"parsed_arguments": lambda: parser.value(version) if parser else None})


def _on_done(
    event: ToolCallDone, spec: ToolSpec | None, calls: dict[tuple[int, int], _CallParse]
) -> list[BaseEvent]:
    if spec is None or not spec.parseable:
        return [event]
    origin, call_state = _call_state(event)
    parse = calls.get((event.choice_index, event.index))
    if parse is None:
        parse = calls[(event.choice_index, event.index)] = _CallParse()
        if call_state is not None:
            call_state.parsed_at = parse.at
    parsed, error = _parse_arguments(spec, event)
    parse.final = parsed
    parse.final_seq = origin.seq if origin is not None else 0
    tool_call = event.tool_call.model_copy(
        update={"function": event.tool_call.function.model_copy(update={"parsed_arguments": parsed})}
    )
    done = event.evolve(fields={"parsed_arguments": parsed, "tool_call": tool_call})
    if error is None:
        return [done]
    if origin is not None:
        error.completion = origin.current()
    report = ErrorReported(
        code="tool_arguments_invalid",
        message=str(error),
        choice_index=event.choice_index,
        detail={
            "name": event.name,
            "index": event.index,
            "arguments": event.arguments,
            "position": error.position,
        },
        exception=error,
    )
    return [done, report]


def _parse_arguments(spec: ToolSpec, event: ToolCallDone) -> tuple[Any, ToolArgumentsError | None]:
    """Parse the whole arguments once, as openai's ``parse_function_tool_arguments`` does."""
    arguments = event.arguments
    where = f"tool call {event.index} ({event.name}) of choice {event.choice_index}"
    try:
        if spec.model is not None:
            return spec.model.model_validate_json(arguments), None
        return json.loads(arguments), None
    except ValidationError as exc:
        if exc.errors()[0]["type"] != "json_invalid":
            return None, ToolArgumentsError(
                f"{where}: arguments do not match {spec.model.__name__ if spec.model else 'the tool'}: {exc}",
                name=event.name,
                index=event.index,
                choice_index=event.choice_index,
                arguments=arguments,
            )
        # the model's JSON error has no offset; the standard parser names it
        try:
            json.loads(arguments)
        except json.JSONDecodeError as json_error:
            return None, _json_error(where, event, json_error)
        raise  # pragma: no cover - pydantic and json disagree on validity
    except json.JSONDecodeError as exc:
        return None, _json_error(where, event, exc)
    except RecursionError:
        # model-written arguments nested past Python's recursion limit (the stream goes on)
        return None, ToolArgumentsError(
            f"{where}: arguments are nested too deeply to parse",
            name=event.name,
            index=event.index,
            choice_index=event.choice_index,
            arguments=arguments,
        )


def _json_error(where: str, event: ToolCallDone, exc: json.JSONDecodeError) -> ToolArgumentsError:
    return ToolArgumentsError(
        f"{where}: arguments are not valid JSON: {exc.msg} at position {exc.pos}",
        name=event.name,
        index=event.index,
        choice_index=event.choice_index,
        arguments=event.arguments,
        position=exc.pos,
    )
