"""Responses-API event streams for tests: built by script, OpenAI-conformant unless a test bends them.

Each builder returns the events' JSON objects (dicts), numbered by ``sequence_number`` as OpenAI numbers
them; ``served`` wraps them as a replay scenario, each event named by its type as OpenAI sends it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import openai

from deltaflow import responses
from deltaflow.pipeline import ServerSentEvent
from deltaflow.replay import Scenario

SHARED = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "responses-api"
"""Where the shared fixtures keep the recordings from public repositories (MANIFEST.md beside them)."""
FETCHED = Path(__file__).parent / "recordings_fetched"
"""The same recordings fetched beside the tests, kept out of git; used when the shared folder lacks them."""


def response(status: str = "in_progress", output: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    """A response object as ``response.created`` / ``response.completed`` carry it."""
    return {
        "id": "resp_test_1",
        "object": "response",
        "created_at": 1767225600,
        "status": status,
        "model": "replay-1",
        "output": output if output is not None else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "error": None,
        "incomplete_details": None,
        "usage": None,
        **extra,
    }


def _pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


USAGE = {
    "input_tokens": 11,
    "input_tokens_details": {"cached_tokens": 2},
    "output_tokens": 7,
    "output_tokens_details": {"reasoning_tokens": 3},
    "total_tokens": 18,
}


def scripted(
    text: str | None = "Hello world",
    *,
    reasoning: str | None = None,
    calls: Sequence[tuple[str, str]] = (),
    refusal: str | None = None,
    chunk_size: int = 4,
    end: str = "completed",
    incomplete_reason: str = "max_output_tokens",
) -> list[dict[str, Any]]:
    """An answer: optional reasoning summary, text (or a refusal), function calls ``(name, arguments)``."""
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": response()},
        {"type": "response.in_progress", "response": response()},
    ]
    output: list[dict[str, Any]] = []
    if reasoning is not None:
        index = len(output)
        item = {"id": "rs_1", "type": "reasoning", "summary": []}
        events.append({"type": "response.output_item.added", "output_index": index, "item": item})
        part = {"type": "summary_text", "text": ""}
        common = {"item_id": "rs_1", "output_index": index, "summary_index": 0}
        events.append({"type": "response.reasoning_summary_part.added", **common, "part": part})
        events.extend(
            {"type": "response.reasoning_summary_text.delta", **common, "delta": piece}
            for piece in _pieces(reasoning, chunk_size)
        )
        events.append({"type": "response.reasoning_summary_text.done", **common, "text": reasoning})
        done_part = {"type": "summary_text", "text": reasoning}
        events.append({"type": "response.reasoning_summary_part.done", **common, "part": done_part})
        finished = {**item, "summary": [done_part]}
        events.append({"type": "response.output_item.done", "output_index": index, "item": finished})
        output.append(finished)
    if text is not None or refusal is not None:
        index = len(output)
        item = {"id": "msg_1", "type": "message", "role": "assistant", "status": "in_progress", "content": []}
        events.append({"type": "response.output_item.added", "output_index": index, "item": item})
        common = {"item_id": "msg_1", "output_index": index, "content_index": 0}
        if refusal is not None:
            part: dict[str, Any] = {"type": "refusal", "refusal": ""}
            events.append({"type": "response.content_part.added", **common, "part": part})
            events.extend(
                {"type": "response.refusal.delta", **common, "delta": piece}
                for piece in _pieces(refusal, chunk_size)
            )
            events.append({"type": "response.refusal.done", **common, "refusal": refusal})
            part = {"type": "refusal", "refusal": refusal}
        else:
            assert text is not None
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            events.append({"type": "response.content_part.added", **common, "part": part})
            events.extend(
                {"type": "response.output_text.delta", **common, "delta": piece, "logprobs": []}
                for piece in _pieces(text, chunk_size)
            )
            events.append({"type": "response.output_text.done", **common, "text": text, "logprobs": []})
            part = {**part, "text": text}
        events.append({"type": "response.content_part.done", **common, "part": part})
        finished = {**item, "status": "completed", "content": [part]}
        events.append({"type": "response.output_item.done", "output_index": index, "item": finished})
        output.append(finished)
    for number, (name, arguments) in enumerate(calls):
        index = len(output)
        item = {
            "id": f"fc_{number}",
            "type": "function_call",
            "status": "in_progress",
            "arguments": "",
            "call_id": f"call_{number}",
            "name": name,
        }
        events.append({"type": "response.output_item.added", "output_index": index, "item": item})
        common = {"item_id": f"fc_{number}", "output_index": index}
        events.extend(
            {"type": "response.function_call_arguments.delta", **common, "delta": piece}
            for piece in _pieces(arguments, chunk_size)
        )
        events.append({"type": "response.function_call_arguments.done", **common, "arguments": arguments})
        finished = {**item, "status": "completed", "arguments": arguments}
        events.append({"type": "response.output_item.done", "output_index": index, "item": finished})
        output.append(finished)
    if end == "completed":
        events.append({"type": "response.completed", "response": response("completed", output, usage=USAGE)})
    elif end == "incomplete":
        details = {"reason": incomplete_reason}
        final = response("incomplete", output, usage=USAGE, incomplete_details=details)
        events.append({"type": "response.incomplete", "response": final})
    elif end == "failed":
        error = {"code": "server_error", "message": "The model crashed."}
        events.append({"type": "response.failed", "response": response("failed", output, error=error)})
    return numbered(events)


def numbered(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The events with ``sequence_number`` 0, 1, 2... as OpenAI numbers them."""
    return [{**event, "sequence_number": number} for number, event in enumerate(events)]


