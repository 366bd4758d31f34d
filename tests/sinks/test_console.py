"""sinks.console: what a non-terminal console shows at the end of a stream (plain text, no styles)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import pytest
from openai.types.chat import ChatCompletionChunk
from rich.console import Console

from deltaflow import ChatStream, sinks
from tests.chunks import chunk, text_stream
from tests.fixtures import load_openai_fixture
from tests.sinks import FakeClock


def _plain() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, force_terminal=False, width=100), out


def _show_fixture(name: str, **options: object) -> str:
    fixture = load_openai_fixture(name)
    console, out = _plain()
    stream = ChatStream(fixture.chunks, tools=fixture.tools, response_format=fixture.response_format)
    stream.subscribe(sinks.console(console, **options)).until_done()  # type: ignore[arg-type]
    return out.getvalue()


class TestPlainConsole:
    def test_content_and_closing_line_exactly(self) -> None:
        """Content as sent, then one closing line with finish, tokens, duration, TTFT, tokens/s, chunks."""
        console, out = _plain()
        clock = FakeClock()
        sink = sinks.console(console, clock=clock)
        for event in ChatStream(text_stream("Hello", " world")):
            if event.type == "chunk":
                clock.advance(0.25)
            sink.on_next(event)
        sink.on_completed()
        # five chunks a quarter second apart; "Hello" at 0.5 s; 2 tokens over the last 0.75 s
        assert out.getvalue() == (
            "Hello world\n"
            "── finish: stop · 5 tokens (3 prompt, 2 completion) · 1.25 s · first token 0.50 s"
            " · 2.7 tokens/s · 5 chunks\n"
        )

    def test_text_fixture(self) -> None:
        """parse_nothing: the whole answer on screen, then its usage."""
        fixture = load_openai_fixture("parse_nothing")
        lines = _show_fixture("parse_nothing").splitlines()
        assert lines[0] == fixture.expected["choices"][0]["content"]
        assert lines[1].startswith("── finish: stop · 44 tokens (14 prompt, 30 completion) · ")
        assert lines[1].endswith(" · 33 chunks")
        assert len(lines) == 2

    def test_tool_call_line(self) -> None:
        """parse_pydantic_tool: one line with the function and its whole arguments."""
        lines = _show_fixture("parse_pydantic_tool").splitlines()
        assert lines[0] == 'tool call GetWeatherArgs({"city":"Edinburgh","country":"UK","units":"c"})'
        assert lines[1].startswith("── finish: tool_calls · 100 tokens")

    def test_parallel_tool_calls_on_their_own_lines(self) -> None:
        """Two calls in one message each get a closed line, despite openai's interleaved done event."""
        lines = _show_fixture("parse_multiple_pydantic_tools").splitlines()
        assert lines[:2] == [
            'tool call GetWeatherArgs({"city": "Edinburgh", "country": "GB", "units": "c"})',
            'tool call get_stock_price({"ticker": "AAPL", "exchange": "NASDAQ"})',
        ]

    def test_refusal_marked(self) -> None:
        """parse_pydantic_model_refusal: the refusal follows its marker."""
        lines = _show_fixture("parse_pydantic_model_refusal").splitlines()
        assert lines[0] == "refusal: I'm sorry, I can't assist with that request."

    def test_structured_output_as_a_json_tree(self) -> None:
        """parse_pydantic_model: the parsed value printed once, as indented JSON, not the raw text."""
        output = _show_fixture("parse_pydantic_model")
        assert output.startswith('{\n  "city": "San Francisco",\n  "temperature": 61,\n  "units": "f"\n}\n')
        assert '{"city"' not in output

    def test_reasoning_then_content(self) -> None:
        """Reasoning follows its label; the answer starts on a line of its own."""
        console, out = _plain()
        chunks = [
            chunk({"delta": {"role": "assistant", "reasoning_content": "Let me"}}),
            chunk({"delta": {"reasoning_content": " think."}}),
            chunk({"delta": {"content": "Four."}}),
            chunk({"delta": {}, "finish_reason": "stop"}),
        ]
        ChatStream(chunks).subscribe(sinks.console(console)).until_done()
        assert out.getvalue().splitlines()[:2] == ["reasoning: Let me think.", "Four."]

    def test_reasoning_hidden(self) -> None:
        """show_reasoning=False prints the answer only."""
        console, out = _plain()
        chunks = [
            chunk({"delta": {"role": "assistant", "reasoning_content": "hmm"}}),
            chunk({"delta": {"content": "Yes."}}),
        ]
        ChatStream(chunks).subscribe(sinks.console(console, show_reasoning=False)).until_done()
        assert out.getvalue().splitlines()[0] == "Yes."

    def test_one_choice_of_several(self) -> None:
        """With n=3 only the chosen choice's content is shown; the closing line lists every finish."""
        fixture = load_openai_fixture("parse_pydantic_model_multiple_choices")
        output = _show_fixture("parse_pydantic_model_multiple_choices", choice_index=1)
        assert output.count('"city"') == 1
        tree, _, closing = output.partition("── ")
        assert json.loads(tree) == json.loads(fixture.expected["choices"][1]["content"])
        assert closing.startswith("finish: stop, stop, stop")

    def test_failure_shown(self) -> None:
        """A failing stream shows the partial text, the error event, the failure, then the figures."""

        def failing() -> Iterator[ChatCompletionChunk]:
            yield chunk({"delta": {"role": "assistant", "content": "partial"}})
            raise ConnectionError("gone")

        console, out = _plain()
        with pytest.raises(ConnectionError):
            ChatStream(failing()).subscribe(sinks.console(console)).until_done()
        lines = out.getvalue().splitlines()
        assert lines[:3] == ["partial", "error source_error: gone", "stream failed: ConnectionError: gone"]
        assert lines[3].startswith("── ")
        assert lines[3].endswith("1 chunks")


