r"""Server-sent events decoding, incremental over arbitrary byte reads.

Follows the WHATWG event-stream rules that matter for chat completions: ``data:`` lines of one
event are joined with ``\n``; ``event:`` names the event; lines starting with ``:`` are comments
(OpenRouter sends ``: OPENROUTER PROCESSING`` keep-alives); ``\r\n``, ``\r`` and ``\n`` all end a
line. Lines are split on bytes before decoding, so a UTF-8 sequence cut across two network reads
is reassembled: newline bytes never occur inside a multi-byte sequence.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import NamedTuple

from deltaflow.errors import StreamContractError

__all__ = ["SSEDecoder", "ServerSentEvent", "aiter_sse", "iter_sse"]


class ServerSentEvent(NamedTuple):
    """One dispatched event: its ``event`` name (None when unnamed), ``data`` and ``id``.

    A NamedTuple: one is built per chunk on the hot path, and it is the cheapest immutable record.
    """

    data: str
    event: str | None = None
    id: str | None = None


class SSEDecoder:
    """Turns byte reads into events; feed it reads of any size, call ``flush`` at the end."""

    __slots__ = ("_buffer", "_buffered", "_data", "_event", "_id", "_pending_cr", "max_line")

    def __init__(self, *, max_line: int = 64 * 1024 * 1024) -> None:
        self.max_line = max_line
        """The longest line accepted, in bytes; longer is a ``StreamContractError``."""
        # an unfinished line kept as its pieces: joined once, when its end arrives
        self._buffer: list[bytes] = []
        self._buffered = 0
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._pending_cr = False

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Consume one read and return the events it completed."""
        if (
            # the common case over HTTP: a read that is exactly one `data:` event
            not self._buffer
            and not self._data
            and not self._pending_cr
            and self._event is None
            and data.startswith(b"data: ")
            and data.endswith(b"\n\n")
            and data.count(b"\n") == 2
            and b"\r" not in data
        ):
            return [ServerSentEvent(data[6:-2].decode("utf-8", errors="replace"), None, self._id)]
        if self._pending_cr and data.startswith(b"\n"):
            # a "\r\n" split across two reads: the "\r" already ended the line
            data = data[1:]
        self._pending_cr = data.endswith(b"\r")
        if b"\n" not in data and b"\r" not in data:
            # still inside one line (a multi-megabyte chunk): no copy until the line ends
            self._buffer.append(data)
            self._buffered += len(data)
            self._check_length()
            return []
        buffer = b"".join((*self._buffer, data)) if self._buffer else data
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, rest = buffer.split(b"\n")
        self._buffer = [rest] if rest else []
        self._buffered = len(rest)
        self._check_length()
        events: list[ServerSentEvent] = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _check_length(self) -> None:
        if self._buffered > self.max_line:
            size, self._buffer, self._buffered = self._buffered, [], 0
            raise StreamContractError(f"an SSE line longer than {self.max_line} bytes ({size} bytes so far)")

    def flush(self) -> list[ServerSentEvent]:
        """End of input: dispatch a last event that was not followed by a blank line."""
        events = self.feed(b"\n\n") if self._buffer or self._data else []
        self._pending_cr = False
        return events

    def _line(self, raw: bytes) -> ServerSentEvent | None:
        if not raw:
            return self._dispatch()
        line = raw.decode("utf-8", errors="replace")
        if line.startswith(":"):
            return None
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            self._id = value
        return None

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            # an event with no data lines is not dispatched, but its name does not leak onwards
            self._event = None
            return None
        event = ServerSentEvent(data="\n".join(self._data), event=self._event, id=self._id)
        self._data = []
        self._event = None
        return event


def iter_sse(reads: Iterable[bytes]) -> Iterator[ServerSentEvent]:
    """Decode an iterable of byte reads into events."""
    decoder = SSEDecoder()
    for read in reads:
        yield from decoder.feed(read)
    yield from decoder.flush()


async def aiter_sse(reads: AsyncIterable[bytes]) -> AsyncIterator[ServerSentEvent]:
    """Decode an async iterable of byte reads into events."""
    decoder = SSEDecoder()
    async for read in reads:
        for event in decoder.feed(read):
            yield event
    for event in decoder.flush():
        yield event
