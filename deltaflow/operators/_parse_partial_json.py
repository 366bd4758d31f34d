"""``parse_partial_json()``: structured content parsed as it streams, each character once."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from typing import Any

from openai.types.chat import ParsedChatCompletion
from pydantic import ValidationError
from reactivex import Observable, abc

from deltaflow._lazy import build
from deltaflow._tools import has_json_content, is_rich_response_format, validate_content
from deltaflow.errors import ContentInvalidError, JsonParseError
from deltaflow.events import (
    BaseEvent,
    ChunkReceived,
    CompletionDone,
    ContentDelta,
    ContentDone,
    ContentParsedDelta,
    ContentParsedDone,
    ErrorReported,
    Event,
    RefusalDelta,
)
from deltaflow.operators._snapshot_copies import SnapshotAdder, with_parsed_content
from deltaflow.operators._stage import Fused
from deltaflow.operators._sub_models import SubModels
from deltaflow.partial_json import IncrementalJsonParser

__all__ = ["parse_partial_json"]

_UNSET: Any = object()


def parse_partial_json(
    *,
    response_format: object = None,
    parsed_deltas: bool = True,
    parsed_done: bool = False,
    max_depth: int = 256,
    max_size: int | None = 64 * 1024 * 1024,
) -> Callable[[Observable[Event]], Observable[Event]]:
    """Parse JSON content incrementally: ``parsed`` on deltas, path events, the model at the end.

    With a ``response_format`` that is a type (a pydantic model, a dataclass) or a ``json_schema``
    request dict, each content delta is fed to an incremental parser (work proportional to the delta,
    whatever the length of the content so far):

    - ``content.delta`` gets openai's ``parsed`` under openai's conditions (a type
      ``response_format``, no refusal, content not blank): the partial value, equal to
      ``jiter.from_json(content.encode(), partial_mode=True)``, computed when first read and as of
      that event however late it is read. Values share completed parts between events: read-only.
    - ``content.parsed.delta`` events (``parsed_deltas=True``, with either kind of
      ``response_format``) follow each content delta: ``path``, ``op`` (``add`` / ``append`` /
      ``replace`` / ``remove``) and ``value``; replayed in order with
      ``deltaflow.partial_json.apply_ops`` they rebuild
      ``jiter.from_json(content, partial_mode="trailing-strings")``, strings included while they
      stream. Their total size is proportional to the content.
    - ``content.parsed.done`` (``parsed_done=True``) for each sub-value whose JSON closed within a
      delta, after that delta's ``content.parsed.delta`` events, innermost first. An object where
      the ``response_format`` type has a model (a nested model, a list or dict of models,
      ``Optional[Model]``, a union of models; fields found by their validation alias) arrives
      validated into it; anything else, or an object that fails its model, arrives as parsed.
    - ``content.done`` gets ``parsed``, validated into the ``response_format`` type (as openai);
      with a ``json_schema`` dict it stays None (as openai).

    Invalid JSON, JSON cut short at ``content.done``, or a ``max_depth`` / ``max_size`` bound
    exceeded yield one ``error`` event (``code="content_invalid"``) carrying a ``JsonParseError``
    (``JsonLimitError`` for the bounds) with the character position, the raw text so far, and
    ``detail={"position": ..., "byte_position": ...}`` (offset in the UTF-8 text). The content keeps
    streaming, unparsed; ``parsed`` stays None from then on. Valid JSON that fails the model gives an
    ``error`` event with the ``ValidationError`` instead. A refused choice (openai: non-empty refusal)
    is not parsed: ``parsed`` None everywhere.

    Args:
        response_format: a type to validate content into, or the request's ``response_format`` dict
            (only ``json_schema`` ones are parsed). Anything else: events pass through untouched.
        parsed_deltas: emit ``content.parsed.delta`` events.
        parsed_done: emit ``content.parsed.done`` events.
        max_depth: deepest nesting of arrays and objects accepted.
        max_size: most characters of content parsed per choice, None for no bound.

    Snapshots (``chunk`` events, ``completion.done``) it passes on are copies that show ``parsed``;
    the events it was given are not changed, so other subscribers of the same upstream see only
    what their own operators add. (Fused below ``accumulate`` in one chain, which nobody else sees,
    the events are filled in place instead: see ``operators/_stage.py``.)

    ::

        --delta('{"a":')------------delta('[1]}')-----------------------done---------|
        [               parse_partial_json(response_format=Model)                   ]
        --delta(parsed={})-add(())--delta(parsed={"a":[1]})-add(a)-add(a,0)--done(Model)|
    """
    if max_depth < 1:
        raise ValueError(f"max_depth must be at least 1, not {max_depth}")
    if max_size is not None and max_size < 1:
        raise ValueError(f"max_size must be at least 1 or None, not {max_size}")
    rich = is_rich_response_format(response_format)
    active = has_json_content(response_format)
    # one map per operator, shared by its subscriptions: it only caches what the types say
    sub_models = SubModels(response_format) if parsed_done and rich else None
    config = _Config(response_format, rich, parsed_deltas, parsed_done, sub_models, max_depth, max_size)

    def _parse(source: Observable[Event]) -> Observable[Event]:
        if not active:
            return source

        return Fused(source, lambda observer: _Run(config, observer))

    return _parse


class _Config:
    """The operator's parameters, resolved once."""

    __slots__ = (
        "max_depth",
        "max_size",
        "parsed_deltas",
        "parsed_done",
        "response_format",
        "rich",
        "sub_models",
    )

    def __init__(  # noqa: PLR0917 - a plain record
        self,
        response_format: object,
        rich: bool,
        parsed_deltas: bool,
        parsed_done: bool,
        sub_models: SubModels | None,
        max_depth: int,
        max_size: int | None,
    ) -> None:
        self.response_format = response_format
        self.rich = rich
        self.parsed_deltas = parsed_deltas
        self.parsed_done = parsed_done
        self.sub_models = sub_models
        self.max_depth = max_depth
        self.max_size = max_size


