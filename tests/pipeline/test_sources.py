"""Sources: sync and async iterables, SSE bodies and JSONL recordings become chunk observables."""

from __future__ import annotations

import asyncio
import io
import json

import pytest

import deltaflow
from deltaflow.errors import ProviderError, StreamContractError, StreamInterrupted
from deltaflow.pipeline import chunks_from_jsonl, chunks_from_sse, from_async_iterable
from tests.chunks import text_stream


def _sse(chunks) -> bytes:
    return (
        b"".join(b"data: " + chunk.to_json(indent=None).encode() + b"\n\n" for chunk in chunks)
        + b"data: [DONE]\n\n"
    )


class TestSyncSources:
    def test_from_chunks_and_from_sse_agree(self) -> None:
        """The same stream as objects and as an SSE body gives the same chunks."""
        chunks = text_stream("a", "b")
        from_objects, from_body = [], []
        deltaflow.from_chunks(chunks).subscribe(from_objects.append)
        deltaflow.from_sse(_sse(chunks)).subscribe(from_body.append)
        assert [chunk.to_dict() for chunk in from_body] == [chunk.to_dict() for chunk in from_objects]

    def test_jsonl_lines_and_event_recordings(self) -> None:
        """JSONL recordings of raw chunks and of deltaflow chunk events both replay the chunks."""
        chunks = text_stream("x")
        raw = "\n".join(chunk.to_json(indent=None) for chunk in chunks)
        events = "\n".join(
            json.dumps({"type": "chunk", "chunk": chunk.to_dict(), "snapshot": {}}) for chunk in chunks
        )
        assert len(list(chunks_from_jsonl(io.StringIO(raw)))) == len(chunks)
        assert [c.to_dict() for c in chunks_from_jsonl(events.splitlines())] == [c.to_dict() for c in chunks]

    def test_malformed_data_is_a_typed_error(self) -> None:
        """A data line that is not JSON raises StreamContractError naming the payload."""
        with pytest.raises(StreamContractError, match="not JSON"):
            list(chunks_from_sse(b"data: {broken\n\n"))

    def test_error_payload_is_a_provider_error(self) -> None:
        """OpenRouter's chunk with a top-level error becomes ProviderError with the payload."""
        body = b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m","choices":[],'
        body += b'"error":{"code":400,"message":"Token limit reached"}}\n\n'
        with pytest.raises(ProviderError, match="Token limit reached") as raised:
            list(chunks_from_sse(body))
        assert raised.value.error["error"]["code"] == 400

    def test_dispose_stops_a_sync_source_and_closes_it(self) -> None:
        """Disposing from inside on_next stops the iteration and closes the generator."""
        closed = []

        def generate():
            try:
                yield from text_stream("a", "b", "c")
            finally:
                closed.append(True)

        seen = []
        subscription = None

        def on_next(chunk) -> None:
            seen.append(chunk)
            if len(seen) == 2 and subscription is not None:
                subscription.dispose()

        subscription = deltaflow.from_chunks(generate()).subscribe(on_next)
        assert closed == [True]


class TestAsyncSource:
    async def test_async_iterable_pushes_and_completes(self) -> None:
        """Chunks from an async generator arrive in order, then completion."""

        async def generate():
            for chunk in text_stream("a", "b"):
                yield chunk

        done = asyncio.Event()
        seen = []
        deltaflow.from_chunks(generate()).subscribe(seen.append, on_completed=done.set)
        await asyncio.wait_for(done.wait(), 5)
        assert len(seen) == len(text_stream("a", "b"))

    async def test_source_exception_goes_to_on_error(self) -> None:
        """An exception raised by the async iterator itself reaches on_error (not a silent dead task)."""

        async def generate():
            yield text_stream("a")[0]
            raise ConnectionResetError("peer reset")

        failed: asyncio.Future = asyncio.get_running_loop().create_future()
        from_async_iterable(generate()).subscribe(on_error=failed.set_result)
        error = await asyncio.wait_for(failed, 5)
        assert isinstance(error, ConnectionResetError)

    async def test_dispose_cancels_and_closes_the_source(self) -> None:
        """Disposing cancels the pump task, which closes the async generator."""
        closed = asyncio.Event()

        async def generate():
            try:
                while True:
                    yield text_stream("a")[0]
                    await asyncio.sleep(0.01)
            finally:
                closed.set()

        subscription = from_async_iterable(generate()).subscribe(lambda _: None)
        await asyncio.sleep(0.05)
        subscription.dispose()
        await asyncio.wait_for(closed.wait(), 5)
        assert closed.is_set()


