"""ChatStream and AsyncChatStream: the facade users drive."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from reactivex import Observer

from deltaflow import AsyncChatStream, ChatStream
from deltaflow.errors import StreamContractError
from deltaflow.events import BaseEvent
from tests.chunks import text_stream


def listen_from_hello(
    stream: ChatStream[Any] | AsyncChatStream[Any], event: BaseEvent, seen: list[str]
) -> None:
    """At the chunk event of the "hello" chunk, before its content.delta, start collecting deltas."""
    if event.type == "chunk" and event.chunk.choices and event.chunk.choices[0].delta.content == "hello":
        stream.on("content.delta", lambda delta: seen.append(delta.delta))


class TestChatStream:
    def test_on_with_fields_positionally_and_with_the_event(self) -> None:
        """A two-parameter callback gets (delta, snapshot); a one-parameter one gets the event."""
        pairs, dones = [], []
        stream = ChatStream(text_stream("Hel", "lo"))
        stream.on("content.delta", lambda delta, snapshot: pairs.append((delta, snapshot)))
        stream.on("content.done", dones.append)
        stream.until_done()
        assert pairs == [("", ""), ("Hel", "Hel"), ("lo", "Hello")]
        assert dones[0].content == "Hello"

    def test_short_names_and_unknown_types(self) -> None:
        """tool_calls.done is accepted as a short name; a typo is a clear error."""
        stream = ChatStream(text_stream("x"))
        stream.on("tool_calls.done", lambda event: None)
        with pytest.raises(ValueError, match="unknown event type"):
            stream.on("content.deltas", lambda event: None)

    def test_final_completion_and_usage(self) -> None:
        """get_final_completion waits for the end and returns openai's ParsedChatCompletion."""
        with ChatStream(text_stream("a", "b")) as stream:
            completion = stream.get_final_completion()
        assert isinstance(completion, openai.types.chat.ParsedChatCompletion)
        assert completion.choices[0].message.content == "ab"
        assert completion.usage is not None
        assert completion.usage.total_tokens == 5

    def test_length_finish_raises_at_the_end_like_openai(self) -> None:
        """Without parseable input, a length finish raises LengthFinishReasonError at get_final_completion."""
        stream = ChatStream(text_stream("cut", finish_reason="length"))
        with pytest.raises(openai.LengthFinishReasonError):
            stream.get_final_completion()

    def test_source_failure_raises_after_the_events_and_keeps_the_snapshot(self) -> None:
        """Events before a source failure, then an error event, then the error; the snapshot stays readable."""

        def failing():
            yield from text_stream("kept")[:2]
            raise ConnectionResetError("reset")

        stream = ChatStream(failing())
        seen = []
        with pytest.raises(ConnectionResetError):
            seen.extend(event.type for event in stream)
        assert seen == ["chunk", "content.delta", "chunk", "content.delta", "error"]
        assert stream.current_completion_snapshot.choices[0].message.content == "kept"

    def test_breaking_early_closes_the_source(self) -> None:
        """Leaving the with block early closes the chunk source."""
        closed = []

        def generate():
            try:
                yield from text_stream("a", "b", "c")
            finally:
                closed.append(True)

        with ChatStream(generate()) as stream:
            for event in stream:
                if event.type == "content.delta":
                    break
        assert closed == [True]

    def test_subscribed_observers_get_every_event_then_the_end(self) -> None:
        """An observer attached with subscribe sees each event as it is handed out, then on_completed."""
        seen, ended = [], []
        stream = ChatStream(text_stream("a")).subscribe(
            Observer(seen.append, ended.append, lambda: ended.append("completed"))
        )
        handed_out = [event.type for event in stream]
        assert [event.type for event in seen] == handed_out
        assert ended == ["completed"]

    def test_empty_source_is_an_error(self) -> None:
        """No chunk at all raises a typed error instead of returning an empty completion."""
        with pytest.raises(StreamContractError):
            ChatStream(iter([])).get_final_completion()

    def test_unknown_dialect_is_rejected(self) -> None:
        """An unknown dialect name fails with the known names listed."""
        with pytest.raises(ValueError, match="known dialects"):
            ChatStream(iter([]), dialect="nope")

    def test_a_handler_added_mid_chunk_gets_the_rest_of_that_chunk(self) -> None:
        """Handlers are looked up per event: one added at a chunk event sees that chunk's delta."""
        seen: list[str] = []
        stream = ChatStream(text_stream("hello", " world"))
        for event in stream:
            listen_from_hello(stream, event, seen)
        assert seen == ["hello", " world"]


class TestAsyncChatStream:
    async def test_a_handler_added_mid_chunk_gets_the_rest_of_that_chunk(self) -> None:
        async def generate():
            for chunk in text_stream("hello", " world"):
                yield chunk

        seen: list[str] = []
        stream = AsyncChatStream(generate())
        async for event in stream:
            listen_from_hello(stream, event, seen)
        assert seen == ["hello", " world"]

    async def test_async_iteration_and_async_handlers(self) -> None:
        """Async iteration yields the same events; coroutine handlers are awaited."""

        async def generate():
            for chunk in text_stream("a", "b"):
                yield chunk

        seen = []

        async def on_delta(delta: str, snapshot: str) -> None:
            seen.append(snapshot)

        async with AsyncChatStream(generate()) as stream:
            stream.on("content.delta", on_delta)
            types = [event.type async for event in stream]
            completion = await stream.get_final_completion()
        assert seen == ["", "a", "ab"]
        assert types[-1] == "completion.done"
        assert completion.choices[0].message.content == "ab"


class TestObserversOnEarlyClose:
    def test_closing_early_closes_observers_that_hold_resources(self, tmp_path) -> None:
        """A jsonl sink attached to a stream closed early gets its file closed."""
        from deltaflow import sinks  # noqa: PLC0415

        recorder = sinks.jsonl(tmp_path / "run.jsonl", what="chunks")
        with ChatStream(text_stream("a", "b", "c")).subscribe(recorder) as stream:
            first = next(iter(stream))
        recorder.on_next(first)  # after close the sink writes nothing more
        assert recorder.lines == 1
        assert (tmp_path / "run.jsonl").read_text().count("\n") == 1
