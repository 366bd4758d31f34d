"""The front-ends' request bodies (the AI SDK's UI messages, AG-UI's ``RunAgentInput``) as chat messages.

Each is validated with bounds (lengths, counts) before anything is read from it; a body that does
not validate raises a ``ValueError`` naming the fields at fault (never echoing their values), which
the endpoints answer 422.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeAlias, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["ag_ui_request", "ai_sdk_request"]

_Body = TypeVar("_Body", bound=BaseModel)
_MAX_MESSAGES = 1000
_MAX_PARTS = 1000
_Id: TypeAlias = Annotated[str, Field(min_length=1, max_length=256)]
_Text: TypeAlias = Annotated[str, Field(max_length=1 << 20)]


def _validate(model: type[_Body], body: Mapping[str, Any], what: str) -> _Body:
    try:
        return model.model_validate(body)
    except ValidationError as error:
        faults = [
            f"{'.'.join(map(str, fault['loc'])) or 'body'}: {fault['msg']}" for fault in error.errors()[:5]
        ]
        raise ValueError(f"not {what}: {'; '.join(faults)}") from None


class _Lenient(BaseModel):
    """Fields deltaflow does not read are kept out of the way, not refused (the protocols grow)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class _UIPart(_Lenient):
    type: Annotated[str, Field(min_length=1, max_length=256)]
    text: _Text | None = None
    url: _Text | None = None
    media_type: Annotated[str | None, Field(alias="mediaType", max_length=256)] = None
    tool_name: Annotated[str | None, Field(alias="toolName", max_length=256)] = None
    tool_call_id: Annotated[str | None, Field(alias="toolCallId", max_length=256)] = None
    state: Annotated[str | None, Field(max_length=64)] = None
    input: Any = None
    output: Any = None
    error_text: Annotated[str | None, Field(alias="errorText", max_length=1 << 20)] = None


class _UIMessage(_Lenient):
    id: Annotated[str, Field(max_length=256)] = ""
    role: Literal["system", "user", "assistant"]
    parts: Annotated[list[_UIPart], Field(max_length=_MAX_PARTS)]


class _AiSdkBody(_Lenient):
    id: _Id
    messages: Annotated[list[_UIMessage], Field(max_length=_MAX_MESSAGES)]
    trigger: Annotated[str | None, Field(max_length=64)] = None
    message_id: Annotated[str | None, Field(alias="messageId", max_length=256)] = None


def ai_sdk_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """An AI SDK chat request (``DefaultChatTransport``'s POST body) with its UI messages as chat messages.

    The body comes back with ``messages`` replaced by OpenAI chat messages and everything else
    as it was (``id`` is the chat's id). Text parts become content, image files ``image_url``
    parts, tool parts an assistant ``tool_calls`` entry followed by a ``tool`` message with the
    output or the error; reasoning, steps, sources and data parts are the front-end's own.

    Raises:
        ValueError: the body is not an AI SDK chat request.
    """
    request = _validate(_AiSdkBody, body, "an AI SDK chat request")
    messages: list[dict[str, Any]] = []
    for message in request.messages:
        messages.extend(_ui_message(message))
    return {**body, "messages": messages}


def _ui_message(message: _UIMessage) -> list[dict[str, Any]]:
    texts = [part.text or "" for part in message.parts if part.type == "text"]
    if message.role == "system":
        return [{"role": "system", "content": "".join(texts)}]
    if message.role == "user":
        images = [
            {"type": "image_url", "image_url": {"url": part.url}}
            for part in message.parts
            if part.type == "file" and part.url and (part.media_type or "").startswith("image/")
        ]
        if not images:
            return [{"role": "user", "content": "".join(texts)}]
        return [{"role": "user", "content": [*({"type": "text", "text": text} for text in texts), *images]}]
    tools = [part for part in message.parts if _is_tool(part) and part.state != "input-streaming"]
    assistant: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if tools:
        assistant["tool_calls"] = [
            {
                "id": part.tool_call_id,
                "type": "function",
                "function": {"name": _tool_name(part), "arguments": json.dumps(part.input)},
            }
            for part in tools
        ]
    results = [
        {"role": "tool", "tool_call_id": part.tool_call_id, "content": _tool_output(part)}
        for part in tools
        if part.state in ("output-available", "output-error")
    ]
    return [assistant, *results]