class _ContentParse:
    """One choice's parse: the parser, its version after each chunk, the final validated value.

    Chunks are numbered by the operator itself, counting the ``chunk`` events that pass it: a
    value read late is looked up as of the chunk of its event.
    """

    __slots__ = ("chunks", "error", "final", "final_chunk", "parser", "versions")

    def __init__(self, parser: IncrementalJsonParser) -> None:
        self.parser = parser
        self.error: JsonParseError | None = None
        # the parser's version as of chunk chunks[i] is versions[i]; version 0 is "nothing yet" (None)
        self.chunks: list[int] = [0]
        self.versions: list[int] = [0]
        self.final: Any = _UNSET
        self.final_chunk = 0

    def at(self, chunk: int, refused: int | None) -> Any:
        """``message.parsed`` as of ``chunk``, the choice having refused at chunk ``refused``."""
        if self.final is not _UNSET and chunk >= self.final_chunk:
            return self.final
        if refused is not None and refused <= chunk:
            return None
        if chunk >= self.chunks[-1]:
            return self.parser.value(self.versions[-1])  # read as it streams, the usual case
        return self.parser.value(self.versions[bisect_right(self.chunks, chunk) - 1])


class _Run(SnapshotAdder):
    """One subscription: the parses per choice, and the snapshots of the events it passes on."""

    __slots__ = ("config", "parsed_done", "parses", "refused", "rich")

    def __init__(self, config: _Config, observer: abc.ObserverBase[Any]) -> None:
        super().__init__(observer)
        self.config = config
        # read on every delta: kept here rather than one attribute further
        self.rich = config.rich
        self.parsed_done = config.parsed_done
        self.parses: dict[int, _ContentParse] = {}
        self.refused: dict[int, int] = {}
        """Choice index -> the chunk whose refusal delta was the first not empty (openai stops parsing)."""

    def on_next(self, event: BaseEvent) -> None:
        """Handle one event of the upstream."""
        if self.chain.ended:
            return
        # exact types first: this runs for every event of the stream
        kind = type(event)
        if kind is ContentDelta:
            self._on_delta(event)  # type: ignore[arg-type]  # checked just above
        elif kind is ChunkReceived or isinstance(event, ChunkReceived):
            if self.rich:
                self.pass_chunk(event)  # type: ignore[arg-type]  # checked just above
            else:
                self.chunks += 1
                self.emit(event)
        elif isinstance(event, ContentDelta):
            self._on_delta(event)
        elif isinstance(event, ContentDone):
            self._on_done(event)
        elif isinstance(event, RefusalDelta):
            if event.delta and event.choice_index not in self.refused:
                self.refused[event.choice_index] = self.chunks
            self.emit(event)
        elif isinstance(event, CompletionDone) and self.rich:
            self.pass_completion(event)
        else:
            self.emit(event)

    def adds_anything(self) -> bool:
        return self.rich and bool(self.parses)

    def with_added(
        self, completion: ParsedChatCompletion[object], chunk: int
    ) -> ParsedChatCompletion[object]:
        refused = self.refused
        values = {index: parse.at(chunk, refused.get(index)) for index, parse in self.parses.items()}
        return with_parsed_content(completion, values)

    def _parse_for(self, index: int) -> _ContentParse:
        parse = self.parses.get(index)
        if parse is None:
            config = self.config
            parser = IncrementalJsonParser(
                max_depth=config.max_depth,
                max_size=config.max_size,
                emit_ops=config.parsed_deltas,
                track_done=config.parsed_done,
            )
            parse = self.parses[index] = _ContentParse(parser)
        return parse

    def _on_delta(self, event: ContentDelta) -> None:
        index = event.choice_index
        parse = self.parses.get(index)
        if parse is None:
            parse = self._parse_for(index)
        emit = self.emit
        if parse.error is not None:
            emit(event)
            return
        text = event.delta
        ops: Sequence[Any] = ()
        versions = parse.versions
        if text:
            parser = parse.parser
            try:
                ops = parser.feed(text)
            except JsonParseError as exc:
                emit(event)
                self.emit(self._json_error(event, parse, exc))
                return
            version = parser.version
            if version != versions[-1]:
                parse.chunks.append(self.chunks)
                versions.append(version)
        # openai's conditions: a type response_format, content not blank (some value parsed), no refusal
        if self.rich and versions[-1] and index not in self.refused:
            event = self.with_lazy(event, "parsed", (parse.parser.value, versions[-1]))
        emit(event)
        if ops:
            for path, op, value in ops:
                fields = {
                    "type": "content.parsed.delta",
                    "choice_index": index,
                    "path": path,
                    "op": op,
                    "value": value,
                }
                emit(build(ContentParsedDelta, fields))
        if self.parsed_done:
            self._emit_done(index, parse)

    def _emit_done(self, index: int, parse: _ContentParse) -> None:
        sub_models = self.config.sub_models
        for path, closed in parse.parser.pop_done():
            steps = tuple(path)
            # only objects can be models: scalars and arrays skip the lookup
            value = (
                sub_models.validate(steps, closed)
                if sub_models is not None and type(closed) is dict
                else closed
            )
            fields = {"type": "content.parsed.done", "choice_index": index, "path": steps, "value": value}
            self.emit(build(ContentParsedDone, fields))

    def _on_done(self, event: ContentDone) -> None:
        parse = self._parse_for(event.choice_index)
        parse.final_chunk = self.chunks
        parse.final = None
        emit = self.emit
        config = self.config
        if parse.error is not None or event.choice_index in self.refused:
            # reported already / openai does not parse a refused choice
            emit(event)
            return
        try:
            # text that is a valid prefix but stops short: named here, with its position
            parse.parser.finish()
        except JsonParseError as exc:
            emit(event)
            self.emit(self._json_error(event, parse, exc))
            return
        if not config.rich:
            emit(event)
            if config.parsed_done:
                self._emit_done(event.choice_index, parse)
            return
        try:
            parsed = validate_content(config.response_format, event.content)
        except ValidationError as exc:
            emit(event)
            self.emit(self._invalid_content_error(event, exc))
            return
        parse.final = parsed
        if config.parsed_done:
            # a top-level number closes only now
            self._emit_done(event.choice_index, parse)
        emit(event.evolve(fields={"parsed": parsed}))

    def _invalid_content_error(self, event: ContentDone, exc: ValidationError) -> ErrorReported:
        error = ContentInvalidError(
            f"choice {event.choice_index}: content does not match the response format: {exc}",
            choice_index=event.choice_index,
            text=event.content,
            errors=exc.errors(include_url=False),
            completion=self.latest_completion(),
        )
        error.__cause__ = exc
        return ErrorReported(
            code="content_invalid",
            message=str(error),
            choice_index=event.choice_index,
            detail={"errors": error.errors},
            exception=error,
        )

    def _json_error(
        self, event: ContentDelta | ContentDone, parse: _ContentParse, exc: JsonParseError
    ) -> ErrorReported:
        parse.error = exc
        parse.final = None
        exc.completion = self.latest_completion()
        exc.choice_index = event.choice_index
        # surrogatepass: content decoded from JSON escapes may hold lone surrogates
        byte_position = len(exc.text[: exc.position].encode("utf-8", "surrogatepass"))
        return ErrorReported(
            code="content_invalid",
            message=f"choice {event.choice_index}: content is not valid JSON: {exc}",
            choice_index=event.choice_index,
            detail={"position": exc.position, "byte_position": byte_position},
            exception=exc,
        )