class TestTerminalConsole:
    def test_structured_output_through_the_live_tree(self) -> None:
        """On a terminal the tree is drawn live and left complete, followed by the closing line."""
        out = io.StringIO()
        console = Console(file=out, force_terminal=True, width=100, color_system=None)
        fixture = load_openai_fixture("parse_pydantic_model")
        stream = ChatStream(fixture.chunks, response_format=fixture.response_format)
        stream.subscribe(sinks.console(console, refresh_per_second=1_000_000)).until_done()
        output = out.getvalue()
        assert '"units": "f"' in output
        assert "── finish: stop" in output
        assert output.index('"units": "f"') < output.index("── finish: stop")


DICT_FORMAT = {"type": "json_schema", "json_schema": {"name": "w", "schema": {"type": "object"}}}


class TestFirstPieceOfARequestDictFormat:
    """A request-dict ``response_format`` parses without ``content.delta.parsed``: the first piece is held
    until the next event says whether it was JSON, so no raw prefix is drawn before the tree."""

    def test_no_raw_prefix_before_the_tree(self) -> None:
        console, out = _plain()
        chunks = text_stream('{"ci', 'ty": ', '"Paris"}')
        ChatStream(chunks, response_format=DICT_FORMAT).subscribe(sinks.console(console)).until_done()
        lines = out.getvalue().splitlines()
        assert lines[:3] == ["{", '  "city": "Paris"', "}"]
        assert lines[3].startswith("── finish: stop")
        assert len(lines) == 4

    def test_text_keeps_its_first_piece(self) -> None:
        """Without parsing, the held piece is drawn at the next event: text is whole, in order."""
        console, out = _plain()
        ChatStream(text_stream("Hel", "lo", " there")).subscribe(sinks.console(console)).until_done()
        assert out.getvalue().splitlines()[0] == "Hello there"

    def test_a_single_piece_answer_is_drawn_at_the_end(self) -> None:
        """A first piece with no event after it for its choice still shows when the stream completes."""
        console, out = _plain()
        sink = sinks.console(console)
        for event in ChatStream(text_stream("Only")):
            sink.on_next(event)
            if event.type == "content.delta" and event.delta:
                break
        sink.on_completed()
        assert out.getvalue().splitlines()[0] == "Only"
