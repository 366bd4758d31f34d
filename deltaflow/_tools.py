"""Reading the ``tools`` and ``response_format`` request parameters the way openai's helper does."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any, cast

from openai.lib._tools import PydanticFunctionTool
from pydantic import BaseModel, TypeAdapter

__all__ = [
    "ToolSpec",
    "has_json_content",
    "has_parseable_input",
    "is_rich_response_format",
    "tool_specs",
    "validate_content",
]


class ToolSpec:
    """What deltaflow needs to know of one function tool: whether and how to parse its arguments."""

    __slots__ = ("model", "name", "strict")

    def __init__(self, name: str, *, strict: bool, model: type[BaseModel] | None) -> None:
        self.name = name
        self.strict = strict
        self.model = model

    @property
    def parseable(self) -> bool:
        """Openai parses arguments of strict tools and pydantic tools (which are strict)."""
        return self.strict or self.model is not None


def tool_specs(tools: Iterable[Mapping[str, Any]] | None) -> dict[str, ToolSpec]:
    """Index the function tools of a request by name."""
    specs: dict[str, ToolSpec] = {}
    for tool in tools or ():
        if tool.get("type") != "function":
            continue
        function = tool.get("function")
        if not isinstance(function, Mapping):
            continue
        model = function.model if isinstance(function, PydanticFunctionTool) else None
        name = str(function.get("name", ""))
        # openai's first match by name wins
        specs.setdefault(name, ToolSpec(name, strict=bool(function.get("strict")), model=model))
    return specs


def is_rich_response_format(response_format: object) -> bool:
    """A type to validate into (a pydantic model, a dataclass...), as opposed to a request dict."""
    return response_format is not None and inspect.isclass(response_format)


def has_parseable_input(response_format: object, specs: Mapping[str, ToolSpec]) -> bool:
    """Openai raises on length / content_filter finishes only when something was to be parsed."""
    return is_rich_response_format(response_format) or any(spec.parseable for spec in specs.values())


def has_json_content(response_format: object) -> bool:
    """Content is JSON to parse: a model type, or a ``json_schema`` request dict."""
    if is_rich_response_format(response_format):
        return True
    return isinstance(response_format, Mapping) and response_format.get("type") == "json_schema"


def validate_content(response_format: object, content: str) -> Any:
    """Validate finished content into the response format, as openai's ``maybe_parse_content``."""
    if isinstance(response_format, type) and issubclass(response_format, BaseModel):
        return response_format.model_validate_json(content)
    return TypeAdapter(cast(Any, response_format)).validate_json(content)
