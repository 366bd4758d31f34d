"""The normalisation steps several providers share; provider modules compose them.

Every step takes a chunk's JSON (already flagged by the fast path as needing work) and the
stream's state, rewrites the chunk in place into OpenAI's shape, and sets ``state.changed`` when
it did. A step that meets a payload it cannot read raises ``Unrecognized``.
"""

from __future__ import annotations

import math
from typing import Any

from deltaflow._shown import shown
from deltaflow.dialects._dialect import Step
from deltaflow.dialects._state import StreamState, Unrecognized

__all__ = [
    "REASONING_FIELD",
    "drop_delta_fields",
    "drop_empty_refusal",
    "fix_tool_calls",
    "integer_created",
    "lift_choice_usage",
    "move_reasoning",
    "one_role_per_choice",
    "release_usage_once",
    "repair_choices",
    "split_tool_call_finish",
]

REASONING_FIELD = "reasoning_content"
"""Where ``accumulate`` reads reasoning text (DeepSeek's spelling); other spellings move here."""


def repair_choices(chunk: dict[str, Any], state: StreamState) -> None:
    """Give every choice a ``delta`` and an ``index``.

    Azure OpenAI sends asynchronous content-filter chunks, after the content or even after the
    finish chunk, whose choice has ``content_filter_offsets`` / ``content_filter_results`` and no
    ``delta`` at all; openai's stream helper crashes on them. They become empty deltas, their filter
    results kept on the choice.
    """
    for position, choice in enumerate(chunk["choices"]):
        if choice.get("delta") is None:
            choice["delta"] = {}
            state.changed = True
        if choice.get("index") is None:
            choice["index"] = position
            state.changed = True


def lift_choice_usage(chunk: dict[str, Any], state: StreamState) -> None:
    """Move usage reported inside a choice to the chunk's top-level ``usage``.

    Moonshot / Kimi report ``choices[0].usage`` on the finish choice instead of a top-level
    ``usage``.
    """
    for choice in chunk["choices"]:
        if "usage" in choice:
            usage = choice.pop("usage")
            state.changed = True
            if usage is not None and chunk.get("usage") is None:
                chunk["usage"] = usage


def move_reasoning(*fields: str) -> Step:
    """A step moving reasoning text from the delta keys ``fields`` to ``delta.reasoning_content``.

    Groq, OpenRouter, Ollama and LM Studio stream reasoning as ``delta.reasoning``; vLLM moved from
    ``reasoning_content`` to ``reasoning`` and sends both for a while, with the same text.

    Args:
        fields: the delta keys holding reasoning text, in order.
    """

    def step(chunk: dict[str, Any], state: StreamState) -> None:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            for field in fields:
                if field not in delta:
                    continue
                value = delta.pop(field)
                state.changed = True
                if value is None:
                    continue
                if type(value) is not str:
                    raise Unrecognized(f"delta.{field} must be a string, got {shown(value)}")
                current = delta.get(REASONING_FIELD)
                if current is None:
                    delta[REASONING_FIELD] = value
                elif current != value:
                    delta[REASONING_FIELD] = current + value

    step.__name__ = "move_reasoning"
    step.__qualname__ = f"move_reasoning{fields!r}"
    return step


def drop_delta_fields(*fields: str) -> Step:
    """A step removing per-delta markers that have no place in the accumulated message.

    Mistral (model ``zai-glm-5-2``) repeats the choice index inside the delta (``delta.index``);
    Groq labels each gpt-oss delta with ``delta.channel: "analysis"``. Accumulated like other
    fields they would become ``message.index`` or ``"analysisanalysis..."``.

    Args:
        fields: the delta keys to drop.
    """

    def step(chunk: dict[str, Any], state: StreamState) -> None:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            for field in fields:
                if field in delta:
                    del delta[field]
                    state.changed = True

    step.__name__ = "drop_delta_fields"
    step.__qualname__ = f"drop_delta_fields{fields!r}"
    return step


def drop_empty_refusal(chunk: dict[str, Any], state: StreamState) -> None:
    """Drop ``delta.refusal: ""`` from a delta that carries content: that is no refusal.

    Snowflake Cortex sends ``"refusal": ""`` beside the content on every delta. Read as it is, it
    makes an empty ``refusal.delta`` event per chunk and a ``message.refusal`` of ``""``, which reads
    as "the model refused" to code that tests ``refusal is not None``. OpenAI opens a real refusal
    with ``"refusal": ""`` and ``"content": null``: that one stays.
    """
    for choice in chunk["choices"]:
        delta = choice["delta"]
        if delta.get("refusal") == "" and delta.get("content") is not None:
            del delta["refusal"]
            state.changed = True


