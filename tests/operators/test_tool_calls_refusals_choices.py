"""assemble_tool_calls, filter_refusals, split_by_choice and check_finish_reasons, each alone."""

from __future__ import annotations

import openai
import pytest
import reactivex
from pydantic import BaseModel

from deltaflow import operators as ops
from deltaflow.errors import RefusalError, ToolArgumentsError
from tests.chunks import chunk, text_stream, tool_call_stream

STRICT_TOOL = {
    "type": "function",
    "function": {"name": "lookup", "parameters": {"type": "object"}, "strict": True},
}
LOOSE_TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


class Weather(BaseModel):
    city: str
    celsius: float


def _events(chunks, *operators) -> tuple[list, list]:
    events, errors = [], []
    reactivex.from_iterable(chunks).pipe(ops.accumulate(), *operators).subscribe(events.append, errors.append)
    return events, errors


class TestAssembleToolCalls:
    def test_strict_tool_gets_partial_then_final_arguments(self) -> None:
        """Deltas carry the partial JSON so far; done carries the whole value and the tool_call."""
        events, errors = _events(
            tool_call_stream("lookup", '{"ci', 'ty": "Par', 'is", "n": 2}'),
            ops.assemble_tool_calls(tools=[STRICT_TOOL]),
        )
        assert not errors
        deltas = [event for event in events if event.type == "tool_calls.function.arguments.delta"]
        assert [event.parsed_arguments for event in deltas] == [None, {}, {}, {"city": "Paris", "n": 2}]
        done = next(event for event in events if event.type == "tool_calls.function.arguments.done")
        assert done.parsed_arguments == {"city": "Paris", "n": 2}
        assert done.tool_call.id == "call_1"
        assert done.tool_call.function.parsed_arguments == {"city": "Paris", "n": 2}
        final = events[-1].completion.choices[0].message.tool_calls[0]
        assert final.function.parsed_arguments == {"city": "Paris", "n": 2}

    def test_pydantic_tool_is_validated_into_its_model(self) -> None:
        """A pydantic_function_tool's arguments become the model instance at done."""
        tool = openai.pydantic_function_tool(Weather)
        events, _ = _events(
            tool_call_stream("Weather", '{"city": "Oslo", ', '"celsius": -3.5}'),
            ops.assemble_tool_calls(tools=[tool]),
        )
        done = next(event for event in events if event.type == "tool_calls.function.arguments.done")
        assert done.parsed_arguments == Weather(city="Oslo", celsius=-3.5)

    def test_non_strict_tool_is_not_parsed(self) -> None:
        """As in openai, arguments of a non-strict tool stay unparsed."""
        events, _ = _events(
            tool_call_stream("lookup", '{"a": 1}'), ops.assemble_tool_calls(tools=[LOOSE_TOOL])
        )
        done = next(event for event in events if event.type == "tool_calls.function.arguments.done")
        assert done.parsed_arguments is None
        assert done.arguments == '{"a": 1}'

    def test_invalid_json_gives_done_then_error_and_the_stream_goes_on(self) -> None:
        """Broken arguments: parsed None, an error event naming the call and position, raw text kept."""
        events, errors = _events(
            tool_call_stream("lookup", '{"city": ', "oops}"), ops.assemble_tool_calls(tools=[STRICT_TOOL])
        )
        assert not errors
        types = [event.type for event in events]
        done_at = types.index("tool_calls.function.arguments.done")
        assert types[done_at + 1] == "error"
        report = events[done_at + 1]
        assert report.code == "tool_arguments_invalid"
        assert isinstance(report.exception, ToolArgumentsError)
        assert report.exception.arguments == '{"city": oops}'
        assert report.exception.position == 9
        assert "lookup" in report.message
        assert events[done_at].parsed_arguments is None
        assert types[-1] == "completion.done"

    def test_validation_failure_is_reported_with_raw_text(self) -> None:
        """Valid JSON that fails the tool's model: a typed error with the raw arguments."""
        tool = openai.pydantic_function_tool(Weather)
        events, _ = _events(tool_call_stream("Weather", '{"city": 3}'), ops.assemble_tool_calls(tools=[tool]))
        report = next(event for event in events if event.type == "error")
        assert report.exception.arguments == '{"city": 3}'
        assert report.exception.position is None

    def test_parallel_calls_complete_in_order(self) -> None:
        """The next call's first fragment completes the previous call, as in openai."""
        calls = [
            {
                "index": 0,
                "id": "a",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"x": 1}'},
            },
            {
                "index": 1,
                "id": "b",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"x": 2}'},
            },
        ]
        chunks = [
            chunk({"delta": {"role": "assistant", "tool_calls": [calls[0]]}}),
            chunk({"delta": {"tool_calls": [calls[1]]}}),
            chunk({"delta": {}, "finish_reason": "tool_calls"}),
        ]
        events, _ = _events(chunks, ops.assemble_tool_calls(tools=[STRICT_TOOL]))
        done = [event for event in events if event.type == "tool_calls.function.arguments.done"]
        assert [(event.index, event.tool_call.id, event.parsed_arguments) for event in done] == [
            (0, "a", {"x": 1}),
            (1, "b", {"x": 2}),
        ]


