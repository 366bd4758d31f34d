"""``parse_partial_json()``: structured content parsed as it streams, each character once."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ValidationError
from reactivex import Observable, abc

from deltaflow._tools import is_rich_response_format, json_schema_of, validate_content
from deltaflow.errors import JsonParseError
from deltaflow.events import (
    BaseEvent,
    ContentDelta,
    ContentDone,
    ContentParsedDelta,
    ContentParsedDone,
    ErrorReported,
)
from deltaflow.partial_json import IncrementalJsonParser
from deltaflow.state import ChoiceState, CompletionState

__all__ = ["parse_partial_json"]

_UNSET: Any = object()


class _ContentParse:
    """One choice's parse: the parser, its versions per chunk, and the final validated value."""

    __slots__ = ("error", "final", "final_seq", "parser", "seqs", "versions")

    def __init__(self, parser: IncrementalJsonParser) -> None:
        self.parser = parser
        self.error: JsonParseError | None = None
        self.seqs: list[int] = []
        self.versions: list[int] = []
        self.final: Any = _UNSET
        self.final_seq = 0

    def mark(self, seq: int) -> int | None:
        """Remember the parser's version as of chunk ``seq``; returns it (None: no value yet)."""
        if not self.parser.has_value:
            return None
        version: int = self.parser.version
        if not self.versions or self.versions[-1] != version:
            self.seqs.append(seq)
            self.versions.append(version)
        return version

    def at(self, seq: int) -> Any:
        if self.final is not _UNSET and seq >= self.final_seq:
            return self.final
        position = bisect_right(self.seqs, seq)
        return self.parser.value(self.versions[position - 1]) if position else None


