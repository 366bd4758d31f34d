"""Hypothesis strategies for hostile SSE bodies: valid chat-completion streams, then mutated.

Mutations: cut points, random bytes, invalid UTF-8, deep nesting, odd fields and events, long lines,
line endings. Shared by the in-memory and the over-HTTP fuzz tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import openai
from hypothesis import strategies as st

from deltaflow.errors import DeltaflowError

ALLOWED_ERRORS = (DeltaflowError, openai.LengthFinishReasonError, openai.ContentFilterFinishReasonError)
"""All that may escape a stream, whatever the bytes."""


def _chunk(choice: dict[str, Any], **extra: Any) -> bytes:
    payload = {
        "id": "chatcmpl-fuzz",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "finish_reason": None, "logprobs": None, **choice}],
        **extra,
    }
    return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"


@st.composite
def valid_bodies(draw: st.DrawFn) -> bytes:
    """An OpenAI-shaped stream: role, content parts (or a tool call), a finish reason, usage, [DONE]."""
    parts = draw(st.lists(st.text(max_size=12), min_size=1, max_size=6))
    events = [_chunk({"delta": {"role": "assistant", "content": ""}})]
    if draw(st.booleans()):
        events += [_chunk({"delta": {"content": part}}) for part in parts]
        finish = draw(st.sampled_from(["stop", "length", "content_filter", "stop"]))
    else:
        call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}
        events.append(_chunk({"delta": {"tool_calls": [call]}}))
        events += [
            _chunk({"delta": {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}})
            for part in parts
        ]
        finish = "tool_calls"
    events.append(_chunk({"delta": {}, "finish_reason": finish}))
    usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
    events.append(
        b'data: {"id":"chatcmpl-fuzz","object":"chat.completion.chunk","created":1,"model":"m",'
        b'"choices":[],"usage":' + json.dumps(usage).encode() + b"}\n\n"
    )
    events.append(b"data: [DONE]\n\n")
    return b"".join(events)


INSERTS = [
    b"\xff",
    b"\xc3",
    b"\xed\xa0\x80",
    b"\x00",
    b"\r",
    b"\n",
    b"\n\n",
    b": keep-alive\n\n",
    b": \xff\xfe\n\n",
    b'event: ping\ndata: {"type":"ping"}\n\n',
    b'event: error\ndata: {"error":{"message":"boom"}}\n\n',
    b"event: weird\ndata: {}\n\n",
    b"id: 7\nretry: 10\n",
    b"data:[DONE]\n\n",
    b"data: {}\n\n",
    b"data: []\n\n",
    b"data: null\n\n",
    b"data: 5\n\n",
    b'data: "text"\n\n',
    b'data: {"choices":"nope"}\n\n',
    b'data: {"choices":[{"index":"x","delta":5}]}\n\n',
    b'data: {"choices":[' + b"[" * 1000 + b"]" * 1000 + b"]}\n\n",
    b'data: {"choices":[],"x":' + b'{"a":' * 600 + b"1" + b"}" * 600 + b"}\n\n",
]


@dataclass
class Mutation:
    """One change to a body, kept for the failure report."""

    name: str
    apply: Callable[[bytes], bytes] = field(repr=False)


@st.composite
def mutations(draw: st.DrawFn, *, long_lines: bool = True) -> Mutation:
    """A single hostile change at a drawn position."""
    kind = draw(
        st.sampled_from(
            ["cut", "insert", "random", "flip", "nest", "long", "crlf"]
            if long_lines
            else ["cut", "insert", "random", "flip", "nest", "crlf"]
        )
    )
    at = draw(st.floats(min_value=0, max_value=1))

    def point(body: bytes) -> int:
        return int(at * len(body))

    if kind == "cut":
        return Mutation("cut", lambda body: body[: point(body)])
    if kind == "insert":
        insert = draw(st.sampled_from(INSERTS))
        return Mutation(
            f"insert {insert[:20]!r}", lambda body: body[: point(body)] + insert + body[point(body) :]
        )
    if kind == "random":
        noise = draw(st.binary(min_size=1, max_size=16))
        return Mutation(f"random {noise!r}", lambda body: body[: point(body)] + noise + body[point(body) :])
    if kind == "flip":
        bits = draw(st.integers(min_value=1, max_value=255))

        def flip(body: bytes) -> bytes:
            if not body:
                return body
            index = min(point(body), len(body) - 1)
            return body[:index] + bytes([body[index] ^ bits]) + body[index + 1 :]

        return Mutation(f"flip {bits}", flip)
    if kind == "nest":
        depth = draw(st.sampled_from([50, 500, 1000, 5000]))
        return Mutation(
            f"nest {depth}",
            lambda body: body.replace(
                b'"delta": {', b'"delta": {"n": ' + b"[" * depth + b"]" * depth + b", ", 1
            ),
        )
    if kind == "long":
        size = draw(st.sampled_from([10_000, 100_000, 300_000]))
        line = _chunk({"delta": {"content": "x" * size}})
        return Mutation(f"long {size}", lambda body: body[: point(body)] + line + body[point(body) :])
    return Mutation("crlf", lambda body: body.replace(b"\n", b"\r\n"))


@st.composite
def hostile_bodies(draw: st.DrawFn, *, long_lines: bool = True) -> tuple[bytes, list[Mutation]]:
    """A valid body with one to three mutations applied."""
    body = draw(valid_bodies())
    applied = draw(st.lists(mutations(long_lines=long_lines), min_size=1, max_size=3))
    for mutation in applied:
        body = mutation.apply(body)
    return body, applied


def reads_of(body: bytes, cuts: list[int]) -> list[bytes]:
    """The body split at the given points (as network reads)."""
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    return [
        body[start:end] for start, end in zip([0, *points], [*points, len(body)], strict=True) if end > start
    ]


def check_outcome(events: list[Any], error: BaseException | None) -> None:
    """Only typed errors escape; an error carries what arrived before it."""
    if error is None:
        return
    assert isinstance(error, ALLOWED_ERRORS), f"untyped {type(error).__name__}: {error!r}"
    if not isinstance(error, DeltaflowError) or not any(event.type == "chunk" for event in events):
        return
    completion = error.completion
    assert completion is not None, "the error lost the partial completion"
    deltas = "".join(
        event.delta for event in events if event.type == "content.delta" and event.choice_index == 0
    )
    by_index = {choice.index: choice for choice in completion.choices}
    if 0 in by_index:
        assert (by_index[0].message.content or "") == deltas
