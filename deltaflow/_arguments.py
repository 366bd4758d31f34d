"""What callers hand to ``stream``, ``astream``, ``ChatStream`` and ``tool_loop``: checked before any request.

A wrong client or a malformed ``tools`` / ``response_format`` otherwise fails deep inside openai's
client or deltaflow's operators (an ``AttributeError`` on an internal), or worse, after a request
was sent and left open. Each check here raises a ``TypeError`` that says what was expected and how
to fix the call, and rejects at least what openai's ``client.chat.completions.stream`` rejects.
"""

from __future__ import annotations

import inspect
import reprlib
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import openai
from openai.resources.chat import AsyncCompletions, Completions
from pydantic import BaseModel

__all__ = ["check_client", "check_tool_functions", "checked_stream_arguments"]

_RESPONSE_FORMAT_TYPES = ("text", "json_object", "json_schema")


def check_client(client: object, *, asynchronous: bool, caller: str, instead: str) -> None:
    """Raise ``TypeError`` unless ``client`` is the kind of openai client ``caller`` drives.

    Args:
        client: what the caller passed as the client.
        asynchronous: ``caller`` needs an ``openai.AsyncOpenAI`` (else an ``openai.OpenAI``).
        caller: the function's name as users write it (``deltaflow.stream``).
        instead: how to call its twin, for the other kind of client (``async with deltaflow.astream(...)``).
    """
    wanted = "openai.AsyncOpenAI" if asynchronous else "openai.OpenAI"
    kind = _client_kind(client)
    if kind == ("sync" if asynchronous else "async"):
        raise TypeError(
            f"{caller} needs {wanted} but got {'a sync' if asynchronous else 'an async'} client "
            f"({_type_name(client)}): use `{instead}` for it, or pass {wanted}(...)"
        )
    if kind is not None:
        return
    if isinstance(client, str):
        raise TypeError(
            f"{caller} takes the client first, then keywords; got the string {_short(client)}: "
            f"{caller}({wanted}(), model=..., messages=[...])"
        )
    if inspect.isclass(client):
        raise TypeError(f"{caller} needs a client instance, got the class {client.__name__}: pass {wanted}()")
    raise TypeError(
        f"{caller} needs {wanted} (or a client with .chat.completions and .base_url), got {_describe(client)}"
    )


def checked_stream_arguments(
    tools: Iterable[Mapping[str, Any]] | None, response_format: object
) -> list[Mapping[str, Any]] | None:
    """Check a stream's ``tools`` and ``response_format``; the tools as a list (an iterator is read once).

    Raises:
        TypeError: ``tools`` is not a list of tool dicts, or ``response_format`` is neither a type
            to parse into nor a ``response_format`` dict.
    """
    _check_response_format(response_format)
    return _checked_tools(tools)


def check_tool_functions(tools: object, *, caller: str) -> None:
    """Raise ``TypeError`` unless ``tools`` maps tool names to what ``tool_loop`` runs."""
    if isinstance(tools, Mapping):
        for name in tools:
            if not isinstance(name, str) or not name:
                raise TypeError(f"{caller}: tool names must be non-empty strings, got {_describe(name)}")
        return
    example = "{'get_weather': get_weather}"
    if isinstance(tools, Iterable) and not isinstance(tools, (str, bytes)):
        names = [getattr(tool, "__name__", None) for tool in tools]
        if names and all(isinstance(name, str) for name in names):
            example = "{" + ", ".join(f"{name!r}: {name}" for name in names) + "}"
    raise TypeError(
        f"{caller} takes tools as a mapping of tool name to function (or to (Model, function)), "
        f"got {_describe(tools)}: {caller}(client, messages, {example}, model=...)"
    )


def _client_kind(client: object) -> Literal["sync", "async", "other"] | None:
    """Which kind of openai client ``client`` is; ``other`` for a look-alike, None for no client."""
    if isinstance(client, openai.AsyncOpenAI):
        return "async"
    if isinstance(client, openai.OpenAI):
        return "sync"
    if inspect.isclass(client) or not hasattr(client, "base_url"):
        return None
    # a wrapper that does not subclass openai's clients: judged by its completions resource
    completions = getattr(getattr(client, "chat", None), "completions", None)
    if isinstance(completions, AsyncCompletions):
        return "async"
    if isinstance(completions, Completions):
        return "sync"
    return None if completions is None else "other"


def _check_response_format(response_format: object) -> None:
    if response_format is None or isinstance(response_format, Mapping) or inspect.isclass(response_format):
        return
    if isinstance(response_format, BaseModel):
        name = type(response_format).__name__
        raise TypeError(f"response_format takes the model class, not an instance: response_format={name}")
    if isinstance(response_format, str):
        kind = response_format if response_format in _RESPONSE_FORMAT_TYPES else "json_object"
        raise TypeError(
            f"response_format is a pydantic model class or a dict, not the string {_short(response_format)}: "
            f"response_format={{'type': {kind!r}}}"
        )
    raise TypeError(
        "response_format must be a pydantic model class, a dataclass or a response_format dict, "
        f"got {_describe(response_format)}"
    )


def _checked_tools(tools: Iterable[Mapping[str, Any]] | None) -> list[Mapping[str, Any]] | None:
    if tools is None:
        return None
    if isinstance(tools, Mapping):
        raise TypeError(
            f"tools is a list of tools, got one mapping: wrap it in a list, tools=[{_short(tools)}]"
        )
    if isinstance(tools, (str, bytes)) or not isinstance(tools, Iterable):
        raise TypeError(f"tools must be a list of tool dicts, got {_describe(tools)}")
    listed = list(tools)
    for index, tool in enumerate(listed):
        _check_tool(index, tool)
    return listed


def _check_tool(index: int, tool: object) -> None:
    where = f"tools[{index}]"
    if inspect.isclass(tool) and issubclass(tool, BaseModel):
        raise TypeError(
            f"{where} is the pydantic model {tool.__name__}, not a tool: "
            f"pass openai.pydantic_function_tool({tool.__name__})"
        )
    if not isinstance(tool, Mapping):
        hint = ""
        if callable(tool):
            hint = (
                ": describe its arguments with a pydantic model, openai.pydantic_function_tool(Model), "
                "or let deltaflow.recipes.tool_loop call functions for you"
            )
        raise TypeError(f"{where} must be a tool dict, got {_describe(tool)}{hint}")
    kind = tool.get("type")
    if not isinstance(kind, str):
        hint = ""
        if "name" in tool:
            hint = ": a function's definition goes inside {'type': 'function', 'function': {...}}"
        raise TypeError(f"{where} needs a string 'type' ('function'), got {_short(tool)}{hint}")
    if kind == "function":
        function = tool.get("function")
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            raise TypeError(
                f"{where} is a function tool without a function name, got {_short(tool)}: "
                "{'type': 'function', 'function': {'name': ..., 'parameters': {...}}}"
            )


def _describe(value: object) -> str:
    return f"{_type_name(value)} {_short(value)}"


def _type_name(value: object) -> str:
    kind = type(value)
    return kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _short(value: object) -> str:
    # the caller's own value, whose repr may be long or even fail
    try:
        return reprlib.repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real error
        return f"<{type(value).__name__} object>"
