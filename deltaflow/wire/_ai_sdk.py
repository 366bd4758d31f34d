"""deltaflow's events as the AI SDK's UI Message Stream (npm ``ai`` 7: ``useChat``, ``readUIMessageStream``).

Each message is one ``data: <JSON>`` server-sent event whose ``type`` is a UI message chunk of the
``ai`` package's ``uiMessageChunkSchema``; the stream ends with ``data: [DONE]`` and its response
carries ``x-vercel-ai-ui-message-stream: v1``.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Mapping
from typing import Any

from deltaflow.partial_json import JsonOp, apply_ops
from deltaflow.wire._encoder import GrowthGate, outcome_of

__all__ = ["AiSdkEncoder"]

_OUTSIDE_STEPS = ("usage", "completion.done", "error", "tool_calls.function.result")
"""Events that open no step: a tool loop's results come after the step whose calls they answer."""

_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "content_filter": "content-filter",
    "tool_calls": "tool-calls",
    "function_call": "tool-calls",
}


class AiSdkEncoder:
    """One stream's events as UI message chunks.

    Mapping: the stream is one assistant message (``start`` ... ``finish``); each completion in it
    (events of several, as a ``tool_loop``'s observers see them) is a step (``start-step`` ...
    ``finish-step``). Content is a text part, reasoning a reasoning part, each tool call a dynamic
    tool part whose input streams (``tool-input-start``/``-delta``) and then is available, parsed;
    a ``tool_loop``'s ``tool_calls.function.result`` (after its step) is the part's output:
    ``tool-output-available`` with the result (the JSON value when the text is JSON), or
    ``tool-output-error`` with the error's text;
    structured output is a ``data-partial-object`` part replaced as the value grows (on every
    change while the answer is short, then each time it grew by a quarter, so that its cost stays
    linear: ``GrowthGate``), then a ``data-object`` part with the validated value; a refusal is a
    ``data-refusal`` part; every ``error`` event is a ``data-deltaflow-error`` part, and a stream
    that fails ends with a ``data-deltaflow-failure`` part (the error's type, code and message) and
    an ``error`` chunk. A stopped stream ends with ``abort``. Usage and the
    provider's finish reason go in the message's metadata.

    A message may share containers with later ones: serialise each as it comes, as ``sse_data`` does.

    Tool-call ids are ``call-<step>-<choice>-<index>`` (a call's first fragment carries no provider
    id in deltaflow's events); the provider's id is in the part's ``toolMetadata``.

    Args:
        message_id: the assistant message's id (a resumed stream must send the same one).
    """

    def __init__(self, message_id: str | None = None) -> None:
        self.headers = [(b"x-vercel-ai-ui-message-stream", b"v1")]
        self._message_id = message_id or f"msg-{uuid.uuid4().hex}"
        self._step = 0
        self._in_step = False
        self._open: set[str] = set()
        self._tool_ids: dict[tuple[int, int], str] = {}
        # the finished step's calls: a tool loop's results come after their step
        self._ended_tool_ids: dict[tuple[int, int], str] = {}
        self._finish_reason: str | None = None
        self._usage: Any = None
        self._errors = 0
        self._parsed: dict[int, Any] = {}
        self._changed: set[int] = set()
        self._received: dict[int, int] = {}
        self._gate = GrowthGate()

    def start(self) -> list[dict[str, Any]]:
        """``start``, with the message id."""
        return [{"type": "start", "messageId": self._message_id}]

    def event(self, kind: str, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The chunks one deltaflow event makes."""
        out: list[dict[str, Any]] = []
        if kind not in _OUTSIDE_STEPS and not self._in_step:
            self._in_step = True
            self._step += 1
            out.append({"type": "start-step"})
        choice = data.get("choice_index", 0)
        if kind == "content.parsed.delta":
            # the ops of one chunk come after its content.delta: the value goes out once they all came
            value = data["value"]
            # its own copy of a container: the value grows it later, the caller's event stays as it was
            own = copy.deepcopy(value) if isinstance(value, (dict, list)) else value
            op = JsonOp(tuple(data["path"]), data["op"], own)
            self._parsed[choice] = apply_ops(self._parsed.get(choice), [op])
            self._changed.add(choice)
            return out
        out.extend(self._partial_objects(final=kind == "content.done"))
        if kind == "content.delta":
            self._received[choice] = self._received.get(choice, 0) + len(data["delta"])
            self._text("text", choice, data["delta"], out)
        elif kind == "content.done":
            self._end("text", choice, out)
            if data.get("parsed") is not None:
                out.append({"type": "data-object", "id": f"object-{choice}", "data": data["parsed"]})
        elif kind == "reasoning.delta":
            self._text("reasoning", choice, data["delta"], out)
        elif kind == "reasoning.done":
            self._end("reasoning", choice, out)
        elif kind == "tool_calls.function.arguments.delta":
            call_id = self._tool_id(choice, data["index"], data["name"], out)
            if data["arguments_delta"]:
                out.append(
                    {
                        "type": "tool-input-delta",
                        "toolCallId": call_id,
                        "inputTextDelta": data["arguments_delta"],
                    }
                )
        elif kind == "tool_calls.function.arguments.done":
            self._tool_done(choice, data, out)
        elif kind == "tool_calls.function.result":
            self._tool_result(choice, data, out)
        elif kind == "refusal.done":
            out.append({"type": "data-refusal", "id": f"refusal-{choice}", "data": data["refusal"]})
        elif kind == "choice.done":
            self._finish_reason = self._finish_reason or data["finish_reason"]
        elif kind == "usage":
            self._usage = data.get("usage")
        elif kind == "completion.done":
            out.extend(self._end_step())
        elif kind == "error":
            self._errors += 1
            error = {key: data.get(key) for key in ("code", "message", "choice_index")}
            out.append({"type": "data-deltaflow-error", "id": f"error-{self._errors}", "data": error})
        return out

    def finish(self, outcome: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``finish`` (after an ``error`` chunk when the stream failed), or ``abort`` when it was stopped."""
        out = [*self._partial_objects(final=True), *self._end_step()]
        ended = outcome_of(outcome)
        if ended == "aborted":
            return [*out, {"type": "abort", "reason": str(outcome.get("reason") or "stopped")}]
        metadata: dict[str, Any] = {"finishReason": self._finish_reason, "usage": self._usage}
        if ended == "error":
            error = outcome.get("error") or {}
            text = f"{error.get('code', 'error')}: {error.get('message', '')}".rstrip(": ")
            # the typed failure stays with the message (the error chunk only sets the chat's error)
            failure = {key: error.get(key) for key in ("type", "code", "message")}
            out.append({"type": "data-deltaflow-failure", "id": "failure", "data": failure})
            out.append({"type": "error", "errorText": text})
            return [*out, {"type": "finish", "finishReason": "error", "messageMetadata": metadata}]
        reason = _FINISH_REASONS.get(self._finish_reason or "", "other")
        return [*out, {"type": "finish", "finishReason": reason, "messageMetadata": metadata}]

    def trailer(self) -> bytes:
        """``data: [DONE]``."""
        return b"data: [DONE]\n\n"

    def _part_id(self, part: str, choice: int) -> str:
        return f"{part}-{self._step}-{choice}"

    def _partial_objects(self, *, final: bool = False) -> list[dict[str, Any]]:
        """The parsed values changed and due (``GrowthGate``), whole: a data part is replaced whole."""
        due = [
            choice
            for choice in sorted(self._changed)
            if final or self._gate.due(choice, self._received.get(choice, 0))
        ]
        self._changed.difference_update(due)
        part = "data-partial-object"
        return [{"type": part, "id": f"object-{choice}", "data": self._parsed[choice]} for choice in due]

    def _text(self, part: str, choice: int, delta: str, out: list[dict[str, Any]]) -> None:
        if not delta:  # the role chunk's empty content opens nothing: an answer may have no text
            return
        part_id = self._part_id(part, choice)
        if part_id not in self._open:
            self._open.add(part_id)
            out.append({"type": f"{part}-start", "id": part_id})
        out.append({"type": f"{part}-delta", "id": part_id, "delta": delta})

    def _end(self, part: str, choice: int, out: list[dict[str, Any]]) -> None:
        part_id = self._part_id(part, choice)
        if part_id in self._open:
            self._open.discard(part_id)
            out.append({"type": f"{part}-end", "id": part_id})

    def _tool_id(self, choice: int, index: int, name: str, out: list[dict[str, Any]]) -> str:
        call_id = self._tool_ids.get((choice, index))
        if call_id is None:
            call_id = self._tool_ids[(choice, index)] = f"call-{self._step}-{choice}-{index}"
            out.append({"type": "tool-input-start", "toolCallId": call_id, "toolName": name, "dynamic": True})
        return call_id

    def _tool_done(self, choice: int, data: Mapping[str, Any], out: list[dict[str, Any]]) -> None:
        call_id = self._tool_id(choice, data["index"], data["name"], out)
        tool_call = data.get("tool_call") or {}
        parsed = data.get("parsed_arguments")
        if parsed is None:
            parsed = (tool_call.get("function") or {}).get("parsed_arguments")
        available = {
            "type": "tool-input-available",
            "toolCallId": call_id,
            "toolName": data["name"],
            "input": parsed if parsed is not None else _loads_or_text(data["arguments"]),
            "dynamic": True,
        }
        if tool_call.get("id"):
            available["toolMetadata"] = {"toolCallId": tool_call["id"]}
        out.append(available)

    def _tool_result(self, choice: int, data: Mapping[str, Any], out: list[dict[str, Any]]) -> None:
        key = (choice, data["index"])
        call_id = self._tool_ids.get(key) or self._ended_tool_ids.get(key)
        if call_id is None:
            # its call's events were left out of the stream: the call's part comes first, its input
            # unknown (null), so that the client has a part to give the output to
            call_id = f"call-{data['tool_call_id']}"
            opened = {"toolCallId": call_id, "toolName": data["name"], "dynamic": True}
            out.append({"type": "tool-input-start", **opened})
            out.append({"type": "tool-input-available", **opened, "input": None})
        content = data["content"]
        if data.get("is_error"):
            error = content.removeprefix("Error: ")
            out.append(
                {"type": "tool-output-error", "toolCallId": call_id, "errorText": error, "dynamic": True}
            )
        else:
            output = _loads_or_text(content)
            out.append(
                {"type": "tool-output-available", "toolCallId": call_id, "output": output, "dynamic": True}
            )

    def _end_step(self) -> list[dict[str, Any]]:
        if not self._in_step:
            return []
        self._in_step = False
        out = [{"type": f"{part_id.partition('-')[0]}-end", "id": part_id} for part_id in sorted(self._open)]
        self._open.clear()
        self._ended_tool_ids = self._tool_ids
        self._tool_ids = {}
        return [*out, {"type": "finish-step"}]


def _loads_or_text(text: str) -> Any:
    """The JSON value of ``text``, else ``text``; never NaN or Infinity, which no JSON reader takes."""
    try:
        return json.loads(text, parse_constant=_no_constant)
    except ValueError:
        return text


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
