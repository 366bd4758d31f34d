"""accumulate() alone in a plain reactivex chain."""

from __future__ import annotations

import reactivex
from reactivex import operators as rx

from deltaflow import operators as ops
from deltaflow.errors import StreamContractError
from deltaflow.state import RejectedChunk
from deltaflow.testing import capture_events
from tests.chunks import chunk, text_stream


def _collect(source: reactivex.Observable) -> tuple[list, list]:
    captured = capture_events(source)
    return captured.events, [captured.error] if captured.error is not None else []


class TestAccumulate:
    def test_events_in_openai_order_then_completion_done(self) -> None:
        """Each chunk yields its chunk event first; choice.done, usage, completion.done close it."""
        events, errors = _collect(reactivex.from_iterable(text_stream("Hel", "lo")).pipe(ops.accumulate()))
        assert not errors
        assert [event.type for event in events] == [
            "chunk", "content.delta",
            "chunk", "content.delta",
            "chunk", "content.delta",
            "chunk", "content.done", "choice.done",
            "chunk", "usage",
            "completion.done",
        ]  # fmt: skip
        assert events[-1].completion.choices[0].message.content == "Hello"
        assert events[-2].usage.total_tokens == 5

    def test_delta_snapshot_is_as_of_its_event(self) -> None:
        """A content.delta read after the stream ended shows the text up to that delta only."""
        events, _ = _collect(reactivex.from_iterable(text_stream("a", "b", "c")).pipe(ops.accumulate()))
        deltas = [event for event in events if event.type == "content.delta"]
        assert [event.snapshot for event in deltas] == ["", "a", "ab", "abc"]
        chunk_events = [event for event in events if event.type == "chunk"]
        assert chunk_events[1].snapshot.choices[0].message.content == "a"

    def test_a_second_subscription_starts_fresh(self) -> None:
        """State lives in the subscription: two subscribers each accumulate the whole stream once."""
        observable = reactivex.from_iterable(text_stream("x", "y")).pipe(ops.accumulate())
        first, _ = _collect(observable)
        second, _ = _collect(observable)
        assert first[-1].completion.choices[0].message.content == "xy"
        assert second[-1].completion.choices[0].message.content == "xy"

    def test_contract_break_carries_the_partial_completion(self) -> None:
        """A chunk with a non-string content ends the stream with a typed error holding what came before."""
        broken = chunk({"delta": {"content": "ok"}})
        broken.choices[0].delta.content = 42  # type: ignore[assignment]
        chunks = [*text_stream("fine")[:2], broken]
        events, errors = _collect(reactivex.from_iterable(chunks).pipe(ops.accumulate()))
        assert isinstance(errors[0], StreamContractError)
        assert errors[0].completion.choices[0].message.content == "fine"
        assert [event.type for event in events].count("content.delta") == 2

    def test_tool_fragment_for_a_call_never_started_is_a_contract_error(self) -> None:
        """Arguments for a tool-call index that never had a name are rejected, not silently merged."""
        chunks = [
            chunk({"delta": {"role": "assistant", "content": "hi"}}),
            chunk({"delta": {"tool_calls": [{"index": 3, "function": {"arguments": "{}"}}]}}),
        ]
        _, errors = _collect(reactivex.from_iterable(chunks).pipe(ops.accumulate()))
        assert isinstance(errors[0], StreamContractError)
        assert "never started" in str(errors[0])
        assert errors[0].completion.choices[0].message.content == "hi"

    def test_source_error_passes_with_completion_attached(self) -> None:
        """An upstream deltaflow error reaches on_error with the snapshot so far attached."""
        failing = reactivex.concat(
            reactivex.from_iterable(text_stream("part")[:2]),
            reactivex.throw(StreamContractError("boom")),
        )
        _, errors = _collect(failing.pipe(ops.accumulate()))
        assert str(errors[0]) == "boom"
        assert errors[0].completion.choices[0].message.content == "part"

    def test_rejected_chunk_is_reported_and_the_stream_goes_on(self) -> None:
        """A payload no dialect understands becomes an error event; later chunks still accumulate."""
        chunks = text_stream("a", "b")
        chunks.insert(2, RejectedChunk(raw={"weird": True}, reason="no choices"))
        events, errors = _collect(reactivex.from_iterable(chunks).pipe(ops.accumulate()))
        assert not errors
        report = next(event for event in events if event.type == "error")
        assert report.code == "chunk_unrecognized"
        assert report.detail == {"weird": True}
        assert events[-1].completion.choices[0].message.content == "ab"

    def test_failure_is_announced_by_an_error_event(self) -> None:
        """Before on_error, subscribers get an error event naming the failure."""
        failing = reactivex.concat(
            reactivex.from_iterable(text_stream("part")[:2]),
            reactivex.throw(StreamContractError("boom")),
        )
        events, errors = _collect(failing.pipe(ops.accumulate()))
        assert events[-1].type == "error"
        assert events[-1].code == "stream_contract"
        assert events[-1].exception is errors[0]

    def test_empty_stream_is_an_error(self) -> None:
        """A stream with no chunk at all is reported, never a silent empty completion."""
        _, errors = _collect(reactivex.empty().pipe(ops.accumulate()))
        assert isinstance(errors[0], StreamContractError)

    def test_users_operator_between_two_of_ours(self) -> None:
        """A plain reactivex operator fits between accumulate and filter_refusals."""
        events, errors = _collect(
            reactivex.from_iterable(text_stream("a", "b")).pipe(
                ops.accumulate(),
                rx.filter(lambda event: event.type != "chunk"),
                ops.filter_refusals("drop"),
            )
        )
        assert not errors
        assert "chunk" not in [event.type for event in events]
        assert events[-1].type == "completion.done"

    def test_reasoning_content_becomes_reasoning_events(self) -> None:
        """reasoning_content gives reasoning events, done before the answer, kept in the message."""
        chunks = [
            chunk({"delta": {"role": "assistant", "content": None, "reasoning_content": "thin"}}),
            chunk({"delta": {"reasoning_content": "king"}}),
            chunk({"delta": {"content": "42"}}),
            chunk({"delta": {}, "finish_reason": "stop"}),
        ]
        events, _ = _collect(reactivex.from_iterable(chunks).pipe(ops.accumulate()))
        types = [event.type for event in events if event.type != "chunk"]
        assert types[:4] == ["reasoning.delta", "reasoning.delta", "reasoning.done", "content.delta"]
        assert next(event for event in events if event.type == "reasoning.done").reasoning == "thinking"
        message = events[-1].completion.choices[0].message
        assert message.model_extra["reasoning_content"] == "thinking"
        assert message.content == "42"


