"""Front-end wire formats: what a growing structured answer costs each encoder, in bytes and time.

A structured answer (``SIZES`` of about 38, 78 and 157 KB of JSON, two long strings and an array of
short ones) is streamed 8 characters a chunk through ``ChatStream``; its events are serialised as the
plain relay serialises them for an encoder (``event_data``) and fed to the AI SDK and AG-UI encoders.
Printed per size: the value's bytes, the bytes the AI SDK's ``data-partial-object`` parts and AG-UI's
``STATE_DELTA`` patches take (a protocol resends a growing value whole; the encoders gate it
geometrically, so both grow linearly with the value), and the encoders' time per chunk. For
comparison, the bytes of the events serialised with ``content.delta``'s ``parsed`` (the value so far,
which the encoders do not read): quadratic.

Run: ``python -m benchmarks.bench_wire``
"""

from __future__ import annotations

import json
import time
from typing import Any

from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel, ConfigDict

import deltaflow
from deltaflow.replay import scripted_chunks
from deltaflow.wire import AgUiEncoder, AiSdkEncoder
from deltaflow.wire._choice import event_data

SIZES = (1, 2, 4)


class Anything(BaseModel):
    """Any object: the parsed value is the JSON as it is."""

    model_config = ConfigDict(extra="allow")


def answer(scale: int) -> dict[str, Any]:
    return {
        "title": "x" * 10_000 * scale,
        "items": [f"item {n}" for n in range(1500 * scale)],
        "body": "y" * 10_000 * scale,
    }


def measure(scale: int) -> dict[str, float]:
    value = answer(scale)
    chunks = [ChatCompletionChunk.model_validate(c) for c in scripted_chunks(json.dumps(value), chunk_size=8)]
    events = [
        event for event in deltaflow.ChatStream(chunks, response_format=Anything) if event.type != "chunk"
    ]
    with_parsed = sum(
        len(event.model_dump_json(exclude={"snapshot"})) for event in events if event.type == "content.delta"
    )
    datas = [(event.type, event_data(event)) for event in events]
    figures: dict[str, float] = {"value_bytes": len(json.dumps(value)), "chunks": len(chunks)}
    for name, encoder, kind in (
        ("ai_sdk", AiSdkEncoder(), "data-partial-object"),
        ("ag_ui", AgUiEncoder(), "STATE_DELTA"),
    ):
        started = time.perf_counter()
        messages = [json.dumps(message) for message in encoder.start()]
        for event_type, data in datas:
            messages += [json.dumps(message) for message in encoder.event(event_type, data)]
        elapsed = time.perf_counter() - started
        figures[f"{name}_bytes"] = sum(
            len(message) for message in messages if f'"type": "{kind}"' in message[:40]
        )
        figures[f"{name}_us_per_chunk"] = elapsed / len(chunks) * 1e6
    figures["deltas_with_parsed_bytes"] = with_parsed
    return figures


def main() -> None:
    for scale in SIZES:
        print(json.dumps({"scale": scale, **{key: round(value, 1) for key, value in measure(scale).items()}}))


if __name__ == "__main__":
    main()