class TestFilterRefusals:
    def _refusal_stream(self) -> list:
        return [
            chunk({"delta": {"role": "assistant", "content": None, "refusal": ""}}),
            chunk({"delta": {"refusal": "I can't"}}),
            chunk({"delta": {}, "finish_reason": "stop"}),
        ]

    def test_keep_passes_refusals(self) -> None:
        """The default keeps refusal events."""
        events, _ = _events(self._refusal_stream(), ops.filter_refusals())
        assert "refusal.done" in [event.type for event in events]

    def test_drop_removes_refusal_events_but_not_the_snapshot(self) -> None:
        """Dropped refusal events still leave the refusal in the final completion."""
        events, _ = _events(self._refusal_stream(), ops.filter_refusals("drop"))
        assert not [event for event in events if event.type.startswith("refusal")]
        assert events[-1].completion.choices[0].message.refusal == "I can't"

    def test_raise_carries_text_and_completion(self) -> None:
        """raise mode ends the stream with RefusalError holding the refusal and partial completion."""
        _, errors = _events(self._refusal_stream(), ops.filter_refusals("raise"))
        assert isinstance(errors[0], RefusalError)
        assert errors[0].refusal == "I can't"
        assert errors[0].completion.choices[0].message.refusal == "I can't"

    def test_unknown_mode_is_rejected(self) -> None:
        """A typo in the mode fails at once, not silently."""
        with pytest.raises(ValueError, match="filter_refusals mode"):
            ops.filter_refusals("ignore")  # type: ignore[arg-type]


class TestSplitByChoice:
    def test_each_choice_gets_its_own_stream(self) -> None:
        """Subscribing to choice 1 alone yields only its events; usage stays on the parent."""
        chunks = [
            chunk({"index": 0, "delta": {"role": "assistant", "content": "A"}}),
            chunk({"index": 1, "delta": {"role": "assistant", "content": "B"}}),
            chunk({"index": 1, "delta": {"content": "b"}}),
            chunk({"index": 0, "delta": {}, "finish_reason": "stop"}),
            chunk({"index": 1, "delta": {}, "finish_reason": "stop"}),
            chunk(usage={"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}),
        ]
        parent, per_choice = [], {}

        def on_item(item) -> None:
            if isinstance(item, ops.ChoiceStream):
                per_choice[item.choice_index] = []
                item.subscribe(per_choice[item.choice_index].append)
            else:
                parent.append(item)

        reactivex.from_iterable(chunks).pipe(ops.accumulate(), ops.split_by_choice()).subscribe(on_item)
        assert sorted(per_choice) == [0, 1]
        assert {event.choice_index for event in per_choice[1]} == {1}
        assert [event.delta for event in per_choice[1] if event.type == "content.delta"] == ["B", "b"]
        assert {event.type for event in parent} == {"chunk", "usage", "completion.done"}


class TestCheckFinishReasons:
    def test_length_with_response_format_raises_openais_error(self) -> None:
        """A choice cut by the token limit with a parsed response format raises LengthFinishReasonError."""
        _, errors = _events(
            text_stream('{"city": "Os', finish_reason="length"),
            ops.check_finish_reasons(response_format=Weather),
        )
        assert isinstance(errors[0], openai.LengthFinishReasonError)
        assert errors[0].completion.choices[0].message.content == '{"city": "Os'

    def test_content_filter_with_strict_tool_raises(self) -> None:
        """content_filter with a strict tool raises ContentFilterFinishReasonError."""
        _, errors = _events(
            text_stream("x", finish_reason="content_filter"), ops.check_finish_reasons(tools=[STRICT_TOOL])
        )
        assert isinstance(errors[0], openai.ContentFilterFinishReasonError)

    def test_nothing_to_parse_lets_length_through(self) -> None:
        """Without parseable input the stream completes; the error comes at get_final_completion."""
        events, errors = _events(text_stream("x", finish_reason="length"), ops.check_finish_reasons())
        assert not errors
        assert events[-1].type == "completion.done"
