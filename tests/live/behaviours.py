"""Hostile server behaviours drawn by hypothesis: bad bytes, framing, JSON and chunk shapes, lying headers,
cuts, and stalls (silence, keep-alive comments or pings forever, a trickle of bytes).

Each behaviour is a ``Reply`` for ``HostileServer`` and what it must end in: ``any`` (chunks, or a typed
error carrying what arrived) or ``timeout`` (a stall: ``StreamTimeout`` within the idle timeout and a
bound). Stalls last at most ``STALL_SECONDS`` on the server's side, which stops by itself once the client
has gone.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass
from typing import Literal

from hypothesis import strategies as st

from tests.live.hostile import Reply, text_body
from tests.sse_mutations import hostile_bodies, reads_of

STALL_SECONDS = 20.0
"""How long a stall goes on at most, should the client never give up (a test failing, not hanging)."""


@dataclass
class Behaviour:
    """One drawn server behaviour and what a client must make of it."""

    name: str
    reply: Reply
    expect: Literal["any", "timeout"]


def _repeat(piece: bytes, every: float) -> list[bytes | float]:
    return [piece, every] * int(STALL_SECONDS / every)


STALLS = {
    "silence": lambda: ([], "hang"),
    "comments": lambda: (_repeat(b": OPENROUTER PROCESSING\n\n", 0.1), "cut"),
    "pings": lambda: (_repeat(b'event: ping\ndata: {"type": "ping"}\n\n', 0.1), "cut"),
    "ping payloads": lambda: (_repeat(b'data: {"type": "ping"}\n\n', 0.1), "cut"),
    "a byte at a time": lambda: (
        [piece for byte in b'data: {"id": "' + b"x" * 400 for piece in (bytes([byte]), 0.05)],
        "cut",
    ),
}


@st.composite
def stalls(draw: st.DrawFn) -> Behaviour:
    """Some events (or none), then a stall of a drawn kind."""
    before = draw(st.integers(min_value=0, max_value=3))
    kind = draw(st.sampled_from(sorted(STALLS)))
    pieces, end = STALLS[kind]()
    prefix = text_body("Hel", "lo", finish=False, done=False)[:before]
    return Behaviour(f"{kind} after {before} events", Reply([*prefix, *pieces], end=end), "timeout")


@st.composite
def bad_bodies(draw: st.DrawFn) -> Behaviour:
    """A valid body with one to three mutations (bytes, framing, JSON, chunk shapes), split at drawn points."""
    body, applied = draw(hostile_bodies(long_lines=False))
    cuts = draw(st.lists(st.integers(min_value=0), max_size=4))
    names = ", ".join(mutation.name for mutation in applied)
    return Behaviour(f"mutated: {names}", Reply(reads_of(body, cuts)), "any")


@st.composite
def lying_headers(draw: st.DrawFn) -> Behaviour:
    """Headers that do not describe the body: its length, type, encoding, or a cut connection."""
    body = b"".join(text_body("Hel", "lo"))
    at = draw(st.integers(min_value=0, max_value=len(body)))
    kind = draw(st.sampled_from(["short of content-length", "json type", "gzip garbage", "html", "cut"]))
    if kind == "short of content-length":
        reply = Reply([body[:at]], headers={"content-length": str(len(body))}, chunked=False, end="cut")
    elif kind == "json type":
        reply = Reply([body], headers={"content-type": "application/json"})
    elif kind == "gzip garbage":
        reply = Reply([body[:at], gzip.compress(body)[at:]], headers={"content-encoding": "gzip"})
    elif kind == "html":
        reply = Reply([b"<html><body>Bad gateway</body></html>"], headers={"content-type": "text/html"})
    else:
        reply = Reply([body[:at]], end="cut")
    return Behaviour(f"{kind} at {at}", reply, "any")


behaviours = st.one_of(stalls(), bad_bodies(), lying_headers())
"""Every drawn behaviour."""
