"""Responses-API streams of named servers, hand-made where no recording of theirs could be found.

Each builder says what it follows: the server's own source (Ollama), its maintainers' pasted streams (vLLM, in
``scripted.vllm_reasoning``) or its documentation (Groq, OpenRouter). The recorded ones (xAI, LM Studio) are
fetched files, not committed (MANIFEST.md, section "Other servers"); ``recorded`` reads them where they are.
"""

from __future__ import annotations

import json
from typing import Any

from deltaflow.pipeline import ServerSentEvent
from deltaflow.replay import Comment, ReplayItem, Scenario
from tests.responses.scripted import USAGE, numbered, recordings_folder, response


def recorded(name: str) -> list[dict[str, Any]] | None:
    """A recording of another server, ``<name>.events.jsonl`` beside the fetched recordings: one event per line,
    as recorded; None where it has not been fetched."""
    path = recordings_folder() / f"{name}.events.jsonl"
    if not path.is_file():
        return None
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _words(text: str) -> list[str]:
    """The text cut after each space, as token-by-token servers send it."""
    pieces = text.split(" ")
    return [piece + " " for piece in pieces[:-1]] + [pieces[-1]]


def _message_events(item_id: str, index: int, text: str, part: dict[str, Any]) -> list[dict[str, Any]]:
    """A message item with one text part, streamed word by word and closed as OpenAI closes it."""
    common = {"item_id": item_id, "output_index": index, "content_index": 0}
    item = {"id": item_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    done_part = {**part, "text": text}
    return [
        {"type": "response.output_item.added", "output_index": index, "item": item},
        {"type": "response.content_part.added", **common, "part": part},
        *(
            {"type": "response.output_text.delta", **common, "delta": piece, "logprobs": []}
            for piece in _words(text)
        ),
        {"type": "response.output_text.done", **common, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **common, "part": done_part},
        {
            "type": "response.output_item.done",
            "output_index": index,
            "item": {**item, "status": "completed", "content": [done_part]},
        },
    ]


OUTPUT_TEXT = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}


def ollama_reasoning(thinking: str, text: str) -> list[dict[str, Any]]:
    """Ollama's ``/v1/responses`` with thinking, as its converter writes it (ollama/ollama, MIT,
    ``openai/responses.go`` at 017eb8ae4895fc6aea58b62f3793baa478586b6d and fe9298a5bdc84f9351238b50e8e1427ba9e9c9b3,
    ``ResponsesStreamConverter``): the
    reasoning item's ``reasoning_summary_text.delta`` come with no ``reasoning_summary_part.added`` before them
    and no ``.part.done`` after, and its done item carries the thinking again as ``encrypted_content``."""
    reasoning_id, message_id = "rs_424242", "msg_ollama"
    summary = [{"type": "summary_text", "text": thinking}]
    finished = {"id": reasoning_id, "type": "reasoning", "summary": summary, "encrypted_content": thinking}
    common = {"item_id": reasoning_id, "output_index": 0, "summary_index": 0}
    message = _message_events(message_id, 1, text, dict(OUTPUT_TEXT))
    final_message = message[-1]["item"]
    events = [
        {"type": "response.created", "response": response(store=False)},
        {"type": "response.in_progress", "response": response(store=False)},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {"id": reasoning_id, "type": "reasoning", "summary": []},
        },
        *({"type": "response.reasoning_summary_text.delta", **common, "delta": p} for p in _words(thinking)),
        {"type": "response.reasoning_summary_text.done", **common, "text": thinking},
        {"type": "response.output_item.done", "output_index": 0, "item": finished},
        *message,
        {
            "type": "response.completed",
            "response": response("completed", [finished, final_message], usage=USAGE, store=False),
        },
    ]
    return numbered(events)


def ollama_text_then_tool_call(text: str, name: str, arguments: str) -> list[dict[str, Any]]:
    """Ollama when the model writes text and then calls a tool (same converter as ``ollama_reasoning``): the
    message item is opened and streamed but never closed (no ``output_text.done``, no ``output_item.done``),
    the function call takes the same ``output_index`` 0 (the index moves on only after reasoning), its arguments
    come in one delta, and ``response.completed`` lists only the function call, not the message."""
    message_id, call_id = "msg_ollama", "fc_424242_0"
    common = {"item_id": message_id, "output_index": 0, "content_index": 0}
    item = {"id": message_id, "type": "message", "status": "in_progress", "role": "assistant", "content": []}
    call = {"id": call_id, "type": "function_call", "call_id": "call_ollama", "name": name}
    finished = {**call, "status": "completed", "arguments": arguments}
    events = [
        {"type": "response.created", "response": response(store=False)},
        {"type": "response.in_progress", "response": response(store=False)},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.content_part.added", **common, "part": dict(OUTPUT_TEXT)},
        *(
            {"type": "response.output_text.delta", **common, "delta": piece, "logprobs": []}
            for piece in _words(text)
        ),
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**call, "status": "in_progress", "arguments": ""},
        },
        {
            "type": "response.function_call_arguments.delta",
            "item_id": call_id,
            "output_index": 0,
            "delta": arguments,
        },
        {
            "type": "response.function_call_arguments.done",
            "item_id": call_id,
            "output_index": 0,
            "arguments": arguments,
        },
        {"type": "response.output_item.done", "output_index": 0, "item": finished},
        {
            "type": "response.completed",
            "response": response("completed", [finished], usage=USAGE, store=False),
        },
    ]
    return numbered(events)


