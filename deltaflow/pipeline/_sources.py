"""Sources: anything that yields chunks becomes an ``Observable[ChatCompletionChunk]``.

reactivex has no async-iterable source (RxPY #422), so ``from_chunks`` brings one: it iterates on
the running event loop in a task, passes the iterator's own exceptions to ``on_error``, and cancels
the task on dispose, which closes the iterator (and with it an HTTP response).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from os import PathLike
from pathlib import Path
from typing import IO, Any, TypeVar

import openai
from openai.types.chat import ChatCompletionChunk
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.scheduler import CurrentThreadScheduler

from deltaflow.errors import StreamContractError
from deltaflow.pipeline._chunks import DONE, ChunkDecoder, chunk_from_dict
from deltaflow.pipeline._http import DEFAULT_IDLE_TIMEOUT, AsyncStreamChunks, StreamChunks
from deltaflow.pipeline._sse import DEFAULT_MAX_LINE

__all__ = [
    "achunks_from_sse",
    "chunks_from_jsonl",
    "chunks_from_sse",
    "from_async_iterable",
    "from_chunks",
    "from_iterable",
    "from_jsonl",
    "from_sse",
]

T = TypeVar("T")
Reads = bytes | str | Iterable[bytes] | AsyncIterable[bytes]


def from_iterable(items: Iterable[T]) -> Observable[T]:
    """Push the items of a sync iterable, stopping early on dispose; its exceptions go to on_error."""

    def subscribe(
        observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        disposed = False

        def dispose() -> None:
            nonlocal disposed
            disposed = True

        def run(_scheduler: abc.SchedulerBase, _state: Any = None) -> None:
            iterator = iter(items)
            try:
                for item in iterator:
                    if disposed:
                        return
                    observer.on_next(item)
                    if disposed:
                        # checked before pulling again: the next item may be long in coming
                        return
            except Exception as exc:  # noqa: BLE001 - the source's failure is the stream's error
                observer.on_error(exc)
                return
            finally:
                _close(iterator)
                if iterator is not items:
                    # an openai Stream's iterator is a generator over its own: closing that one
                    # alone leaves the HTTP response open until garbage collection
                    _close(items)
            if not disposed:
                observer.on_completed()

        # on the trampoline, as reactivex's own sources: the loop runs once the whole chain is
        # subscribed, so a downstream take(1) or dispose can stop it (and close an HTTP response)
        scheduled = CurrentThreadScheduler.singleton().schedule(run)
        return CompositeDisposable(scheduled, Disposable(dispose))

    return Observable(subscribe)


def from_async_iterable(items: AsyncIterable[T]) -> Observable[T]:
    """Push the items of an async iterable from a task on the running loop; dispose cancels it."""

    def subscribe(
        observer: abc.ObserverBase[T], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        started = False

        async def pump() -> None:
            nonlocal started
            started = True
            iterator = aiter(items)
            try:
                async for item in iterator:
                    observer.on_next(item)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the source's failure is the stream's error
                observer.on_error(exc)
                return
            finally:
                await _aclose(iterator)
            observer.on_completed()

        loop = asyncio.get_running_loop()
        task = loop.create_task(pump())

        closing: set[asyncio.Task[None]] = set()

        def cancel() -> None:
            task.cancel()
            if not started:
                # a task cancelled before it ran never reaches pump's finally: close the source here
                closer = loop.create_task(_aclose(items))
                closing.add(closer)  # held until done, so the task is not collected mid-way
                closer.add_done_callback(closing.discard)

        return Disposable(cancel)

    return Observable(subscribe)


def from_chunks(
    chunks: Iterable[ChatCompletionChunk] | AsyncIterable[ChatCompletionChunk],
    *,
    idle_timeout: float | None = DEFAULT_IDLE_TIMEOUT,
) -> Observable[Any]:
    """Chunks from a sync or async iterable: an openai ``Stream``/``AsyncStream``, a list, a generator.

    An openai ``Stream``/``AsyncStream`` is read under the rules of ``deltaflow.stream``: what its
    decoders let out raw (bytes that are not UTF-8, JSON or a chunk) ends in deltaflow's typed errors
    with the original as the cause, ``ping`` payloads are skipped, and ``idle_timeout`` seconds
    without a chunk end the stream with ``StreamTimeout`` (keep-alive comments and stray bytes do
    not count; a silence trips the response's read timeout, lowered to ``idle_timeout``). Other
    iterables are pushed as they are, their own exceptions passed on.

    Args:
        chunks: the chunks.
        idle_timeout: seconds without a chunk from an openai stream (None: no bound of ours).

    Example::

        deltaflow.from_chunks(client.chat.completions.create(..., stream=True)).pipe(ops.to_events())
    """
    if isinstance(chunks, openai.AsyncStream):
        return from_async_iterable(AsyncStreamChunks(chunks, idle_timeout=idle_timeout))
    if isinstance(chunks, openai.Stream):
        return from_iterable(StreamChunks(chunks, idle_timeout=idle_timeout))
    if isinstance(chunks, AsyncIterable):
        return from_async_iterable(chunks)
    return from_iterable(chunks)


def chunks_from_sse(
    reads: bytes | str | Iterable[bytes], *, max_line: int = DEFAULT_MAX_LINE
) -> Iterator[ChatCompletionChunk]:
    """Decode a raw SSE body (whole, or as reads of any size) into chunks, up to ``[DONE]``.

    Raises:
        StreamContractError: a line that is not UTF-8, longer than ``max_line`` bytes, or not a chunk.
        StreamInterrupted: the body ended in the middle of a line.
    """
    decoder = ChunkDecoder(max_line=max_line)
    for read in _as_reads(reads):
        yield from decoder.chunks(read)
        if decoder.done:
            return
    yield from decoder.finish()


async def achunks_from_sse(
    reads: AsyncIterable[bytes], *, max_line: int = DEFAULT_MAX_LINE
) -> AsyncIterator[ChatCompletionChunk]:
    """Decode an async stream of SSE reads into chunks, up to ``[DONE]`` (see ``chunks_from_sse``)."""
    decoder = ChunkDecoder(max_line=max_line)
    async for read in reads:
        for chunk in decoder.chunks(read):
            yield chunk
        if decoder.done:
            return
    for chunk in decoder.finish():
        yield chunk


def from_sse(reads: Reads, *, max_line: int = DEFAULT_MAX_LINE) -> Observable[Any]:
    """Chunks from a raw SSE body: bytes, or a sync or async iterable of byte reads.

    Args:
        reads: the body.
        max_line: the longest SSE line accepted, in bytes; longer is a ``StreamContractError``.
    """
    if isinstance(reads, AsyncIterable):
        return from_async_iterable(achunks_from_sse(reads, max_line=max_line))
    return from_iterable(chunks_from_sse(reads, max_line=max_line))


def chunks_from_jsonl(
    recording: str | PathLike[str] | IO[str] | Iterable[str],
) -> Iterator[ChatCompletionChunk]:
    """Chunks from a JSONL recording: one chunk JSON per line (blank lines skipped).

    ``recording`` is a path, an open text file, or an iterable of lines.
    """
    if isinstance(recording, str | PathLike):
        with Path(recording).open(encoding="utf-8") as file:
            yield from chunks_from_jsonl(file)
        return
    for number, line in enumerate(recording, start=1):
        text = line.strip()
        if not text:
            continue
        if text.startswith("data:"):
            text = text[5:].strip()
        if text == DONE:
            return
        try:
            payload = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise StreamContractError(f"recording line {number} is not JSON: {exc}") from exc
        if isinstance(payload, dict) and payload.get("type") == "chunk" and "chunk" in payload:
            # a recording of deltaflow events (sinks.jsonl): replay the chunks it carries
            payload = payload["chunk"]
        elif isinstance(payload, dict) and "type" in payload and "choices" not in payload:
            continue
        yield chunk_from_dict(payload)


def from_jsonl(recording: str | PathLike[str] | IO[str] | Iterable[str]) -> Observable[Any]:
    """Chunks from a JSONL recording (path, open file, or lines)."""
    return from_iterable(chunks_from_jsonl(recording))


def _as_reads(reads: bytes | str | Iterable[bytes]) -> Iterable[bytes]:
    if isinstance(reads, str):
        return (reads.encode("utf-8"),)
    if isinstance(reads, bytes | bytearray | memoryview):
        return (bytes(reads),)
    return reads


def _close(iterator: Iterable[Any]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


async def _aclose(iterator: Any) -> None:
    close = getattr(iterator, "aclose", None) or getattr(iterator, "close", None)
    if close is not None:
        with contextlib.suppress(Exception):
            result = close()
            if asyncio.iscoroutine(result):
                await result
