"""Loading recorded streams: raw ``.sse`` bodies and ``.jsonl`` chunk-per-line files."""

from __future__ import annotations

from pathlib import Path

from deltaflow.pipeline._sse import ServerSentEvent, SSEDecoder

from ._wire import DONE, Comment, ReplayItem

__all__ = ["load_recording", "parse_jsonl", "parse_sse"]


def parse_sse(body: bytes) -> tuple[ReplayItem, ...]:
    """Split a raw SSE body into events and comments, in the order they were recorded."""
    decoder = SSEDecoder()
    items: list[ReplayItem] = []
    for line in body.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n"):
        if line.startswith(b":"):
            # the decoder drops comments, but keep-alives are part of what a replay must reproduce
            items.append(Comment(line[1:].decode("utf-8", errors="replace")))
        else:
            items.extend(decoder.feed(line + b"\n"))
    items.extend(decoder.flush())
    return tuple(items)


def parse_jsonl(text: str) -> tuple[ReplayItem, ...]:
    """One ``data:`` event per non-blank line, then ``[DONE]`` (such files store neither)."""
    # split on "\n" only: str.splitlines() would also break on U+2028 inside JSON strings
    lines = (line.rstrip("\r") for line in text.split("\n"))
    return (*(ServerSentEvent(data=line) for line in lines if line.strip()), DONE)


def load_recording(path: str | Path) -> tuple[ReplayItem, ...]:
    """Read a ``.sse`` or ``.jsonl`` recording.

    Raises:
        ValueError: the file has another suffix.
    """
    path = Path(path)
    if path.suffix == ".sse":
        return parse_sse(path.read_bytes())
    if path.suffix == ".jsonl":
        return parse_jsonl(path.read_text(encoding="utf-8"))
    raise ValueError(f"unsupported recording {path.name!r}: expected a .sse or .jsonl file")