def vllm_call_without_arguments(name: str) -> list[dict[str, Any]]:
    """vLLM's simple streaming path for a call of a tool without parameters, after its own test
    (vllm-project/vllm, Apache-2.0, ``tests/entrypoints/openai/responses/test_streaming_events.py`` at
    0af939b5d9d62089b07a13b6560e51bfce27cd7c, ``test_arguments_done_emitted_without_deltas``):
    ``output_item.added``, ``function_call_arguments.done``, ``output_item.done``, no delta. The test pins the
    types only; the empty ``arguments`` string is this builder's reading of a call with no arguments."""
    call = {"id": "fc_vllm", "type": "function_call", "call_id": "call_vllm", "name": name, "arguments": ""}
    finished = {**call, "status": "completed"}
    events = [
        {"type": "response.created", "response": response()},
        {"type": "response.in_progress", "response": response()},
        {"type": "response.output_item.added", "output_index": 0, "item": {**call, "status": "in_progress"}},
        {
            "type": "response.function_call_arguments.done",
            "item_id": "fc_vllm",
            "output_index": 0,
            "arguments": "",
        },
        {"type": "response.output_item.done", "output_index": 0, "item": finished},
        {"type": "response.completed", "response": response("completed", [finished], usage=USAGE)},
    ]
    return numbered(events)


def groq_reasoning(reasoning: str, text: str) -> list[dict[str, Any]]:
    """Groq's gpt-oss models on ``/openai/v1/responses``, hand-made from its documentation
    (https://console.groq.com/docs/responses-api and https://console.groq.com/docs/reasoning: a ``reasoning``
    output item whose ``content`` holds ``reasoning_text``): ``reasoning_text.delta`` / ``.done`` with no
    ``content_part`` event around them, then the message. No recording of Groq's Responses stream was found."""
    reasoning_id = "rs_groq"
    common = {"item_id": reasoning_id, "output_index": 0, "content_index": 0}
    finished = {
        "id": reasoning_id,
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": reasoning}],
        "status": "completed",
    }
    message = _message_events("msg_groq", 1, text, dict(OUTPUT_TEXT))
    events = [
        {"type": "response.created", "response": response(model="openai/gpt-oss-20b")},
        {"type": "response.in_progress", "response": response(model="openai/gpt-oss-20b")},
        {
            "type": "response.output_item.added",
            "output_index": 0,
            "item": {**finished, "content": [], "status": "in_progress"},
        },
        *({"type": "response.reasoning_text.delta", **common, "delta": p} for p in _words(reasoning)),
        {"type": "response.reasoning_text.done", **common, "text": reasoning},
        {"type": "response.output_item.done", "output_index": 0, "item": finished},
        *message,
        {
            "type": "response.completed",
            "response": response(
                "completed", [finished, message[-1]["item"]], usage=USAGE, model="openai/gpt-oss-20b"
            ),
        },
    ]
    return numbered(events)


OPENROUTER_COMMENT = " OPENROUTER PROCESSING"


def openrouter_reasoning(reasoning: str, text: str) -> list[dict[str, Any]]:
    """OpenRouter's ``/api/v1/responses`` (beta), hand-made from its SDK's documented event models
    (https://openrouter.ai/docs/agent-sdk/typescript/models/openresponsesstreamevent,
    .../openresponsesreasoningdeltaevent, .../openresponsesstreameventresponsecontentpartadded): ``resp-`` ids,
    reasoning as ``reasoning_text.delta``, a text part of only ``type`` and ``text`` (no ``annotations``, no
    ``logprobs``), usage with OpenRouter's ``cost``. ``served_with_keepalives`` adds the ``: OPENROUTER
    PROCESSING`` comments its streams carry (https://openrouter.ai/docs/api-reference/streaming)."""
    reasoning_id, model = "rs-or-1", "openai/gpt-oss-120b"
    common = {"item_id": reasoning_id, "output_index": 0, "content_index": 0}
    finished = {
        "id": reasoning_id,
        "type": "reasoning",
        "summary": [],
        "content": [{"type": "reasoning_text", "text": reasoning}],
    }
    message = _message_events("msg-or-1", 1, text, {"type": "output_text", "text": ""})
    usage = {**USAGE, "cost": 0.00042}
    events = [
        {"type": "response.created", "response": response(id="resp-or-1", model=model)},
        {"type": "response.in_progress", "response": response(id="resp-or-1", model=model)},
        {"type": "response.output_item.added", "output_index": 0, "item": {**finished, "content": []}},
        *({"type": "response.reasoning_text.delta", **common, "delta": p} for p in _words(reasoning)),
        {"type": "response.reasoning_text.done", **common, "text": reasoning},
        {"type": "response.output_item.done", "output_index": 0, "item": finished},
        *message,
        {
            "type": "response.completed",
            "response": response(
                "completed", [finished, message[-1]["item"]], usage=usage, id="resp-or-1", model=model
            ),
        },
    ]
    return numbered(events)


def served_with_keepalives(events: list[dict[str, Any]], every: int = 3) -> Scenario:
    """The events with OpenRouter's ``: OPENROUTER PROCESSING`` comment first and after every ``every``-th."""
    items: list[ReplayItem] = [Comment(OPENROUTER_COMMENT)]
    for number, event in enumerate(events, start=1):
        items.append(ServerSentEvent(data=json.dumps(event, separators=(",", ":")), event=event["type"]))
        if number % every == 0:
            items.append(Comment(OPENROUTER_COMMENT))
    return Scenario(tuple(items))


def reidentified(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``events`` with ``response.completed`` naming every item by an id the stream never used, as litellm's
    proxy does (BerriAI/litellm#36375, "response.completed lists an item whose id never appeared")."""
    *streamed, completed = events
    output = [{**item, "id": f"{item['id']}_final"} for item in completed["response"]["output"]]
    return [*streamed, {**completed, "response": {**completed["response"], "output": output}}]
