"""Adversarial inputs: nesting bombs, invalid JSON, huge strings and numbers, size limits, garbage."""

from __future__ import annotations

import itertools
import json
import random
import tracemalloc
from collections.abc import Iterable
from typing import Any

import jiter
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deltaflow.errors import JsonLimitError, JsonParseError
from deltaflow.partial_json import IncrementalJsonParser, apply_ops


def feed_pieces(parser: IncrementalJsonParser, pieces: Iterable[str], *, finish: bool = False) -> None:
    for piece in pieces:
        parser.feed(piece)
    if finish:
        parser.finish()


def first_error(text: str, bounds: list[int]) -> tuple[JsonParseError | None, Any]:
    """Feed ``text`` cut at ``bounds``, reading values after each delta; return (error, final value)."""
    parser = IncrementalJsonParser(track_done=True)
    try:
        for start, end in itertools.pairwise(bounds):
            parser.feed(text[start:end])
            parser.value()
            parser.value_trailing_strings()
            parser.pop_done()
        return None, parser.finish()
    except JsonParseError as exc:
        return exc, None


def test_hundred_thousand_brackets_hit_the_depth_limit() -> None:
    """100,000 nested '[' raise JsonLimitError at the first bracket past max_depth, without recursing."""
    bomb = "[" * 100_000
    parser = IncrementalJsonParser()
    with pytest.raises(JsonLimitError) as info:
        parser.feed(bomb)
    assert info.value.position == 256
    assert info.value.text == bomb
    one_by_one = IncrementalJsonParser()
    with pytest.raises(JsonLimitError) as info:
        feed_pieces(one_by_one, bomb)
    assert info.value.position == 256


def test_depth_limit_is_exact() -> None:
    """max_depth nested containers are accepted; one more raises."""
    parser = IncrementalJsonParser(max_depth=3)
    parser.feed('[{"a": [')
    assert parser.value() == [{"a": []}]
    with pytest.raises(JsonLimitError) as info:
        parser.feed("{")
    assert info.value.position == 8


def test_deep_nesting_within_a_raised_limit_needs_no_recursion() -> None:
    """50,000 nested arrays (with max_depth raised) parse, snapshot and finish iteratively."""
    depth = 50_000
    # Without ops: an op's path is as long as the nesting, so ops alone would be quadratic here.
    parser = IncrementalJsonParser(max_depth=depth, emit_ops=False)
    parser.feed("[" * depth + "1")
    middle = parser.version
    parser.feed("]" * depth)
    for outer in (parser.value(middle), parser.finish()):
        node = outer
        for _ in range(depth):
            assert isinstance(node, list)
            assert len(node) == 1
            node = node[0]
        assert node == 1


@pytest.mark.parametrize(
    ("doc", "position"),
    [
        ("[1 2]", 3),
        ('{"a" 1}', 5),
        ("[1,]", 3),
        ('{"a":1,}', 7),
        ("[,", 1),
        ("{,", 1),
        ("{1", 1),
        ('{"a"::', 5),
        ('{"a":,', 5),
        ('{"a":}', 5),
        ("[1:", 2),
        ("[1}", 2),
        ('{"a":1]', 6),
        ("]", 0),
        ("01", 1),
        ("[-01", 3),
        ("[00", 2),
        ("[1.e5", 3),
        ("[.5", 1),
        ("[+1", 1),
        ("[1.x", 3),
        ("[1ex", 3),
        ("[-x", 2),
        ("[1.5.", 4),
        ("[1e5e", 4),
        ("-N", 1),
        ("nulx", 3),
        ("[truex", 5),
        ("'a'", 0),
        ('"\t"', 1),
        ('"\\x"', 2),
        ('"a" "b"', 4),
        ("\ufeff1", 0),
    ],
)
def test_invalid_json_raises_at_the_first_invalid_character(doc: str, position: int) -> None:
    """Invalid documents raise JsonParseError at the first invalid character, whole or char by char."""
    whole = IncrementalJsonParser()
    with pytest.raises(JsonParseError) as info:
        feed_pieces(whole, [doc], finish=True)
    assert (info.value.position, info.value.text) == (position, doc)
    with pytest.raises(ValueError, match=rf"line 1 column {position + 1}\b"):
        jiter.from_json(doc.encode())
    char_by_char = IncrementalJsonParser()
    with pytest.raises(JsonParseError) as info:
        feed_pieces(char_by_char, doc, finish=True)
    assert (info.value.position, info.value.text) == (position, doc[: position + 1])


def test_fifty_megabyte_string_streams_in_bounded_memory() -> None:
    """A 50 MB string fed in 64 KiB deltas completes with every character, ops included.

    Memory stays a small multiple of the text: the raw text (kept for error reports), the string's parts
    and, at the close, the string itself; never a copy per delta. Each delta's own work is a few
    scans of that delta and one append, so time is linear (benchmarks/RESULTS.md has the figure).
    """
    chunk = ("0123456789abcdef" * 4096)[: 64 * 1024]
    count = 50 * 16  # 50 MiB
    size = count * len(chunk)
    parser = IncrementalJsonParser(max_size=None)
    appended = 0
    tracemalloc.start()
    try:
        parser.feed('{"s": "')
        for _ in range(count):
            (op,) = parser.feed(chunk)
            appended += len(op.value)
        parser.feed('"}')
        value = parser.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(value["s"]) == size == appended
    assert value["s"][-3:] == chunk[-3:]
    assert peak < 3.2 * size  # the raw text, the parts, the string: nothing more