class TestDisposal:
    def test_take_one_stops_pulling_a_sync_source(self) -> None:
        """A downstream take(1) disposes the source: it pulls no further and is closed."""
        from reactivex import operators as rx  # noqa: PLC0415

        pulled, closed = [], []

        def generate():
            try:
                for item in text_stream(*["w"] * 100):
                    pulled.append(item)
                    yield item
            finally:
                closed.append(True)

        seen = []
        deltaflow.from_chunks(generate()).pipe(rx.take(3)).subscribe(seen.append)
        assert len(seen) == 3
        assert len(pulled) <= 4
        assert closed == [True]

    async def test_dispose_before_the_task_runs_still_closes_the_source(self) -> None:
        """Disposing at once, before the pump task started, closes the async source anyway."""
        closed = asyncio.Event()

        class Source:
            def __aiter__(self):
                return self

            async def __anext__(self):
                raise StopAsyncIteration

            async def aclose(self) -> None:
                closed.set()

        from_async_iterable(Source()).subscribe(lambda _: None).dispose()
        await asyncio.wait_for(closed.wait(), 5)
        assert closed.is_set()


def test_a_broken_recording_line_names_its_number() -> None:
    """A JSONL line that is not JSON is a StreamContractError naming the line."""
    lines = [text_stream("a")[0].to_json(indent=None), "{not json"]
    with pytest.raises(StreamContractError, match="line 2"):
        list(chunks_from_jsonl(lines))


class TestHostileSSE:
    """chunks_from_sse in memory: the same verdicts the HTTP transports give."""

    def test_take_stops_before_pulling_again_and_closes_an_iterable_with_close(self) -> None:
        """An iterable whose iterator is a separate generator (openai's Stream) is closed itself on dispose."""
        from reactivex import operators as rx  # noqa: PLC0415

        class Response:
            """Like openai's Stream: ``__iter__`` wraps an inner generator; ``close()`` ends the response."""

            def __init__(self) -> None:
                self.pulled = 0
                self.closed = False

            def __iter__(self):
                for item in text_stream(*["w"] * 100):
                    self.pulled += 1
                    yield item

            def close(self) -> None:
                self.closed = True

        response = Response()
        seen = []
        deltaflow.from_chunks(response).pipe(rx.take(3)).subscribe(seen.append)
        assert len(seen) == 3
        assert response.pulled == 3
        assert response.closed

    def test_invalid_utf8_in_data_is_a_contract_error_in_a_comment_ignored(self) -> None:
        """Data must be UTF-8; comments are never decoded."""
        first = _sse(text_stream("a"))
        assert len(list(chunks_from_sse(b": \xff\xfe\n\n" + first))) == len(text_stream("a"))
        with pytest.raises(StreamContractError, match="not UTF-8"):
            list(chunks_from_sse(b'data: {"choices":["\xff"]}\n\n'))

    def test_ping_events_are_skipped(self) -> None:
        """``event: ping`` frames are keep-alives, whatever their data."""
        body = b'event: ping\ndata: {"type":"ping"}\n\n' + _sse(text_stream("a"))
        assert len(list(chunks_from_sse(body))) == len(text_stream("a"))

    @pytest.mark.parametrize("tail", [b"da", b'data: {"id":"x","cho', b": keep-al"])
    def test_a_body_cut_mid_line_is_interrupted(self, tail: bytes) -> None:
        """A body that ends inside a line that is not a whole event: StreamInterrupted."""
        body = _sse(text_stream("a")).removesuffix(b"data: [DONE]\n\n") + tail
        with pytest.raises(StreamInterrupted, match="middle of a line"):
            list(chunks_from_sse(body))

    def test_a_whole_last_event_without_its_newline_is_kept(self) -> None:
        """A last event complete but for its line end (``data: [DONE]`` at EOF) is no cut."""
        body = _sse(text_stream("a")).removesuffix(b"\n\n")
        assert len(list(chunks_from_sse(body))) == len(text_stream("a"))

    def test_choices_that_are_not_objects_are_a_contract_error(self) -> None:
        """``choices: [[...]]`` is rejected at the source, before any operator trips on it."""
        with pytest.raises(StreamContractError, match="no list of choices"):
            list(chunks_from_sse(b'data: {"choices":[[1]]}\n\n'))
