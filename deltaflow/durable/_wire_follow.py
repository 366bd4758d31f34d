"""Durable streams in a front-end's wire format (the AI SDK's, AG-UI's): started, resumed, followed.

A stream started in such a format begins with one ``wire.start`` entry holding the ids its encoder
needs (the message id, AG-UI's thread and run ids), so that any instance, resuming it later,
encodes the same messages with the same ids. Resuming after an entry re-encodes the entries up
to it without sending them: the encoder's state (which parts are open) is rebuilt from the log,
and the reader gets exactly what follows.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from deltaflow._asgi import SSE_HEADERS, Message, Send, response_body
from deltaflow.errors import EventLogError, EventLogUnavailable, LeaseConflict
from deltaflow.wire._choice import encoder_for
from deltaflow.wire._encoder import WireEncoder, WireFormat, sse_data

from ._follow import Gap, Idle, follow_batches
from ._log import EventLog, Lease, LogEntry, parse_entry_id

__all__ = ["WIRE_START", "claim_conversation", "follow_in_wire", "start_in_wire"]

WIRE_START = "wire.start"
"""The kind of a front-end stream's first entry: its encoder's ids. deltaflow's own format skips it."""

_KEEP_ALIVE = b": keep-alive\n\n"


async def claim_conversation(log: EventLog, stream_id: str) -> Lease:
    """Claim ``stream_id`` for a conversation's next answer: a finished answer under it is replaced.

    The AI SDK and AG-UI name a stream by its chat (thread): each turn of the conversation is a new
    answer under the same id, while one still running keeps it (``LeaseConflict``).
    """
    try:
        return await log.claim(stream_id)
    except LeaseConflict:
        info = await log.info(stream_id)
        if info is None or not info.finished:
            raise
    # two instances replacing the same finished answer at once: the later claim fences the earlier
    await log.delete(stream_id)
    return await log.claim(stream_id)


async def start_in_wire(log: EventLog, lease: Lease, wire: WireFormat, body: Mapping[str, Any]) -> None:
    """Write the ``wire.start`` entry of a stream started by a front-end's request."""
    ids = {
        "format": wire,
        "messageId": f"msg-{lease.stream_id}-{lease.generation}",
        "threadId": body.get("threadId") if isinstance(body.get("threadId"), str) else lease.stream_id,
        "runId": body.get("runId") if isinstance(body.get("runId"), str) else f"run-{lease.generation}",
    }
    await log.append(lease, WIRE_START, json.dumps(ids, separators=(",", ":")))


async def follow_in_wire(
    log: EventLog,
    send: Send,
    *,
    stream_id: str,
    position: tuple[int, int],
    wire: WireFormat,
    idle: float,
    headers: list[tuple[bytes, bytes]],
) -> None:
    """Send the stream in ``wire``'s format from after ``position`` (its generation, sequence) to its end."""
    generation, after = position
    fallback = {"messageId": f"msg-{stream_id}-{generation}", "threadId": stream_id}
    encoder = _encoder(wire, fallback, None)
    response_headers = [*SSE_HEADERS, *encoder.headers, *headers]
    start: Message = {"type": "http.response.start", "status": 200, "headers": response_headers}
    await send(start)
    fresh = True
    try:
        async for batch in follow_batches(log, stream_id, (generation, 0), idle=idle):
            if isinstance(batch, Idle):
                await send(response_body(_KEEP_ALIVE))
                continue
            frames: list[bytes] = []
            for item in batch:
                sequence = item_sequence(item, stream_id)
                if fresh:
                    # the encoder of this answer, with the ids its first entry recorded
                    fresh = False
                    encoder = _encoder(wire, fallback, item)
                    opening = encoder.start()
                    if isinstance(item, LogEntry) and item.kind == WIRE_START:
                        if sequence > after:
                            frames.append(sse_data(opening, item.id))
                        continue
                    if after == 0:
                        frames.append(sse_data(opening))
                messages, trailer = _encode(encoder, item)
                if sequence > after:
                    frames.append(
                        sse_data(messages, item.id if isinstance(item, LogEntry) else None) + trailer
                    )
            if frames:
                await send(response_body(b"".join(frames)))
    except EventLogError as error:
        code = "unavailable" if isinstance(error, EventLogUnavailable) else "not_found"
        failure = {"ok": False, "outcome": "error", "error": {"code": code, "message": str(error)}}
        opening = encoder.start() if fresh else []
        await send(
            response_body(sse_data([*opening, *encoder.finish(failure)]) + encoder.trailer(), more=False)
        )
        return
    await send(response_body(b"", more=False))


def item_sequence(item: LogEntry | Gap, stream_id: str) -> int:
    """An entry's sequence number; a gap's is that of the entry after it."""
    entry_id = item.id if isinstance(item, LogEntry) else item.next_id
    return parse_entry_id(entry_id, stream_id=stream_id)[1]


def _encoder(wire: WireFormat, fallback: Mapping[str, Any], first: LogEntry | Gap | None) -> WireEncoder:
    ids = dict(fallback)
    if isinstance(first, LogEntry) and first.kind == WIRE_START:
        recorded = json.loads(first.data)
        if isinstance(recorded, dict):
            ids.update(recorded)
    encoder = encoder_for(wire, ids)
    if encoder is None:
        raise ValueError("deltaflow's own format has no encoder: it is sent as the log holds it")
    return encoder


def _encode(encoder: WireEncoder, item: LogEntry | Gap) -> tuple[list[dict[str, Any]], bytes]:
    """The messages of one entry, and the trailer when it is the terminal one."""
    if isinstance(item, Gap):
        message = f"{item.missing} events after {item.after} were trimmed from the log"
        return encoder.event("error", {"code": "events_trimmed", "message": message}), b""
    if item.terminal:
        return encoder.finish(json.loads(item.data)), encoder.trailer()
    return encoder.event(item.kind, json.loads(item.data)), b""