def served(events: Iterable[dict[str, Any]], **options: Any) -> Scenario:
    """The events as the replay server sends them: ``event: <type>`` and ``data: <json>``, no ``[DONE]``."""
    items = tuple(
        ServerSentEvent(data=json.dumps(event, separators=(",", ":")), event=event.get("type"))
        for event in events
    )
    return Scenario(items, **options)


def recordings_folder() -> Path:
    """The shared fixtures' folder of fetched recordings where it exists, else the local gitignored copy."""
    return SHARED if SHARED.is_dir() else FETCHED


def fetched() -> dict[str, list[dict[str, Any]]]:
    """The fetched recordings that are whole JSON lines, by name (none when they are absent)."""
    recordings: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(recordings_folder().glob("*.chunks.txt")):
        try:
            events = [
                json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
            ]
        except ValueError:
            continue  # pretty-printed across lines: not a chunk-per-line recording
        recordings[path.name.removesuffix(".chunks.txt")] = events
    return recordings


def vllm_reasoning(reasoning: str, text: str) -> list[dict[str, Any]]:
    """vLLM's shape, hand-made after vllm-project/vllm#24938 and #35184 (their pasted streams): a reasoning item
    with ``response.reasoning_part.added/.done`` (types openai's SDK does not have) around ``reasoning_text``
    deltas whose ``content_index`` counts up with every delta, then the message as OpenAI sends it."""
    answer = scripted(text)
    reasoning_item = {"id": "rs_vllm", "type": "reasoning", "summary": [], "content": []}
    common = {"item_id": "rs_vllm", "output_index": 0}
    pieces = _pieces(reasoning, 5)
    events = [
        answer[0],
        answer[1],
        {"type": "response.output_item.added", "output_index": 0, "item": reasoning_item},
        {
            "type": "response.reasoning_part.added",
            **common,
            "content_index": 0,
            "part": {"type": "reasoning_text", "text": ""},
        },
        *(
            {"type": "response.reasoning_text.delta", **common, "content_index": number, "delta": piece}
            for number, piece in enumerate(pieces)
        ),
        {"type": "response.reasoning_text.done", **common, "content_index": len(pieces), "text": reasoning},
        {
            "type": "response.reasoning_part.done",
            **common,
            "content_index": 0,
            "part": {"type": "reasoning_text", "text": reasoning},
        },
    ]
    finished = {**reasoning_item, "content": [{"type": "reasoning_text", "text": reasoning}]}
    events.append({"type": "response.output_item.done", "output_index": 0, "item": finished})
    # the message moves to output index 1
    for event in answer[2:]:
        moved = {**event}
        if "output_index" in moved:
            moved["output_index"] = 1
        if moved["type"] == "response.completed":
            moved["response"] = {**moved["response"], "output": [finished, *moved["response"]["output"]]}
        events.append(moved)
    return numbered(events)


def openai_helper(
    client: openai.OpenAI, model: str, **params: Any
) -> tuple[list[Any], Any, BaseException | None]:
    """What openai's ``client.responses.stream()`` gives for ``model``: its events, final response and failure."""
    events: list[Any] = []
    try:
        with client.responses.stream(model=model, input="hi", **params) as stream:
            events.extend(stream)
            return events, stream.get_final_response(), None
    except Exception as error:  # what openai's helper does is part of the comparison
        return events, None, error


def dumped(events: list[Any]) -> list[Any]:
    """Events as JSON values, for a comparison field for field."""
    return [event.model_dump(mode="json", warnings=False) for event in events]


def comparable(ours: list[Any], theirs: list[Any]) -> tuple[list[Any], list[Any]]:
    """Both dumped; for a type openai's SDK does not know (vLLM's ``reasoning_part.*``), which it builds as
    some other class with that class's fields set to None, the fields it made up are left out of its side."""
    mine, expected = dumped(ours), dumped(theirs)
    for index, event in enumerate(ours):
        if isinstance(event, responses.UnknownResponseEvent) and index < len(expected):
            expected[index] = {k: v for k, v in expected[index].items() if k in mine[index] or v is not None}
    return mine, expected
