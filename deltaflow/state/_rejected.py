"""A payload that is not a chunk any dialect understands: reported, skipped, never accumulated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["RejectedChunk"]


@dataclass(frozen=True, slots=True)
class RejectedChunk:
    """Stands in the chunk stream for a payload that could not be read.

    ``accumulate`` turns it into an ``error`` event (``code="chunk_unrecognized"``) carrying ``raw``,
    and the stream goes on: the snapshot is untouched.

    Attributes:
        raw: the payload as received.
        reason: why it was rejected.
    """

    raw: Any
    reason: str
