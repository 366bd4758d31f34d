"""Property tests: the incremental parser against jiter on random documents cut at random points."""

from __future__ import annotations

import itertools
import json
import os
from dataclasses import dataclass
from typing import Any

import jiter
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from deltaflow.errors import JsonParseError
from deltaflow.partial_json import IncrementalJsonParser, apply_ops

# A few seconds per test on two cores; set DELTAFLOW_PJ_EXAMPLES=5000 for a deeper search.
_SETTINGS = settings(
    max_examples=int(os.environ.get("DELTAFLOW_PJ_EXAMPLES", "250")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass(frozen=True)
class RawNumber:
    """A number written exactly as ``text`` (exponents, ``-0``, leading ``0.`` ...)."""

    text: str


@dataclass(frozen=True)
class Obj:
    """An object as a list of members, so duplicate keys can be generated."""

    members: tuple[tuple[str, Any], ...]


_NUMBER_TEXT = st.from_regex(r"\A-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?\Z")
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
_KEYS = st.sampled_from(["a", "b", "key", "é", '"q"', "\\", "\n", "😀", ""]) | _TEXT
_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT
    | _NUMBER_TEXT.map(RawNumber)
)
_VALUES = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=5)
        | st.lists(st.tuples(_KEYS, children), max_size=5).map(lambda m: Obj(tuple(m)))
    ),
    max_leaves=25,
)
_WHITESPACE = st.text(st.sampled_from(" \t\n\r"), max_size=3)


def _dump(value: Any, ascii_only: bool, spaces: list[str]) -> str:
    """Serialise ``value``, drawing whitespace between tokens from ``spaces`` (cycled)."""
    out: list[str] = []
    counter = [0]

    def ws() -> str:
        counter[0] += 1
        return spaces[counter[0] % len(spaces)] if spaces else ""

    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and item.startswith("\x00TOKEN"):
            out.append(item[len("\x00TOKEN") :])
        elif isinstance(item, RawNumber):
            out.append(item.text)
        elif isinstance(item, Obj):
            parts: list[Any] = ["\x00TOKEN{" + ws()]
            for index, (key, member) in enumerate(item.members):
                if index:
                    parts.append("\x00TOKEN" + ws() + "," + ws())
                parts.append("\x00TOKEN" + json.dumps(key, ensure_ascii=ascii_only) + ws() + ":" + ws())
                parts.append(member)
            parts.append("\x00TOKEN" + ws() + "}")
            stack.extend(reversed(parts))
        elif isinstance(item, list):
            parts = ["\x00TOKEN[" + ws()]
            for index, element in enumerate(item):
                if index:
                    parts.append("\x00TOKEN" + ws() + "," + ws())
                parts.append(element)
            parts.append("\x00TOKEN" + ws() + "]")
            stack.extend(reversed(parts))
        else:
            out.append(json.dumps(item, ensure_ascii=ascii_only))
    return "".join(out)


@st.composite
def documents(draw: st.DrawFn) -> str:
    """A random valid JSON document with random whitespace, as text."""
    value = draw(_VALUES)
    spaces = draw(st.lists(_WHITESPACE, max_size=4))
    text = _dump(value, draw(st.booleans()), spaces)
    return draw(_WHITESPACE) + text + draw(_WHITESPACE)


