r"""Server-sent events decoding, incremental over arbitrary byte reads.

Follows the WHATWG event-stream rules that matter for chat completions: ``data:`` lines of one
event are joined with ``\n``; ``event:`` names the event; lines starting with ``:`` are comments
(OpenRouter sends ``: OPENROUTER PROCESSING`` keep-alives); ``\r\n``, ``\r`` and ``\n`` all end a
line. Lines are split on bytes before decoding, so a UTF-8 sequence cut across two network reads
is reassembled: newline bytes never occur inside a multi-byte sequence.

Hostile bodies get typed errors: a line that is not UTF-8 (comments aside, which are never decoded)
or longer than ``max_line`` raises ``StreamContractError``. A long line costs about its size once in
the buffer and once as text: it is decoded straight out of the buffer, never copied as bytes.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import NamedTuple

from deltaflow.errors import StreamContractError

__all__ = ["DEFAULT_MAX_LINE", "SSEDecoder", "ServerSentEvent", "aiter_sse", "iter_sse"]

DEFAULT_MAX_LINE = 64 * 1024 * 1024
"""The longest SSE line accepted by default, in bytes (a chunk carrying a large image, say)."""


class ServerSentEvent(NamedTuple):
    """One dispatched event: its ``event`` name (None when unnamed), ``data`` and ``id``.

    A NamedTuple: one is built per chunk on the hot path, and it is the cheapest immutable record.
    """

    data: str
    event: str | None = None
    id: str | None = None


class SSEDecoder:
    """Turns byte reads into events; feed it reads of any size, call ``flush`` at the end.

    Attributes:
        max_line: the longest line accepted, in bytes; longer is a ``StreamContractError``.
        ended_mid_line: set by ``flush`` when the body ended inside a line (no newline after it):
            a body cut short, unless what was left happens to be a whole event.
    """

    __slots__ = ("_buffer", "_data", "_event", "_id", "_pending_cr", "ended_mid_line", "max_line")

    def __init__(self, *, max_line: int = DEFAULT_MAX_LINE) -> None:
        if max_line < 1:
            raise ValueError(f"max_line must be positive, not {max_line}")
        self.max_line = max_line
        # an unfinished line: grown in place (no join of pieces, no copy when it ends)
        self._buffer = bytearray()
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._pending_cr = False
        self.ended_mid_line = False

    def feed(self, data: bytes) -> list[ServerSentEvent]:
        """Consume one read and return the events it completed.

        Raises:
            StreamContractError: a line is not UTF-8, or longer than ``max_line``.
        """
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
            try:
                return [ServerSentEvent(data[6:-2].decode(), None, self._id)]
            except UnicodeDecodeError as exc:
                raise _not_utf8(exc) from None
        if self._pending_cr and data.startswith(b"\n"):
            # a "\r\n" split across two reads: the "\r" already ended the line
            data = data[1:]
        self._pending_cr = data.endswith(b"\r")
        if b"\n" not in data and b"\r" not in data:
            # still inside one line (a multi-megabyte chunk): grow the buffer, nothing else
            self._buffer += data
            self._check_length(len(self._buffer))
            return []
        if self._buffer:
            self._buffer += data
            buffer: bytes | bytearray = self._buffer
        else:
            buffer = data
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        end = buffer.rindex(b"\n")
        events = self._lines(buffer, end)
        rest = len(buffer) - end - 1
        if buffer is self._buffer:
            del self._buffer[: end + 1]
        else:
            self._buffer = bytearray(buffer[end + 1 :]) if rest else bytearray()
        self._check_length(rest)
        return events

    def _lines(self, buffer: bytes | bytearray, end: int) -> list[ServerSentEvent]:
        """The events completed by the lines of ``buffer[:end]`` (each line ends with a newline)."""
        events: list[ServerSentEvent] = []
        start = 0
        max_line = self.max_line
        with memoryview(buffer) as view:
            while start <= end:
                stop = buffer.index(b"\n", start)
                if stop - start > max_line:
                    raise StreamContractError(
                        f"an SSE line longer than {max_line} bytes ({stop - start} bytes)"
                    )
                if stop == start:
                    event = self._dispatch()
                    if event is not None:
                        events.append(event)
                elif buffer.startswith(b"data: ", start, stop):
                    # the usual line, decoded straight from the buffer: a long one is never copied as bytes
                    self._data.append(_decode(view[start + 6 : stop]))
                elif buffer[start] != 0x3A:  # b":", a comment: never decoded, so never an error
                    self._field(_decode(view[start:stop]))
                start = stop + 1
        return events

    def _check_length(self, buffered: int) -> None:
        if buffered > self.max_line:
            self._buffer = bytearray()
            raise StreamContractError(
                f"an SSE line longer than {self.max_line} bytes ({buffered} bytes so far)"
            )

    def flush(self) -> list[ServerSentEvent]:
        """End of input: dispatch a last event that was not followed by a blank line."""
        self.ended_mid_line = bool(self._buffer)
        events = self.feed(b"\n\n") if self._buffer or self._data else []
        self._pending_cr = False
        return events

    def _field(self, line: str) -> None:
        field, sep, value = line.partition(":")
        if sep and value.startswith(" "):
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            self._id = value

    def _dispatch(self) -> ServerSentEvent | None:
        if not self._data:
            # an event with no data lines is not dispatched, but its name does not leak onwards
            self._event = None
            return None
        event = ServerSentEvent(data="\n".join(self._data), event=self._event, id=self._id)
        self._data = []
        self._event = None
        return event


def _decode(raw: memoryview) -> str:
    try:
        return str(raw, "utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc) from None


def _not_utf8(error: UnicodeDecodeError) -> StreamContractError:
    return StreamContractError(
        f"an SSE line is not UTF-8: byte {error.object[error.start : error.start + 1]!r} at {error.start}"
    )


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