def _is_tool(part: _UIPart) -> bool:
    if part.type != "dynamic-tool" and not part.type.startswith("tool-"):
        return False
    if not part.tool_call_id:
        raise ValueError(f"a {part.type!r} part needs its toolCallId")
    return True


def _tool_name(part: _UIPart) -> str:
    name = part.tool_name if part.type == "dynamic-tool" else part.type.removeprefix("tool-")
    if not name:
        raise ValueError("a dynamic-tool part needs its toolName")
    return name


def _tool_output(part: _UIPart) -> str:
    if part.state == "output-error":
        return f"Error: {part.error_text or 'the tool failed'}"
    return part.output if isinstance(part.output, str) else json.dumps(part.output)


class _AgUiTextPart(_Lenient):
    type: Literal["text"]
    text: _Text


class _AgUiToolFunction(_Lenient):
    name: _Id
    arguments: _Text


class _AgUiToolCall(_Lenient):
    id: _Id
    type: Literal["function"] = "function"
    function: _AgUiToolFunction


class _AgUiMessage(_Lenient):
    id: Annotated[str, Field(max_length=256)] = ""
    role: Literal["developer", "system", "user", "assistant", "tool", "reasoning", "activity"]
    content: _Text | Annotated[list[_AgUiTextPart], Field(max_length=_MAX_PARTS)] | Any = None
    tool_calls: Annotated[list[_AgUiToolCall] | None, Field(alias="toolCalls", max_length=256)] = None
    tool_call_id: Annotated[str | None, Field(alias="toolCallId", max_length=256)] = None


class _AgUiBody(_Lenient):
    thread_id: Annotated[str, Field(alias="threadId", min_length=1, max_length=256)]
    run_id: Annotated[str, Field(alias="runId", min_length=1, max_length=256)]
    messages: Annotated[list[_AgUiMessage], Field(max_length=_MAX_MESSAGES)]


def ag_ui_request(body: Mapping[str, Any]) -> dict[str, Any]:
    """An AG-UI ``RunAgentInput`` (``HttpAgent``'s POST body) with its messages as chat messages.

    The body comes back with ``messages`` replaced by OpenAI chat messages and everything else
    (``threadId``, ``runId``, ``state``, ``tools``, ``context``, ``forwardedProps``) as it was.
    Developer, system, user, assistant (with ``toolCalls``) and tool messages map one to one;
    reasoning and activity messages are the front-end's own and are left out. Content must be a
    string or text parts.

    Raises:
        ValueError: the body is not a ``RunAgentInput``.
    """
    request = _validate(_AgUiBody, body, "an AG-UI RunAgentInput")
    messages = [converted for message in request.messages if (converted := _ag_ui_message(message))]
    return {**body, "messages": messages}


def _ag_ui_message(message: _AgUiMessage) -> dict[str, Any] | None:
    if message.role in ("reasoning", "activity"):
        return None
    content = _ag_ui_text(message.content)
    if message.role == "tool":
        if not message.tool_call_id:
            raise ValueError("a tool message needs its toolCallId")
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": content or ""}
    if message.role != "assistant":
        return {"role": message.role, "content": content or ""}
    assistant: dict[str, Any] = {"role": "assistant", "content": content}
    if message.tool_calls:
        assistant["tool_calls"] = [
            call.model_dump(include={"id", "type", "function"}) for call in message.tool_calls
        ]
    return assistant


def _ag_ui_text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(part, _AgUiTextPart) for part in content):
        return "".join(part.text for part in content)
    raise ValueError("message content: a string or a list of text parts")
