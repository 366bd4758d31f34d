"""deltaflow's events as AG-UI events (``@ag-ui/client`` 1.0, ``ag-ui-protocol`` 1.0 on PyPI).

Each event is one ``data: <JSON>`` server-sent event with camelCase fields, as AG-UI's
``EventEncoder`` writes them; ``tests/frontends`` validates every one against ``ag_ui.core.Event``.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Mapping
from typing import Any

from deltaflow.partial_json import JsonOp, apply_ops
from deltaflow.wire._encoder import GrowthGate, outcome_of

__all__ = ["AgUiEncoder"]

_OUTSIDE_STEPS = ("usage", "completion.done", "error", "tool_calls.function.result")
"""Events that open no step: a tool loop's results come after the step whose calls they answer."""


class AgUiEncoder:
    """One stream's events as one AG-UI run.

    Mapping: ``RUN_STARTED`` ... ``RUN_FINISHED`` (``outcome`` ``cancelled`` when the stream was
    stopped, the provider's finish reason as ``result``, usage as ``usage``) or ``RUN_ERROR``; each
    completion in the stream is a step (``STEP_STARTED`` ... ``STEP_FINISHED``, ``completion-<n>``).
    Content is a ``TEXT_MESSAGE_*`` message, reasoning a ``REASONING_*`` message, each tool call
    ``TOOL_CALL_START``/``ARGS``/``END`` with the text message as parent (or, with no text before
    them, the message the completion's first call opens: one assistant message per completion).
    Structured output is the run's state: its partial value grows under ``/output`` by
    ``STATE_DELTA`` JSON patches (one per change of the parsed value), and a ``STATE_SNAPSHOT``
    carries the validated value at the end.
    ``error`` events and refusals are ``CUSTOM`` events (``deltaflow.error``, ``deltaflow.refusal``).

    A patch that extends a string replaces it whole (JSON Patch cannot append): on every change while
    the string is short, then each time it grew by a quarter (``GrowthGate``), so its cost stays
    linear; the strings held back go out before the snapshot and the run's end.

    A ``tool_loop``'s ``tool_calls.function.result`` (after its step) is ``TOOL_CALL_RESULT``, a
    tool message with the result text as sent to the model; an error result is also ``CUSTOM``
    ``deltaflow.tool_error`` (its code and the exception's type), since AG-UI's result has no flag.

    Tool-call ids are ``call-<run>-<step>-<choice>-<index>`` (unique in a thread: AG-UI's client
    finds a call, and puts its result, by id among all the thread's messages); the provider's id is
    ``CUSTOM`` ``deltaflow.tool_call`` after the call ends.

    Args:
        thread_id: the run's thread (AG-UI's ``threadId``).
        run_id: the run's id.
    """

    def __init__(self, thread_id: str | None = None, run_id: str | None = None) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self._thread_id = thread_id or uuid.uuid4().hex
        self._run_id = run_id or uuid.uuid4().hex
        self._step = 1
        self._in_step = False
        self._open: dict[str, str] = {}
        self._started: set[str] = set()
        self._tool_ids: dict[tuple[int, int], str] = {}
        # the finished step's calls: a tool loop's results come after their step
        self._ended_tool_ids: dict[tuple[int, int], str] = {}
        self._parsed: dict[int, Any] = {}
        # strings grown since their last patch, held back by the gate: (choice, path) -> JSON pointer
        self._held: dict[tuple[int, tuple[Any, ...]], str] = {}
        self._gate = GrowthGate()
        self._finish_reason: str | None = None
        self._usage: Any = None

    def start(self) -> list[dict[str, Any]]:
        """``RUN_STARTED``."""
        return [{"type": "RUN_STARTED", "threadId": self._thread_id, "runId": self._run_id}]

    def event(self, kind: str, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The AG-UI events one deltaflow event makes."""
        out: list[dict[str, Any]] = []
        if kind not in _OUTSIDE_STEPS and not self._in_step:
            self._in_step = True
            out.append({"type": "STEP_STARTED", "stepName": self._step_name()})
        choice = data.get("choice_index", 0)
        if kind == "content.delta":
            self._delta("TEXT_MESSAGE", self._id("text", choice), data["delta"], out)
        elif kind == "content.done":
            self._end("TEXT_MESSAGE", self._id("text", choice), out)
            out.extend(self._release(choice))
            if data.get("parsed") is not None:
                snapshot = {_output_key(choice): data["parsed"]}
                out.append({"type": "STATE_SNAPSHOT", "snapshot": snapshot})
        elif kind == "content.parsed.delta":
            out.extend(self._patch(choice, data))
        elif kind == "reasoning.delta":
            self._delta("REASONING_MESSAGE", self._id("reasoning", choice), data["delta"], out)
        elif kind == "reasoning.done":
            self._end("REASONING_MESSAGE", self._id("reasoning", choice), out)
        elif kind == "tool_calls.function.arguments.delta":
            call_id = self._tool_start(choice, data, out)
            if data["arguments_delta"]:
                out.append(
                    {"type": "TOOL_CALL_ARGS", "toolCallId": call_id, "delta": data["arguments_delta"]}
                )
        elif kind == "tool_calls.function.arguments.done":
            call_id = self._tool_start(choice, data, out)
            out.append({"type": "TOOL_CALL_END", "toolCallId": call_id})
            provider_id = (data.get("tool_call") or {}).get("id")
            value = {"toolCallId": call_id, "id": provider_id, "arguments": data["arguments"]}
            out.append({"type": "CUSTOM", "name": "deltaflow.tool_call", "value": value})
        elif kind == "tool_calls.function.result":
            out.extend(self._tool_result(choice, data))
        elif kind == "refusal.done":
            value = {"choiceIndex": choice, "refusal": data["refusal"]}
            out.append({"type": "CUSTOM", "name": "deltaflow.refusal", "value": value})
        elif kind == "choice.done":
            self._finish_reason = self._finish_reason or data["finish_reason"]
        elif kind == "usage":
            self._usage = data.get("usage")
        elif kind == "completion.done":
            out.extend(self._end_step())
            self._step += 1
            self._ended_tool_ids = self._tool_ids
            self._tool_ids = {}
            self._started.clear()
        elif kind == "error":
            value = {key: data.get(key) for key in ("code", "message", "choice_index")}
            out.append({"type": "CUSTOM", "name": "deltaflow.error", "value": value})
        return out

    def finish(self, outcome: Mapping[str, Any]) -> list[dict[str, Any]]:
        """``RUN_FINISHED``, or ``RUN_ERROR`` when the stream failed."""
        out = [*self._release(None), *self._end_step()]
        ended = outcome_of(outcome)
        usage = _token_usage(self._usage if self._usage is not None else outcome.get("usage"))
        if ended == "error":
            error = outcome.get("error") or {}
            failure: dict[str, Any] = {"type": "RUN_ERROR", "message": str(error.get("message") or "failed")}
            if error.get("code"):
                failure["code"] = str(error["code"])
            if usage:
                failure["usage"] = usage
            return [*out, failure]
        finished: dict[str, Any] = {
            "type": "RUN_FINISHED",
            "threadId": self._thread_id,
            "runId": self._run_id,
        }
        if ended == "aborted":
            finished["outcome"] = {"type": "cancelled"}
            finished["result"] = {"reason": outcome.get("reason")}
        else:
            finished["outcome"] = {"type": "success"}
            finished["result"] = {"finishReason": self._finish_reason}
        if usage:
            finished["usage"] = usage
        return [*out, finished]

    def trailer(self) -> bytes:
        """Nothing: AG-UI's run ends with its last event."""
        return b""

    def _step_name(self) -> str:
        return f"completion-{self._step}"

    def _end_step(self) -> list[dict[str, Any]]:
        out = self._close_open()
        if self._in_step:
            self._in_step = False
            out.append({"type": "STEP_FINISHED", "stepName": self._step_name()})
        return out

    def _id(self, part: str, choice: int) -> str:
        return f"{part}-{self._run_id}-{self._step}-{choice}"

    def _delta(self, family: str, message_id: str, delta: str, out: list[dict[str, Any]]) -> None:
        if not delta:  # AG-UI rejects an empty delta; the role chunk's empty content opens nothing
            return
        if message_id not in self._open:
            self._open[message_id] = family
            self._started.add(message_id)
            if family == "REASONING_MESSAGE":
                out.append({"type": "REASONING_START", "messageId": message_id})
                out.append({"type": "REASONING_MESSAGE_START", "messageId": message_id, "role": "reasoning"})
            else:
                out.append({"type": "TEXT_MESSAGE_START", "messageId": message_id, "role": "assistant"})
        out.append({"type": f"{family}_CONTENT", "messageId": message_id, "delta": delta})

    def _end(self, family: str, message_id: str, out: list[dict[str, Any]]) -> None:
        if self._open.pop(message_id, None) is not None:
            out.extend(_ends(family, message_id))

    def _close_open(self) -> list[dict[str, Any]]:
        out = [event for message_id, family in self._open.items() for event in _ends(family, message_id)]
        self._open.clear()
        return out

    def _tool_start(self, choice: int, data: Mapping[str, Any], out: list[dict[str, Any]]) -> str:
        key = (choice, data["index"])
        call_id = self._tool_ids.get(key)
        if call_id is None:
            call_id = self._tool_ids[key] = f"call-{self._run_id}-{self._step}-{choice}-{data['index']}"
            start = {"type": "TOOL_CALL_START", "toolCallId": call_id, "toolCallName": data["name"]}
            text_id = self._id("text", choice)
            # a completion's calls are one assistant message: the text's, else the one its first call made
            first = next((known for (other, _), known in self._tool_ids.items() if other == choice), call_id)
            if text_id in self._started:
                start["parentMessageId"] = text_id
            elif first != call_id:
                start["parentMessageId"] = first
            out.append(start)
        return call_id

    def _tool_result(self, choice: int, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        key = (choice, data["index"])
        call_id = self._tool_ids.get(key) or self._ended_tool_ids.get(key)
        out: list[dict[str, Any]] = []
        if call_id is None:
            # its call's events were left out of the stream: the call is opened and closed first, without
            # arguments, so that the client has a call to file the result under
            call_id = f"call-{self._run_id}-{data['tool_call_id']}"
            out.append({"type": "TOOL_CALL_START", "toolCallId": call_id, "toolCallName": data["name"]})
            out.append({"type": "TOOL_CALL_END", "toolCallId": call_id})
        result = {
            "type": "TOOL_CALL_RESULT",
            "messageId": f"result-{call_id}",
            "toolCallId": call_id,
            "content": data["content"],
            "role": "tool",
        }
        out.append(result)
        if data.get("is_error"):
            value = {"toolCallId": call_id, "code": data.get("error_code"), "type": data.get("error_type")}
            out.append({"type": "CUSTOM", "name": "deltaflow.tool_error", "value": value})
        return out

    def _patch(self, choice: int, data: Mapping[str, Any]) -> list[dict[str, Any]]:
        path = tuple(data["path"])
        op, value = data["op"], data["value"]
        # the document gets its own copy of a container: it grows it later, the caller's event stays as it was
        own = copy.deepcopy(value) if isinstance(value, (dict, list)) else value
        self._parsed[choice] = apply_ops(self._parsed.get(choice), [JsonOp(path, op, own)])
        pointer = "/" + "/".join(_escape(step) for step in (_output_key(choice), *path))
        if op == "append":
            current = self._value_at(choice, path)
            if not self._gate.due((choice, path), len(current)):
                self._held[(choice, path)] = pointer
                return []
            self._held.pop((choice, path), None)
            patch = {"op": "replace", "path": pointer, "value": current}
        elif op == "remove":
            patch = {"op": "remove", "path": pointer}
        else:
            patch = {"op": op, "path": pointer, "value": value}
        return [{"type": "STATE_DELTA", "delta": [patch]}]

    def _value_at(self, choice: int, path: tuple[Any, ...]) -> Any:
        current: Any = self._parsed[choice]
        for step in path:
            current = current[step]
        return current

    def _release(self, choice: int | None) -> list[dict[str, Any]]:
        """The held-back strings of ``choice`` (all when None), as they are now: the state is exact again."""
        held = [key for key in self._held if choice is None or key[0] == choice]
        if not held:
            return []
        patches = [
            {"op": "replace", "path": self._held.pop(key), "value": self._value_at(*key)} for key in held
        ]
        return [{"type": "STATE_DELTA", "delta": patches}]


def _ends(family: str, message_id: str) -> list[dict[str, Any]]:
    ends = [{"type": f"{family}_END", "messageId": message_id}]
    if family == "REASONING_MESSAGE":
        ends.append({"type": "REASONING_END", "messageId": message_id})
    return ends


def _output_key(choice: int) -> str:
    return "output" if choice == 0 else f"output_{choice}"


def _escape(step: object) -> str:
    return str(step).replace("~", "~0").replace("/", "~1")


def _token_usage(usage: Any) -> list[dict[str, Any]]:
    if not isinstance(usage, Mapping):
        return []
    details = usage.get("completion_tokens_details") or {}
    prompt_details = usage.get("prompt_tokens_details") or {}
    counts = {
        "inputTokens": usage.get("prompt_tokens"),
        "outputTokens": usage.get("completion_tokens"),
        "totalTokens": usage.get("total_tokens"),
        "reasoningTokens": details.get("reasoning_tokens"),
        "cachedInputTokens": prompt_details.get("cached_tokens"),
    }
    return [{key: value for key, value in counts.items() if isinstance(value, int) and value >= 0}]