@st.composite
def cut_documents(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A document and its split into deltas at random points (sometimes at every character)."""
    doc = draw(documents())
    if draw(st.integers(0, 9)) == 0:
        return doc, list(doc)
    cuts = sorted(set(draw(st.lists(st.integers(0, len(doc)), max_size=12))))
    bounds = [0, *cuts, len(doc)]
    return doc, [doc[a:b] for a, b in itertools.pairwise(bounds)]


def feed_pieces(parser: IncrementalJsonParser, pieces: list[str]) -> None:
    for piece in pieces:
        parser.feed(piece)
    parser.finish()


def _jiter(prefix: str, mode: Any) -> tuple[bool, Any]:
    try:
        return True, jiter.from_json(prefix.encode(), partial_mode=mode)
    except ValueError:
        return False, None


@_SETTINGS
@given(cut_documents(), st.randoms(use_true_random=False))
def test_every_prefix_matches_jiter(case: tuple[str, list[str]], rnd: Any) -> None:
    """After every delta, value() equals jiter partial_mode=True and replayed ops equal trailing-strings."""
    doc, deltas = case
    parser = IncrementalJsonParser()
    replayed: Any = None
    prefix = ""
    captured: list[tuple[int, str]] = []
    held: list[tuple[Any, str]] = []
    for delta in deltas:
        replayed = apply_ops(replayed, parser.feed(delta))
        prefix += delta
        ok, expected = _jiter(prefix, True)
        if ok:
            assert parser.has_value
            got = parser.value()
            assert repr(got) == repr(expected)
            if rnd.random() < 0.3:
                # Keep some snapshots alive: they must never change afterwards.
                held.append((got, repr(expected)))
        else:
            assert not parser.has_value
            assert parser.value() is None
        captured.append((parser.version, repr(expected) if ok else repr(None)))
        if rnd.random() < 0.2:
            # Reading an earlier version in between must not disturb the current snapshot.
            version, expected_repr = rnd.choice(captured)
            assert repr(parser.value(version)) == expected_repr
            assert repr(parser.value()) == captured[-1][1]
        ok, expected = _jiter(prefix, "trailing-strings")
        if ok:
            assert repr(replayed) == repr(expected)
            assert repr(parser.value_trailing_strings()) == repr(expected)
    assert repr(parser.finish()) == repr(jiter.from_json(doc.encode()))
    assert parser.complete
    for version, expected_repr in captured:
        assert repr(parser.value(version)) == expected_repr
    for snapshot, expected_repr in held:
        assert repr(snapshot) == expected_repr


@_SETTINGS
@given(cut_documents())
def test_versions_read_late_match_their_time(case: tuple[str, list[str]]) -> None:
    """value(v) read only after the whole stream still equals jiter on the prefix of version v."""
    _, deltas = case
    parser = IncrementalJsonParser(emit_ops=False)
    prefix = ""
    expected_at: dict[int, str] = {}
    for delta in deltas:
        parser.feed(delta)
        prefix += delta
        ok, expected = _jiter(prefix, True)
        expected_at[parser.version] = repr(expected) if ok else repr(None)
    parser.finish()
    for version in sorted(expected_at, reverse=True):
        assert repr(parser.value(version)) == expected_at[version]
    # Asking again for a version returns the very same object.
    last = max(expected_at)
    assert parser.value(last) is parser.value(last)


@_SETTINGS
@given(cut_documents())
def test_done_values_are_the_closed_sub_values(case: tuple[str, list[str]]) -> None:
    """pop_done reports every closed sub-value with a path that leads to it in the final value."""
    _, deltas = case
    parser = IncrementalJsonParser(track_done=True, emit_ops=False)
    done: list[tuple[list[str | int], Any]] = []
    for delta in deltas:
        parser.feed(delta)
        done.extend(parser.pop_done())
    final = parser.finish()
    done.extend(parser.pop_done())
    assert done[-1] == ([], final)
    assert done[-1][1] is final
    last: dict[tuple[str | int, ...], Any] = {}
    for path, value in done:
        last[tuple(path)] = value
    reported_twice = {tuple(path) for path, _ in done if sum(1 for p, _ in done if p == path) > 1}
    for path, value in last.items():
        if any(path[:k] in reported_twice for k in range(len(path))):
            continue  # under a duplicate key that was overwritten later
        node = final
        for step in path:
            node = node[step]
        if isinstance(value, dict | list):
            assert node is value
        else:
            assert repr(node) == repr(value)


@_SETTINGS
@given(documents(), st.integers(1, 50))
def test_corrupted_documents_raise_at_the_same_point_whatever_the_cuts(doc: str, where: int) -> None:
    """Inserting a stray character gives one JsonParseError position, however the text is cut."""
    spot = where % (len(doc) + 1)
    bad = doc[:spot] + "}" + doc[spot:]
    try:
        jiter.from_json(bad.encode())
    except ValueError:
        pass
    else:
        assume(False)  # the insertion happened to stay valid, e.g. inside a string
    positions = set()
    for step in (1, 3, len(bad) or 1):
        pieces = [bad[start : start + step] for start in range(0, len(bad), step)]
        with pytest.raises(JsonParseError) as info:
            feed_pieces(IncrementalJsonParser(), pieces)
        assert bad.startswith(info.value.text)
        assert info.value.position < len(info.value.text) or info.value.position == len(bad)
        positions.add(info.value.position)
    assert len(positions) == 1
