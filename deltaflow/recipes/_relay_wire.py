"""The relay's wire vocabulary, shared by its server side, its client side and the durable log."""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import Annotated, Any, cast, get_args

from pydantic import TypeAdapter, ValidationError
from pydantic_core import PydanticSerializationError

from deltaflow._lazy import build
from deltaflow.errors import StreamContractError
from deltaflow.events import BaseEvent, ErrorReported, Event

DONE_EVENT = "done"
COMPACTED_FIELDS: dict[str, tuple[str, str]] = {
    "content.delta": ("snapshot", "delta"),
    "reasoning.delta": ("snapshot", "delta"),
    "refusal.delta": ("snapshot", "delta"),
    "tool_calls.function.arguments.delta": ("arguments", "arguments_delta"),
}
"""Running texts the relays and the durable log leave out of delta events, with the field each grows by.

Sent whole, they would make a stream's traffic and log quadratic in its length; a reader rebuilds them
from the deltas it has read (so a reader that joins mid-stream has them from where it joined)."""
_LEFT_OUT = {kind: (running,) for kind, (running, _) in COMPACTED_FIELDS.items()}


def failure_payload(error: Exception, reported: ErrorReported) -> dict[str, Any]:
    """The ``done`` event's data for a stream that failed with ``error``, reported as ``reported``."""
    # DeltaflowError and openai's LengthFinishReasonError / ContentFilterFinishReasonError carry it
    completion = getattr(error, "completion", None)
    return {
        "ok": False,
        "error": {"type": type(error).__name__, "code": reported.code, "message": reported.message},
        "completion": completion.model_dump(mode="json", warnings=False) if completion is not None else None,
    }


def encode_compact(event: BaseEvent) -> str:
    """``encode_event`` without the running text ``COMPACTED_FIELDS`` names: what the relays send and log."""
    return encode_event(event, exclude=_LEFT_OUT.get(event.type))


def encode_event(event: BaseEvent, *, exclude: Collection[str] | None = None) -> str:
    r"""An event's JSON for the wire, whatever text the provider sent.

    Content may hold a lone surrogate (``"\\ud800"`` in a chunk's JSON decodes to one), which UTF-8
    cannot encode: such an event goes as JSON escapes, ASCII only, which ``EventDecoder`` reads back
    to the same text, as in process. Values of another type than declared (a numeric
    ``finish_reason``) are sent as they are, without pydantic's warning.
    """
    excluded = set(exclude) if exclude else None
    try:
        return event.model_dump_json(fallback=repr, exclude=excluded, warnings=False)
    except PydanticSerializationError:
        fields = event.model_dump(mode="json", fallback=repr, exclude=excluded, warnings=False)
        return json.dumps(fields, separators=(",", ":"))  # ensure_ascii: surrogates as \\ud800


class EventDecoder:
    """A relayed event's JSON back to its deltaflow event, agreeing with ``encode_event`` on everything.

    Validated as ``pydantic.TypeAdapter(Event)`` does; a field of an event the pipeline made from a
    provider's off-type value (a numeric ``finish_reason``, ``logprobs.content`` given as an object)
    fails that, and is kept as it came, as the pipeline kept it, when every other field validates.
    What is not a deltaflow event at all (no known ``type``, a required field missing) is a
    ``StreamContractError``.
    """

    def __init__(self) -> None:
        self._adapter: TypeAdapter[Event] = TypeAdapter(Event)
        self._fields: dict[type[BaseEvent], dict[str, TypeAdapter[Any]]] = {}

    def decode(self, kind: str | None, data: str) -> Event:
        """The event ``data`` holds (``kind`` is the SSE event name, for the error message).

        Raises:
            StreamContractError: ``data`` is not a deltaflow event.
        """
        try:
            return self._adapter.validate_json(data)
        except ValidationError:
            pass  # off-type values, or JSON only json.loads reads (a lone surrogate's escape)
        try:
            fields = json.loads(data)
        except (ValueError, RecursionError) as error:
            raise StreamContractError(f"the relay sent {kind!r} with invalid JSON: {error}") from error
        return self.from_fields(kind, fields)

    def from_fields(self, kind: str | None, fields: object) -> Event:
        """The event of decoded JSON ``fields`` (see ``decode``)."""
        try:
            return self._adapter.validate_python(fields)
        except ValidationError as error:
            strict = error
        cls = _EVENT_CLASSES.get(fields.get("type")) if isinstance(fields, dict) else None
        if cls is None or not isinstance(fields, dict):
            raise StreamContractError(f"the relay sent {kind!r}, not a deltaflow event: {strict}") from strict
        values: dict[str, Any] = {}
        for name, adapter in self._adapters(cls).items():
            field = cls.model_fields[name]
            if name not in fields:
                if field.is_required():
                    raise StreamContractError(
                        f"the relay sent {kind!r} without its {name!r}: not a deltaflow event"
                    ) from strict
                values[name] = field.get_default(call_default_factory=True)
                continue
            try:
                values[name] = adapter.validate_python(fields[name])
            except ValidationError:
                # off-type, as the provider sent it: the pipeline kept it so too
                values[name] = fields[name]
        return cast("Event", build(cls, values))

    def _adapters(self, cls: type[BaseEvent]) -> dict[str, TypeAdapter[Any]]:
        adapters = self._fields.get(cls)
        if adapters is None:
            adapters = {
                # with its validators (the lenient completion's): as pydantic validates the field
                name: TypeAdapter[Any](
                    cast(
                        "Any",
                        Annotated[(field.annotation, *field.metadata)]
                        if field.metadata
                        else field.annotation,
                    )
                )
                for name, field in cls.model_fields.items()
                if not field.exclude
            }
            self._fields[cls] = adapters
        return adapters


def _event_classes() -> dict[object, type[BaseEvent]]:
    members = get_args(get_args(Event)[0])
    return {cls.model_fields["type"].default: cls for cls in members}


_EVENT_CLASSES = _event_classes()