def test_max_size_exceeded_raises_a_limit_error() -> None:
    """Feeding past max_size characters raises JsonLimitError at offset max_size, and keeps raising."""
    parser = IncrementalJsonParser(max_size=10)
    parser.feed('["abcd')
    with pytest.raises(JsonLimitError) as info:
        parser.feed('efgh"]')
    assert info.value.position == 10
    assert info.value.text == '["abcdefgh"]'
    with pytest.raises(JsonLimitError):
        parser.feed("")
    exact = IncrementalJsonParser(max_size=5)
    exact.feed("[1,2]")
    assert exact.finish() == [1, 2]


def test_integer_part_beyond_jiters_bound_raises() -> None:
    """An integer part longer than 4300 digits raises JsonLimitError, as jiter rejects it; 4300 is fine."""
    parser = IncrementalJsonParser()
    parser.feed("[" + "7" * 4300 + "]")
    assert parser.finish()[0] == int("7" * 4300)
    too_long = IncrementalJsonParser()
    digits = "-" + "7" * 4400
    with pytest.raises(JsonLimitError) as info:
        feed_pieces(too_long, (digits[start : start + 7] for start in range(0, len(digits), 7)))
    assert info.value.position == 4301
    with pytest.raises(ValueError, match="number out of range"):
        jiter.from_json(b"-" + b"7" * 4301)


@pytest.mark.parametrize(
    "number",
    [
        "0." + "0" * 30_000 + "123",
        "1." + "3" * 50_000,
        "-2." + "9" * 20_000 + "e-" + "0" * 5000 + "300",
        "1e" + "9" * 10_000,
        "1e-" + "9" * 10_000,
        "0.0e" + "9" * 3000,
        "1" * 4300 + "." + "5" * 5000 + "e-4000",
    ],
)
def test_very_long_numbers_match_jiter_and_stay_bounded(number: str) -> None:
    """Numbers of tens of thousands of digits, fed in small deltas, give jiter's value."""
    doc = f"[{number}]"
    parser = IncrementalJsonParser()
    for start in range(0, len(doc) - 1, 7):
        parser.feed(doc[start : min(start + 7, len(doc) - 1)])
    expected = jiter.from_json(doc.encode())
    assert repr(parser.value()) == repr(expected)
    parser.feed("]")
    assert repr(parser.finish()) == repr(expected)


def test_raw_surrogate_characters_in_the_input_are_plain_characters() -> None:
    """A lone surrogate code point inside a Python str is kept as is, not an internal error."""
    parser = IncrementalJsonParser()
    parser.feed('["\ud800')
    parser.feed('x"]')
    assert parser.finish() == ["\ud800x"]


def test_many_small_feeds_of_a_big_document_match_the_whole() -> None:
    """A generated document of ~200 KB fed in 3-character deltas gives jiter's value and ops."""
    rnd = random.Random(3)
    items = [
        {
            "id": i,
            "name": f"n{i}é",
            "tags": ["a", "b"][: rnd.randint(0, 2)],
            "x": rnd.random() * 10 ** rnd.randint(-5, 5),
        }
        for i in range(2500)
    ]
    doc = json.dumps({"items": items, "done": True})
    parser = IncrementalJsonParser()
    root = None
    for start in range(0, len(doc), 3):
        root = apply_ops(root, parser.feed(doc[start : start + 3]))
    expected = jiter.from_json(doc.encode())
    assert parser.finish() == expected
    assert root == expected


_GARBAGE = st.text(st.sampled_from(list('{}[]:,"\\ -+.eE0123456789tfnulsaxNIy\t\n/\x00é😀')), max_size=40)


@settings(max_examples=400, deadline=None)
@given(_GARBAGE, st.lists(st.integers(0, 40), max_size=6))
def test_garbage_only_ever_raises_json_parse_error(text: str, cuts: list[int]) -> None:
    """Any text, cut anywhere, either parses like jiter or raises JsonParseError; nothing else escapes."""
    bounds = [0, *sorted(c for c in cuts if c <= len(text)), len(text)]
    error, result = first_error(text, bounds)
    if error is None:
        assert repr(result) == repr(jiter.from_json(text.encode()))
        return
    assert 0 <= error.position <= len(text)
    assert text.startswith(error.text)
    with pytest.raises(ValueError, match="line"):  # jiter rejects it too
        jiter.from_json(text.encode())


def test_an_internal_bug_still_surfaces_as_json_parse_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Should the scanner itself fail (a bug), feed raises JsonParseError chained to the cause."""

    def broken(self: IncrementalJsonParser, text: str, base: int) -> int:
        raise IndexError(text)

    monkeypatch.setattr(IncrementalJsonParser, "_run", broken)
    parser = IncrementalJsonParser()
    with pytest.raises(JsonParseError, match="internal parser error") as info:
        parser.feed("[1")
    assert isinstance(info.value.__cause__, IndexError)
    assert info.value.text == "[1"
