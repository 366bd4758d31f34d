"""Append-only containers that remember when each piece arrived.

Every piece is stamped with the sequence number of the chunk that brought it, so a snapshot "as of
chunk k" is a prefix found by bisection: appending stays O(len(piece)), and nothing is copied until
somebody reads a snapshot.
"""

from __future__ import annotations

from bisect import bisect_right
from typing import Generic, TypeVar

__all__ = ["History", "TextBuffer", "TrackedList"]

T = TypeVar("T")


class TextBuffer:
    """Text kept as its parts; joined on demand, with the last join cached."""

    __slots__ = ("_joined", "_joined_count", "created", "marks", "parts")

    def __init__(self, created: int) -> None:
        self.parts: list[str] = []
        self.marks: list[int] = []
        self.created = created
        self._joined = ""
        self._joined_count = 0

    def append(self, text: str, seq: int) -> int:
        """Add a part that arrived with chunk ``seq``; returns the new part count."""
        self.parts.append(text)
        self.marks.append(seq)
        return len(self.parts)

    def __len__(self) -> int:
        return len(self.parts)

    def text(self, count: int | None = None) -> str:
        """The text made of the first ``count`` parts (all of them by default)."""
        if count is None:
            count = len(self.parts)
        if count == self._joined_count:
            return self._joined
        if count > self._joined_count:
            # extend the cached prefix. Dropping our own reference first lets CPython grow the string
            # in place when no earlier snapshot is still held: reading every snapshot in order then
            # costs O(delta), not O(text), per read
            joined, self._joined = self._joined, ""
            joined += "".join(self.parts[self._joined_count : count])
            self._joined, self._joined_count = joined, count
            return joined
        return "".join(self.parts[:count])

    def count_at(self, seq: int) -> int:
        """How many parts had arrived by chunk ``seq``."""
        return bisect_right(self.marks, seq)

    def text_at(self, seq: int) -> str | None:
        """The text as of chunk ``seq``, or None if the buffer did not exist yet."""
        if seq < self.created:
            return None
        return self.text(self.count_at(seq))


class TrackedList(Generic[T]):
    """A list that only grows, remembering its length after each chunk."""

    __slots__ = ("created", "items", "lengths", "seqs")

    def __init__(self, created: int) -> None:
        self.items: list[T] = []
        self.seqs: list[int] = []
        self.lengths: list[int] = []
        self.created = created

    def extend(self, items: list[T], seq: int) -> int:
        """Add the items that arrived with chunk ``seq``; returns the new length."""
        self.items.extend(items)
        if self.seqs and self.seqs[-1] == seq:
            self.lengths[-1] = len(self.items)
        else:
            self.seqs.append(seq)
            self.lengths.append(len(self.items))
        return len(self.items)

    def prefix(self, length: int) -> list[T]:
        """A copy of the first ``length`` items."""
        return self.items[:length]

    def at(self, seq: int) -> list[T] | None:
        """The list as of chunk ``seq``, or None if it did not exist yet."""
        if seq < self.created:
            return None
        position = bisect_right(self.seqs, seq)
        return self.items[: self.lengths[position - 1]] if position else []


class History(Generic[T]):
    """A value that changes now and then; remembers each change with its chunk number."""

    __slots__ = ("seqs", "values")

    def __init__(self) -> None:
        self.seqs: list[int] = []
        self.values: list[T] = []

    def set(self, value: T, seq: int) -> None:
        """Record ``value`` as current from chunk ``seq`` on."""
        if self.seqs and self.seqs[-1] == seq:
            self.values[-1] = value
        else:
            self.seqs.append(seq)
            self.values.append(value)

    @property
    def current(self) -> T | None:
        """The latest value, or None if none was set."""
        return self.values[-1] if self.values else None

    def at(self, seq: int) -> T | None:
        """The value as of chunk ``seq``, or None if none was set yet."""
        position = bisect_right(self.seqs, seq)
        return self.values[position - 1] if position else None
