"""The SSE decoder against the event-stream rules chat completions rely on."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from deltaflow.pipeline import SSEDecoder, iter_sse

BODY = (
    ": OPENROUTER PROCESSING\n\n"
    'data: {"a": "é"}\n\n'
    "event: error\r\n"
    "data: line one\r\n"
    "data: line two\r\n\r\n"
    "data: [DONE]\n\n"
).encode()


class TestSSEDecoder:
    def test_comments_names_multiline_data_and_crlf(self) -> None:
        """Comments are skipped, event names kept, data lines joined, CRLF accepted."""
        events = list(iter_sse([BODY]))
        assert [(event.event, event.data) for event in events] == [
            (None, '{"a": "é"}'),
            ("error", "line one\nline two"),
            (None, "[DONE]"),
        ]

    @given(st.lists(st.integers(min_value=1, max_value=len(BODY)), max_size=12))
    def test_any_split_into_reads_gives_the_same_events(self, cuts: list[int]) -> None:
        """Reads cut anywhere, through UTF-8 sequences and CRLF pairs, decode identically."""
        points = sorted(set(cuts))
        reads = [BODY[start:end] for start, end in zip([0, *points], [*points, len(BODY)], strict=True)]
        assert list(iter_sse(reads)) == list(iter_sse([BODY]))

    def test_last_event_without_blank_line_is_flushed(self) -> None:
        """A body that ends right after a data line still yields that event at flush."""
        decoder = SSEDecoder()
        assert decoder.feed(b"data: x") == []
        assert [event.data for event in decoder.flush()] == ["x"]


class TestLongLines:
    def test_a_long_line_in_small_reads_is_decoded_whole(self) -> None:
        """A multi-megabyte data line split over many reads arrives as one event."""
        payload = b"x" * (3 * 1024 * 1024)
        body = b"data: " + payload + b"\n\n"
        events = list(iter_sse(body[start : start + 4096] for start in range(0, len(body), 4096)))
        assert [len(event.data) for event in events] == [len(payload)]

    def test_a_line_past_the_bound_is_a_typed_error(self) -> None:
        """A line longer than max_line raises StreamContractError instead of growing without end."""
        from deltaflow.errors import StreamContractError  # noqa: PLC0415

        decoder = SSEDecoder(max_line=1000)
        with pytest.raises(StreamContractError, match="longer than 1000 bytes"):
            for _ in range(10):
                decoder.feed(b"data: " + b"y" * 200)