def parse_partial_json(
    *,
    response_format: object = None,
    parsed_deltas: bool = True,
    parsed_done: bool = False,
    max_depth: int = 256,
    max_size: int | None = 64 * 1024 * 1024,
) -> Callable[[Observable[BaseEvent]], Observable[BaseEvent]]:
    """Parse JSON content incrementally: ``parsed`` on deltas, path events, the model at the end.

    With a ``response_format`` that is a type (a pydantic model, a dataclass) or a ``json_schema``
    request dict, content is fed to an incremental parser (time proportional to each delta):

    - ``content.delta`` gets openai's ``parsed`` (a type ``response_format``, no refusal, content not
      blank): the partial value, equal to ``jiter.from_json(content, partial_mode=True)``, computed
      when read, as of that event. Values share completed parts between events: read-only.
    - ``content.parsed.delta`` events (``parsed_deltas=True``) follow each content delta: ``path``,
      ``op`` (``add`` / ``append`` / ``replace``) and ``value``; replayed in order they rebuild the value,
      strings included while they stream.
    - ``content.parsed.done`` (``parsed_done=True``) for each sub-value when its JSON closes.
    - ``content.done`` gets ``parsed``, validated into the ``response_format`` type (as openai).

    Invalid JSON, or a depth / size bound exceeded, yields one ``error`` event
    (``code="content_invalid"``, a ``JsonParseError`` with the position and the raw text); the
    content keeps streaming, unparsed.

    ::

        --delta('{"a":')------------delta('[1]}')-----------------------done---------|
        [               parse_partial_json(response_format=Model)                   ]
        --delta(parsed={})-add(())--delta(parsed={"a":[1]})-add(a)-add(a,0)--done(Model)|
    """
    rich = is_rich_response_format(response_format)
    active = rich or json_schema_of(response_format) is not None
    # None: no content.parsed.done events; otherwise the sub-models to validate closed values into
    sub_models = (_sub_models(response_format) if rich else {}) if parsed_done else None

    def _parse(source: Observable[BaseEvent]) -> Observable[BaseEvent]:
        if not active:
            return source

        def subscribe(
            observer: abc.ObserverBase[BaseEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            parses: dict[int, _ContentParse] = {}

            def parse_for(event: ContentDelta | ContentDone, choice_index: int) -> _ContentParse:
                parse = parses.get(choice_index)
                if parse is None:
                    parser = IncrementalJsonParser(
                        max_depth=max_depth, max_size=max_size, emit_ops=parsed_deltas, track_done=parsed_done
                    )
                    parse = parses[choice_index] = _ContentParse(parser)
                    choice = _choice_state(event)
                    if choice is not None and rich:
                        choice.parsed_at = parse.at
                return parse

            def on_next(event: BaseEvent) -> None:
                if isinstance(event, ContentDelta):
                    for out in _on_delta(event, parse_for(event, event.choice_index), rich, sub_models):
                        observer.on_next(out)
                elif isinstance(event, ContentDone):
                    for out in _on_done(event, parse_for(event, event.choice_index), response_format, rich):
                        observer.on_next(out)
                else:
                    observer.on_next(event)

            return source.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return _parse


def _choice_state(event: ContentDelta | ContentDone) -> ChoiceState | None:
    origin = event.origin
    if not isinstance(origin, CompletionState):
        return None
    return origin.choices.get(event.choice_index)


def _refused(event: ContentDelta | ContentDone) -> bool:
    choice = _choice_state(event)
    return choice is not None and choice.refusal is not None and bool(choice.refusal.text())


def _on_delta(
    event: ContentDelta,
    parse: _ContentParse,
    rich: bool,
    sub_models: dict[tuple[str | int, ...], type[BaseModel]] | None,
) -> list[BaseEvent]:
    if parse.error is not None or not event.delta:
        if parse.error is None and rich:
            return [_with_parsed(event, parse)]
        return [event]
    parser = parse.parser
    try:
        ops = parser.feed(event.delta)
    except JsonParseError as exc:
        parse.error = exc
        origin = event.origin
        if isinstance(origin, CompletionState):
            exc.completion = origin.current()
        return [
            event,
            ErrorReported(
                code="content_invalid",
                message=f"choice {event.choice_index}: content is not valid JSON: {exc}",
                choice_index=event.choice_index,
                detail={"position": exc.position},
                exception=exc,
            ),
        ]
    origin = event.origin
    parse.mark(origin.seq if isinstance(origin, CompletionState) else len(parse.seqs) + 1)
    out: list[BaseEvent] = [_with_parsed(event, parse) if rich else event]
    index = event.choice_index
    out.extend(
        ContentParsedDelta.lazy(
            {
                "type": "content.parsed.delta",
                "choice_index": index,
                "path": op.path,
                "op": op.op,
                "value": op.value,
            },
            {},
            origin,
        )
        for op in ops
    )
    if sub_models is not None:
        for path, value in parser.pop_done():
            out.append(
                ContentParsedDone.lazy(
                    {
                        "type": "content.parsed.done",
                        "choice_index": index,
                        "path": tuple(path),
                        "value": _validate_sub_value(sub_models, tuple(path), value),
                    },
                    {},
                    origin,
                )
            )
    return out


def _with_parsed(event: ContentDelta, parse: _ContentParse) -> BaseEvent:
    # openai's conditions: no refusal, content not blank (the parser has a value)
    version = parse.versions[-1] if parse.versions and parse.parser.has_value else None
    if version is None or _refused(event):
        return event
    parser = parse.parser
    return event.evolve(lazy={"parsed": lambda: parser.value(version)})


def _on_done(
    event: ContentDone, parse: _ContentParse, response_format: object, rich: bool
) -> list[BaseEvent]:
    origin = event.origin
    parse.final_seq = origin.seq if isinstance(origin, CompletionState) else 0
    if not rich or _refused(event):
        parse.final = None
        return [event]
    try:
        parsed = validate_content(response_format, event.content)
    except ValidationError as exc:
        parse.final = None
        return [
            event,
            ErrorReported(
                code="content_invalid",
                message=f"choice {event.choice_index}: content does not match the response format: {exc}",
                choice_index=event.choice_index,
                detail={"errors": exc.errors(include_url=False)},
                exception=exc,
            ),
        ]
    parse.final = parsed
    return [event.evolve(fields={"parsed": parsed})]


def _sub_models(response_format: object) -> dict[tuple[str | int, ...], type[BaseModel]]:
    """Map JSON paths (with -1 for "any array element") to the pydantic models found there."""
    found: dict[tuple[str | int, ...], type[BaseModel]] = {}
    if not (isinstance(response_format, type) and issubclass(response_format, BaseModel)):
        return found
    stack: list[tuple[tuple[str | int, ...], Any, int]] = [((), response_format, 0)]
    while stack:
        path, annotation, depth = stack.pop()
        if depth > 32:
            continue
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if path in found:
                continue
            found[path] = annotation
            for name, field in annotation.model_fields.items():
                stack.append(((*path, field.alias or name), field.annotation, depth + 1))
            continue
        for argument in getattr(annotation, "__args__", ()):
            origin = getattr(annotation, "__origin__", None)
            element_path = (*path, -1) if origin in (list, tuple, set, frozenset) else path
            stack.append((element_path, argument, depth + 1))
    return found


def _validate_sub_value(
    sub_models: dict[tuple[str | int, ...], type[BaseModel]], path: tuple[str | int, ...], value: Any
) -> Any:
    pattern = tuple(-1 if isinstance(item, int) else item for item in path)
    model = sub_models.get(pattern)
    if model is None or not isinstance(value, dict):
        return value
    try:
        return model.model_validate(value)
    except ValidationError:
        return value
