"""Raw Responses events from their JSON: openai's typed classes, and a typed home for unknown ones."""

from __future__ import annotations

import json
from typing import Any, get_args

from openai import BaseModel
from openai.types.responses import ResponseStreamEvent
from pydantic import ConfigDict

from deltaflow._openai_compat import construct
from deltaflow.responses._errors import ResponseContractError

__all__ = ["UnknownResponseEvent", "event_from_dict", "event_from_json"]


class UnknownResponseEvent(BaseModel):
    """An event of a type openai's SDK does not know (vLLM's ``response.reasoning_part.*``, a newer server's).

    Passed through typed, never dropped and never an error: ``type`` and ``sequence_number`` as sent,
    every other field kept as an attribute (pydantic's extras).
    """

    model_config = ConfigDict(extra="allow")

    type: str
    sequence_number: int | None = None


def _classes_by_type() -> dict[str, type[Any]]:
    union = get_args(ResponseStreamEvent)[0]
    classes: dict[str, type[Any]] = {}
    for cls in get_args(union):
        for literal in get_args(cls.model_fields["type"].annotation):
            classes[literal] = cls
    return classes


_CLASSES = _classes_by_type()


def event_from_dict(data: Any) -> Any:
    """One typed event from its decoded JSON, leniently as openai builds them (unknown fields kept).

    Raises:
        ResponseContractError: the JSON is not an object with a string ``type``.
    """
    if not isinstance(data, dict) or not isinstance(data.get("type"), str):
        raise ResponseContractError(f"not a Responses event: {str(data)[:200]}", event=data)
    cls = _CLASSES.get(data["type"])
    if cls is None:
        return UnknownResponseEvent.model_construct(**data)
    return construct(cls, data)


def event_from_json(text: str) -> Any:
    """One typed event from an SSE ``data`` line.

    Raises:
        ResponseContractError: the line is not JSON, or not a Responses event.
    """
    try:
        data = json.loads(text)
    except ValueError as error:
        raise ResponseContractError(f"an event that is not JSON: {text[:200]!r}", event=text) from error
    return event_from_dict(data)