def integer_created(chunk: dict[str, Any], state: StreamState) -> None:
    """Make a fractional ``created`` the whole seconds OpenAI sends.

    SambaNova sends ``"created": 1759360491.2774205``; openai's models type it ``int``, and pydantic
    warns on every dump of a completion that carries the float.
    """
    created = chunk.get("created")
    if type(created) is float and math.isfinite(created):
        chunk["created"] = int(created)
        state.changed = True


def one_role_per_choice(chunk: dict[str, Any], state: StreamState) -> None:
    """Send ``delta.role`` on a choice's first delta, and only there, as OpenAI does.

    OpenRouter, Z.ai GLM, Gemini and Perplexity repeat ``role: "assistant"`` in every delta
    (openai's helper concatenates them into ``"assistantassistant..."``); GLM on Mistral sends no
    role at all (openai's helper leaves ``message.role`` None).
    """
    for choice in chunk["choices"]:
        delta = choice["delta"]
        index = choice["index"]
        if index not in state.roles:
            state.roles.add(index)
            if delta.get("role") is None:
                delta["role"] = "assistant"
                state.changed = True
        elif delta.get("role") is not None:
            del delta["role"]
            state.changed = True


def fix_tool_calls(chunk: dict[str, Any], state: StreamState) -> None:
    """Give tool-call fragments OpenAI's dense ``index`` and keep id / name / type on the first only.

    See ``ToolCalls`` for the shapes handled: no ``index`` (Gemini, Mistral, old Ollama), indexes
    starting at 1 or sparse or reused (gateways and relays), ``"id": ""`` (Qwen) or ``"name": ""``
    (LM Studio, GLM on Mistral) on continuations, no ``type`` (Mistral), arguments as an object.
    """
    for choice in chunk["choices"]:
        delta = choice["delta"]
        calls = delta.get("tool_calls")
        if calls is None:
            continue
        if not isinstance(calls, list):
            raise Unrecognized(f"delta.tool_calls must be a list, got {shown(calls)}")
        if not calls:
            # "tool_calls": [] on every delta (Groq through some gateways) means no call
            del delta["tool_calls"]
            state.changed = True
            continue
        tracker = state.tool_calls(choice["index"])
        for fragment in calls:
            if not isinstance(fragment, dict):
                raise Unrecognized(f"a tool-call fragment must be an object, got {shown(fragment)}")
            if tracker.resolve(fragment):
                state.changed = True


def release_usage_once(chunk: dict[str, Any], state: StreamState) -> None:
    """Let usage through once per stream, never twice.

    Perplexity (and vLLM with ``continuous_usage_stats``) send cumulative ``usage`` on every chunk:
    usage on a chunk whose choices are all still open is held back, the latest figures replacing
    the earlier ones, and released once, on a usage-only chunk when the stream ends. Usage on a
    finish chunk (DeepSeek, Mistral, Z.ai, Groq) or on a usage-only chunk (OpenAI, Qwen, xAI) goes
    through as it is; the same figures sent again are dropped.
    """
    usage = chunk.get("usage")
    if usage is None:
        return
    choices = chunk["choices"]
    if choices and not any(choice.get("finish_reason") for choice in choices):
        state.held_usage = usage
        del chunk["usage"]
        state.changed = True
        return
    state.held_usage = None
    if state.sent_usage is not None and usage == state.sent_usage:
        del chunk["usage"]
        state.changed = True
        return
    state.sent_usage = usage


def split_tool_call_finish(chunk: dict[str, Any], state: StreamState) -> None:
    """Move a ``finish_reason`` that arrives with tool calls to a chunk of its own, right after.

    Groq, xAI, Mistral, Ollama and GLM send a whole tool call in one chunk, Mistral together with
    ``finish_reason: "tool_calls"`` and the usage. openai's event logic closes a tool call when the
    next one starts or when a later chunk finishes the choice, so a call that arrives with the
    finish would never get its ``tool_calls.function.arguments.done`` event. Run after
    ``release_usage_once``: the usage moves with the finish.
    """
    finishes: list[dict[str, Any]] = []
    for choice in chunk["choices"]:
        finish_reason = choice.get("finish_reason")
        if finish_reason and choice["delta"].get("tool_calls"):
            finishes.append({"index": choice["index"], "delta": {}, "finish_reason": finish_reason})
            choice["finish_reason"] = None
    if not finishes:
        return
    fields: dict[str, Any] = {}
    if chunk.get("usage") is not None:
        fields["usage"] = chunk.pop("usage")
    if chunk.get("system_fingerprint") is not None:
        fields["system_fingerprint"] = chunk["system_fingerprint"]
    state.after.append(state.new_chunk(finishes, **fields))
    state.changed = True
