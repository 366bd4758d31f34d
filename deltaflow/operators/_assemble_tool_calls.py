"""``assemble_tool_calls()``: parsed arguments for tool-call fragments, errors that name the call."""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from openai.types.chat import ParsedChatCompletion
from pydantic import ValidationError
from reactivex import Observable, abc

from deltaflow._tools import ToolSpec, tool_specs
from deltaflow.errors import JsonParseError, ToolArgumentsError
from deltaflow.events import (
    BaseEvent,
    ChunkReceived,
    CompletionDone,
    ErrorReported,
    Event,
    ToolCallDelta,
    ToolCallDone,
)
from deltaflow.operators._snapshot_copies import SnapshotAdder, with_parsed_arguments
from deltaflow.operators._stage import Fused
from deltaflow.partial_json import IncrementalJsonParser

__all__ = ["assemble_tool_calls"]

_UNSET: Any = object()


class _CallParse:
    """The partial parse of one tool call's arguments, remembered per chunk for snapshots.

    Chunks are numbered by the operator, counting the ``chunk`` events that pass it.
    """

    __slots__ = ("chunks", "final", "final_chunk", "parser", "versions")

    def __init__(self) -> None:
        self.parser: IncrementalJsonParser | None = IncrementalJsonParser(emit_ops=False)
        self.chunks: list[int] = []
        self.versions: list[int] = []
        self.final: Any = _UNSET
        self.final_chunk = 0

    def feed(self, text: str, chunk: int) -> None:
        if self.parser is None or not text:
            return
        try:
            self.parser.feed(text)
        except JsonParseError:
            # reported once, with the whole text, when the call completes
            self.parser = None
            return
        if self.parser.has_value and (not self.versions or self.versions[-1] != self.parser.version):
            self.chunks.append(chunk)
            self.versions.append(self.parser.version)

    def value(self, version: int) -> Any:
        return self.parser.value(version) if self.parser is not None else None

    def at(self, chunk: int) -> Any:
        """The arguments in a snapshot as of ``chunk``: partial, then final once done."""
        if self.final is not _UNSET and chunk >= self.final_chunk:
            return self.final
        position = bisect_right(self.chunks, chunk)
        return self.value(self.versions[position - 1]) if position else None


def assemble_tool_calls(
    *, tools: Iterable[Mapping[str, Any]] | None = None
) -> Callable[[Observable[Event]], Observable[Event]]:
    """Parse tool-call arguments as they stream, and validate each call when it completes.

    For strict tools and ``openai.pydantic_function_tool`` tools (openai's conditions),
    ``tool_calls.function.arguments.delta`` carries ``parsed_arguments``, the partial JSON so far
    (parsed incrementally: each character once), and ``tool_calls.function.arguments.done`` the
    final value: the pydantic model for pydantic tools, the JSON value for strict tools. Other
    tools get None, as in openai. Arguments that are not valid JSON, or fail the tool's model,
    give ``parsed_arguments=None`` on the done event followed by an ``error`` event naming the call
    (``code="tool_arguments_invalid"``, a ``ToolArgumentsError`` with the raw text and JSON
    position); the stream goes on.

    Snapshots (``chunk`` events, ``completion.done``) it passes on are copies that show the parsed
    arguments; the events it was given are not changed, so other subscribers of the same upstream
    see only what their own operators add. (Fused below ``accumulate`` in one chain, which nobody
    else sees, the accumulator makes the snapshots with them instead: see ``operators/_stage.py``.)

    ::

        --delta('{"ci')--delta('ty":"Paris"}')--done----------------------|
        [                 assemble_tool_calls(tools=[strict_tool])        ]
        --delta(parsed={})--delta(parsed={"city":"Paris"})--done(parsed)--|
    """
    specs = tool_specs(tools)

    def _assemble(source: Observable[Event]) -> Observable[Event]:
        if not any(spec.parseable for spec in specs.values()):
            # nothing to parse: openai leaves parsed_arguments None, and so do we, at no cost
            return source

        return Fused(source, lambda observer: _Assemble(specs, observer))

    return _assemble


class _Assemble(SnapshotAdder):
    """One subscription: a parse per tool call, and the snapshots of the events it passes on."""

    __slots__ = ("calls", "specs")

    def __init__(self, specs: dict[str, ToolSpec], observer: abc.ObserverBase[Any]) -> None:
        super().__init__(observer)
        self.specs = specs
        self.calls: dict[tuple[int, int], _CallParse] = {}

    def on_next(self, event: BaseEvent) -> None:
        if self.chain.ended:
            return
        if isinstance(event, ToolCallDelta):
            self.emit(self._on_delta(event))
        elif isinstance(event, ChunkReceived):
            self.pass_chunk(event)
        elif isinstance(event, ToolCallDone):
            done, report = self._on_done(event)
            self.emit(done)
            if report is not None:
                self.emit(report)
        elif isinstance(event, CompletionDone):
            self.pass_completion(event)
        else:
            self.emit(event)

    def adds_anything(self) -> bool:
        return bool(self.calls)

    def with_added(
        self, completion: ParsedChatCompletion[object], chunk: int
    ) -> ParsedChatCompletion[object]:
        if not self.calls:
            return completion
        return with_parsed_arguments(completion, {key: parse.at(chunk) for key, parse in self.calls.items()})

    def _on_delta(self, event: ToolCallDelta) -> BaseEvent:
        spec = self.specs.get(event.name)
        if spec is None or not spec.parseable:
            return event
        key = (event.choice_index, event.index)
        parse = self.calls.get(key)
        if parse is None:
            parse = self.calls[key] = _CallParse()
        parse.feed(event.arguments_delta, self.chunks)
        if not parse.versions:
            return event  # no value yet
        return self.with_lazy(event, "parsed_arguments", (parse.value, parse.versions[-1]))

    def _on_done(self, event: ToolCallDone) -> tuple[BaseEvent, ErrorReported | None]:
        spec = self.specs.get(event.name)
        if spec is None or not spec.parseable:
            return event, None
        key = (event.choice_index, event.index)
        parse = self.calls.get(key)
        if parse is None:
            parse = self.calls[key] = _CallParse()
        parsed, error = _parse_arguments(spec, event)
        parse.final = parsed
        parse.final_chunk = self.chunks
        tool_call = event.tool_call.model_copy(
            update={"function": event.tool_call.function.model_copy(update={"parsed_arguments": parsed})}
        )
        done = event.evolve(fields={"parsed_arguments": parsed, "tool_call": tool_call})
        if error is None:
            return done, None
        error.completion = self.latest_completion()
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
        return done, report


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