class TestEventEquality:
    def test_events_from_two_streams_compare_by_fields(self) -> None:
        """Equal events from separate pipelines are equal: the origin state does not count."""
        first, _ = _collect(reactivex.from_iterable(text_stream("a")).pipe(ops.accumulate()))
        second, _ = _collect(reactivex.from_iterable(text_stream("a")).pipe(ops.accumulate()))
        assert first[1] == second[1]
        assert first[1] != second[3]


class TestProviderErrorUsage:
    def test_usage_sent_with_a_provider_error_lands_in_the_completion(self) -> None:
        """OpenRouter-style: the usage travelling with a mid-stream error is in the error's completion."""
        from deltaflow.errors import ProviderError  # noqa: PLC0415

        payload = {
            "error": {"message": "limit"},
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        }
        failing = reactivex.concat(
            reactivex.from_iterable(text_stream("part")[:2]),
            reactivex.throw(ProviderError("limit", error=payload)),
        )
        _, errors = _collect(failing.pipe(ops.accumulate()))
        assert errors[0].completion.usage.total_tokens == 5
        assert errors[0].completion.choices[0].message.content == "part"


class TestExtraFields:
    def test_list_extras_merge_by_index_like_openai(self) -> None:
        """Unknown list fields merge entry by index as openai's accumulate_delta does, and chunks stay untouched."""
        chunks = [
            chunk({"delta": {"role": "assistant", "content": "a", "segments": [{"index": 0, "text": "x"}]}}),
            chunk(
                {
                    "delta": {
                        "content": "b",
                        "segments": [{"index": 0, "text": "y"}, {"index": 1, "text": "z"}],
                    }
                }
            ),
            chunk({"delta": {}, "finish_reason": "stop"}),
        ]
        first_annotations = [dict(entry) for entry in chunks[0].choices[0].delta.model_extra["segments"]]
        events, _ = _collect(reactivex.from_iterable(chunks).pipe(ops.accumulate()))
        message = events[-1].completion.choices[0].message
        assert message.model_extra["segments"] == [{"index": 0, "text": "xy"}, {"index": 1, "text": "z"}]
        assert chunks[0].choices[0].delta.model_extra["segments"] == first_annotations


class TestRareFieldsAsOf:
    def test_function_call_and_role_in_a_late_snapshot_show_their_moment(self) -> None:
        """The legacy function_call and the role in a chunk's snapshot are as of that chunk, read late."""
        chunks = [
            chunk(
                {"delta": {"role": "assistant", "function_call": {"name": "get_weather", "arguments": ""}}}
            ),
            chunk({"delta": {"function_call": {"arguments": '{"city":'}}}),
            chunk({"delta": {"function_call": {"arguments": '"Paris"}'}}}),
            chunk({"delta": {}, "finish_reason": "function_call"}),
        ]
        events, _ = _collect(reactivex.from_iterable(chunks).pipe(ops.accumulate()))
        first, second = [event for event in events if event.type == "chunk"][:2]
        assert first.snapshot.choices[0].message.function_call.arguments == ""
        assert second.snapshot.choices[0].message.function_call.arguments == '{"city":'
        assert events[-1].completion.choices[0].message.function_call.arguments == '{"city":"Paris"}'
