"""Unit tests of IncrementalJsonParser: values, ops, escapes, numbers, literals, snapshots, completion."""

from __future__ import annotations

import math
from typing import Any

import jiter
import pytest

from deltaflow.errors import JsonLimitError, JsonParseError
from deltaflow.partial_json import IncrementalJsonParser, JsonOp, apply_ops


def feed_all(deltas: list[str], **kwargs: Any) -> tuple[IncrementalJsonParser, list[JsonOp]]:
    parser = IncrementalJsonParser(**kwargs)
    ops: list[JsonOp] = []
    for delta in deltas:
        ops.extend(parser.feed(delta))
    return parser, ops


def feed_pieces(parser: IncrementalJsonParser, pieces: list[str], *, finish: bool = False) -> None:
    for piece in pieces:
        parser.feed(piece)
    if finish:
        parser.finish()


def jiter_or_none(text: str, mode: Any = True) -> Any:
    try:
        return jiter.from_json(text.encode(), partial_mode=mode)
    except ValueError:
        return None


def check_all_cuts(doc: str) -> None:
    """Feed ``doc`` cut at every pair of positions and compare every prefix with jiter."""
    for first in range(len(doc) + 1):
        for second in range(first, len(doc) + 1):
            parser = IncrementalJsonParser()
            root: Any = None
            for start, end in ((0, first), (first, second), (second, len(doc))):
                root = apply_ops(root, parser.feed(doc[start:end]))
                prefix = doc[:end]
                assert repr(parser.value()) == repr(jiter_or_none(prefix)), prefix
                assert repr(root) == repr(jiter_or_none(prefix, "trailing-strings")), prefix
            assert repr(parser.finish()) == repr(jiter.from_json(doc.encode()))


# ---------------------------------------------------------------- values match jiter


@pytest.mark.parametrize(
    ("prefix", "partial", "trailing"),
    [
        ('{"a": "hel', {}, {"a": "hel"}),
        ('{"a": 12', {"a": 12}, {"a": 12}),
        ('{"a": tr', {}, {}),
        ('{"a"', {}, {}),
        ('{"a":', {}, {}),
        ("[1, ", [1], [1]),
        ("[1.", [], []),
        ("[-", [], []),
        ('["x\\u12', [], ["x"]),
        ('{"a": [1, {"b": nu', {"a": [1, {}]}, {"a": [1, {}]}),
        ('{"ab', {}, {}),
        ('{"a": 1, "b', {"a": 1}, {"a": 1}),
        ('["', [], [""]),
        ("[1e", [], []),
        ("[1e-", [], []),
        ("[1E+2", [100.0], [100.0]),
        ("[Infinit", [], []),
        ("[-Inf", [], []),
    ],
)
def test_prefix_values_match_jiter_examples(prefix: str, partial: Any, trailing: Any) -> None:
    """Known jiter answers for prefixes hold for value() and value_trailing_strings()."""
    parser, _ = feed_all([prefix])
    assert repr(parser.value()) == repr(partial) == repr(jiter.from_json(prefix.encode(), partial_mode=True))
    assert repr(parser.value_trailing_strings()) == repr(trailing)


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ("0", 0),
        ("-0", 0),
        ("-0.0", -0.0),
        ("12", 12),
        ("1.5", 1.5),
        ("1e5", 100000.0),
        ("1E+2", 100.0),
        ("1e-2", 0.01),
        ("123456789012345678901234567890", 123456789012345678901234567890),
        ("1e400", math.inf),
        ("-1e400", -math.inf),
        ("1e-400", 0.0),
        ("true", True),
        ("false", False),
        ("null", None),
        ("Infinity", math.inf),
        ("-Infinity", -math.inf),
        ('"x"', "x"),
        ("[]", []),
        ("{}", {}),
    ],
)
def test_root_scalars_and_types(doc: str, expected: Any) -> None:
    """Top-level values finish with jiter's exact value and type (int vs float, -0, big ints, inf)."""
    parser, _ = feed_all([doc])
    result = parser.finish()
    assert repr(result) == repr(expected) == repr(jiter.from_json(doc.encode()))


def test_nan_literal_is_a_float_nan() -> None:
    """NaN is accepted (jiter's allow_inf_nan default) and parses to a float NaN, also inside arrays."""
    parser, _ = feed_all(["[Na", "N, 1]"])
    value = parser.finish()
    assert isinstance(value[0], float)
    assert math.isnan(value[0])
    assert value[1] == 1


@pytest.mark.parametrize(
    ("prefix", "included"),
    [
        ("1", 1),
        ("12", 12),
        ("0", 0),
        ("-0", 0),
        ("-", None),
        ("1.", None),
        ("1.5", 1.5),
        ("1e", None),
        ("1e-", None),
        ("1e+", None),
        ("1e5", 100000.0),
        ("-1.0e1", -10.0),
    ],
)
def test_trailing_number_is_included_exactly_when_it_parses(prefix: str, included: Any) -> None:
    """A number cut at the end of the text is in the value only once its text is a complete number."""
    parser, _ = feed_all([prefix])
    assert parser.has_value is (included is not None)
    assert repr(parser.value()) == repr(included) == repr(jiter_or_none(prefix))
    in_array, _ = feed_all(["[", prefix])
    assert repr(in_array.value()) == repr([] if included is None else [included])


def test_whole_documents_at_every_two_cuts_match_jiter() -> None:
    """Small documents cut at every pair of positions agree with jiter after every delta."""
    check_all_cuts('{"a": [1, -2.5e3, true, null], "b": {"c": "x\\n"}, "d": []}')
    check_all_cuts('[ "\\ud83d\\ude00", -0, 0.5, NaN, -Infinity , {} ]')


# ---------------------------------------------------------------- ops


def test_ops_for_each_kind() -> None:
    """add introduces keys/elements, append grows a streaming string, replace and remove follow a number."""
    parser = IncrementalJsonParser()
    assert parser.feed('{"s": "he') == [JsonOp((), "add", {}), JsonOp(("s",), "add", "he")]
    assert parser.feed("llo") == [JsonOp(("s",), "append", "llo")]
    assert parser.feed('", "n": [1') == [
        JsonOp(("n",), "add", []),
        JsonOp(("n", 0), "add", 1),
    ]
    assert parser.feed("2") == [JsonOp(("n", 0), "replace", 12)]
    assert parser.feed(".") == [JsonOp(("n", 0), "remove", None)]
    assert parser.feed("5") == [JsonOp(("n", 0), "add", 12.5)]
    assert parser.feed("]") == []
    assert parser.feed(', "t": true}') == [JsonOp(("t",), "add", True)]
    assert apply_ops(None, []) is None


def test_string_in_one_delta_is_a_single_add() -> None:
    """A string that opens and closes within one delta yields one add with its whole text."""
    _, ops = feed_all(['["abc", "d\\"e"]'])
    assert ops == [JsonOp((), "add", []), JsonOp((0,), "add", "abc"), JsonOp((1,), "add", 'd"e')]


def test_root_string_ops_and_values() -> None:
    """A streaming top-level string is absent from value() but present in trailing-strings and ops."""
    parser = IncrementalJsonParser()
    root = apply_ops(None, parser.feed('"ab'))
    assert root == "ab"
    assert parser.value_trailing_strings() == "ab"
    assert not parser.has_value
    assert parser.value() is None
    root = apply_ops(root, parser.feed('c"'))
    assert root == "abc"
    assert parser.value() == "abc"
    assert parser.complete


def test_op_values_are_not_the_live_containers() -> None:
    """Containers in ops are fresh empty objects, so replaying never aliases the parser's state."""
    parser = IncrementalJsonParser()
    (op,) = parser.feed("[")
    parser.feed("1, 2")
    assert op.value == []
    assert parser.value() == [1, 2]


def test_duplicate_key_number_that_stops_parsing_restores_the_earlier_value() -> None:
    """With a duplicate key, a number going unparseable shows the earlier value again, like jiter."""
    parser = IncrementalJsonParser()
    root = apply_ops(None, parser.feed('{"a": 1, "b": 2, "a": 3'))
    assert parser.value() == {"a": 3, "b": 2}
    root = apply_ops(root, parser.feed("."))
    assert (
        parser.value() == {"a": 1, "b": 2} == jiter.from_json(b'{"a": 1, "b": 2, "a": 3.', partial_mode=True)
    )
    assert root == {"a": 1, "b": 2}
    root = apply_ops(root, parser.feed("5}"))
    assert parser.finish() == {"a": 3.5, "b": 2} == root
    assert list(parser.finish()) == ["a", "b"]


def test_duplicate_keys_last_wins_at_first_position() -> None:
    """Duplicate keys keep the first position and the last value, as jiter does, also mid-stream."""
    doc = '{"a": 1, "b": 2, "a": [3], "a": "x"}'
    for cut in range(len(doc) + 1):
        parser, _ = feed_all([doc[:cut], doc[cut:]])
        assert repr(parser.finish()) == repr(jiter.from_json(doc.encode()))
    parser, _ = feed_all(['{"a": 1, "a": ['])
    assert parser.value() == {"a": []}


# ---------------------------------------------------------------- strings and escapes


@pytest.mark.parametrize(
    ("escape", "char"),
    [
        ("\\n", "\n"),
        ('\\"', '"'),
        ("\\\\", "\\"),
        ("\\/", "/"),
        ("\\b", "\b"),
        ("\\f", "\f"),
        ("\\r", "\r"),
        ("\\t", "\t"),
        ("\\u00e9", "é"),
        ("\\u0000", "\x00"),
        ("\\uFFFF", "\uffff"),
        ("\\ud83d\\ude00", "😀"),
        ("\\uDBFF\\uDFFF", "\U0010ffff"),
    ],
)
def test_escapes_split_at_every_position(escape: str, char: str) -> None:
    """Every escape decodes the same however the delta boundaries cut through it."""
    doc = f'["a{escape}b"]'
    for cut in range(len(doc) + 1):
        parser, ops = feed_all([doc[:cut], doc[cut:]])
        assert parser.finish() == [f"a{char}b"]
        assert apply_ops(None, ops) == [f"a{char}b"]


def test_surrogate_pair_split_across_three_feeds() -> None:
    """A surrogate pair cut at any two positions decodes to one astral character."""
    check_all_cuts('["\\ud83d\\ude00"]')


@pytest.mark.parametrize(
    ("doc", "position"),
    [
        ('"\\ud800"', 7),  # high surrogate then the closing quote
        ('"\\ud83d x"', 7),
        ('"\\ud83d\\n"', 8),  # a backslash, but not \u
        ('"\\ude00"', 6),  # lone low surrogate: at its last hex digit, as jiter
        ('"\\ud83d\\u0041"', 12),  # high surrogate followed by a non-surrogate escape
        ('"\\ud83d\\ud83d"', 12),
        ('"\\uzzzz"', 3),
        ('"\\u12g4"', 5),
        ('"\\x"', 2),
    ],
)
def test_bad_escapes_and_lone_surrogates_raise_where_jiter_does(doc: str, position: int) -> None:
    """Invalid escapes and lone surrogates raise JsonParseError at the position jiter reports."""
    with pytest.raises(JsonParseError) as info:
        feed_all([doc])
    assert info.value.position == position
    assert info.value.text == doc
    with pytest.raises(ValueError, match=f"column {position + 1}"):
        jiter.from_json(doc.encode())


def test_incomplete_escape_is_left_out_of_trailing_strings() -> None:
    """An escape cut before its end shows no character yet, like jiter's trailing-strings mode."""
    for prefix in ('["x\\', '["x\\u', '["x\\u00', '["x\\ud83d', '["x\\ud83d\\', '["x\\ud83d\\ude0'):
        parser, ops = feed_all([prefix])
        assert (
            parser.value_trailing_strings()
            == ["x"]
            == jiter.from_json(prefix.encode(), partial_mode="trailing-strings")
        )
        assert apply_ops(None, ops) == ["x"]


def test_unicode_text_in_keys_and_values() -> None:
    """Non-ASCII and astral characters pass through raw, in keys and values, cut anywhere."""
    check_all_cuts('{"clé": "θήτα 😀", "😀": ["é"]}')


@pytest.mark.parametrize("char", ["\x00", "\x1f", "\n", "\t"])
def test_control_characters_in_strings_are_rejected(char: str) -> None:
    """Raw control characters inside a string raise at their position; DEL (0x7f) is allowed."""
    with pytest.raises(JsonParseError) as info:
        feed_all([f'["ab{char}"]'])
    assert info.value.position == 4
    parser, _ = feed_all(['["a\x7f"]'])
    assert parser.finish() == ["a\x7f"]


def test_keys_streamed_in_pieces_with_escapes() -> None:
    """Object keys split across deltas, with escapes, become the right keys."""
    parser, _ = feed_all(['{"k\\', "u00e9y", '": 1, "', 'a\\"b": 2}'])
    assert parser.finish() == {"kéy": 1, 'a"b': 2}


def test_long_string_appends_stay_consistent() -> None:
    """A string fed in many deltas replays to the whole text; its parts are joined in blocks."""
    parser = IncrementalJsonParser()
    root = apply_ops(None, parser.feed('{"s": "'))
    for index in range(1000):
        root = apply_ops(root, parser.feed(f"{index % 10}é"))
    assert root["s"] == "".join(f"{index % 10}é" for index in range(1000))
    assert parser.value_trailing_strings() == root
    root = apply_ops(root, parser.feed('"}'))
    assert parser.finish() == root


# ---------------------------------------------------------------- literals, containers, whitespace


@pytest.mark.parametrize("word", ["true", "false", "null", "NaN", "Infinity", "-Infinity"])
def test_literals_split_at_every_position(word: str) -> None:
    """A literal cut anywhere appears only when complete, and then with its value."""
    doc = f'{{"v": {word}}}'
    for cut in range(len(doc) + 1):
        parser, _ = feed_all([doc[:cut]])
        assert repr(parser.value()) == repr(jiter_or_none(doc[:cut]))
        parser.feed(doc[cut:])
        assert repr(parser.finish()) == repr(jiter.from_json(doc.encode()))


@pytest.mark.parametrize("doc", ["tru ", "nulx", "[fals]", "[Nan]", "-I", "[-Infinite]", "nan"])
def test_misspelt_literals_raise(doc: str) -> None:
    """A misspelt literal raises at its first wrong character (or at the end for a prefix)."""
    parser = IncrementalJsonParser()
    with pytest.raises(JsonParseError):
        feed_pieces(parser, [doc], finish=True)


def test_nested_and_empty_containers() -> None:
    """Empty and nested containers keep their shape at every cut."""
    check_all_cuts('[[], {}, [[]], {"a": {"b": []}}]')


def test_whitespace_everywhere() -> None:
    """Space, tab, newline and carriage return are allowed between all tokens."""
    doc = ' \t\n\r{ \n"a" \t: \r[ 1 ,\n2 ] , "b"\n:\n{ } \n} \r\n'
    parser, _ = feed_all(list(doc))
    assert parser.finish() == {"a": [1, 2], "b": {}}


@pytest.mark.parametrize("space", ["\x0c", "\x0b", "\xa0", "\u2028", "\ufeff"])
def test_other_whitespace_is_rejected(space: str) -> None:
    """Form feed, vertical tab, NBSP, line separator and a BOM are not JSON whitespace (jiter agrees)."""
    with pytest.raises(JsonParseError) as info:
        feed_all([f"[1,{space}2]"])
    assert info.value.position == 3
    with pytest.raises(ValueError, match="expected value"):
        jiter.from_json(f"[1,{space}2]".encode())


# ---------------------------------------------------------------- completion


def test_complete_and_finish() -> None:
    """complete turns True when the top-level value closes; trailing whitespace is fine."""
    parser = IncrementalJsonParser()
    parser.feed('{"a": 1')
    assert not parser.complete
    parser.feed("}")
    assert parser.complete
    parser.feed(" \n ")
    assert parser.finish() == {"a": 1}
    assert parser.finish() == {"a": 1}


def test_top_level_number_completes_on_whitespace_or_finish() -> None:
    """A top-level number may still grow, so it is complete only after whitespace or finish()."""
    parser = IncrementalJsonParser()
    parser.feed("12")
    assert not parser.complete
    assert parser.value() == 12
    parser.feed("3")
    assert parser.finish() == 123
    assert parser.complete
    spaced = IncrementalJsonParser()
    spaced.feed("7 ")
    assert spaced.complete


@pytest.mark.parametrize(
    ("text", "position"), [("", 0), ("  ", 2), ("[1, 2", 5), ('{"a": "b', 8), ("1.", 2), ("-", 1)]
)
def test_finish_on_incomplete_input_raises(text: str, position: int) -> None:
    """finish() raises JsonParseError at the end of the text when the document is empty or unfinished."""
    parser = IncrementalJsonParser()
    parser.feed(text)
    with pytest.raises(JsonParseError) as info:
        parser.finish()
    assert info.value.position == position
    assert info.value.text == text


@pytest.mark.parametrize(
    ("doc", "position"),
    [("[1] x", 4), ('{"a": 1}}', 8), ("1 2", 2), ("true false", 5), ('"a""b"', 3), ("{}[]", 2), ("1x", 1)],
)
def test_trailing_garbage_after_a_complete_value_raises(doc: str, position: int) -> None:
    """Anything but whitespace after the top-level value raises at its first character."""
    for cut in range(len(doc) + 1):
        parser = IncrementalJsonParser()
        with pytest.raises(JsonParseError) as info:
            feed_pieces(parser, [doc[:cut], doc[cut:]])
        assert info.value.position == position


def test_has_value() -> None:
    """has_value is False exactly while jiter's partial mode would raise on the text."""
    for text, expected in [("", False), (" \n", False), ('"abc', False), ("tr", False), ("-", False),
                           ("[", True), ("{", True), ("0", True), ("null", True)]:  # fmt: skip
        parser = IncrementalJsonParser()
        parser.feed(text)
        assert parser.has_value is expected, text
        assert (jiter_or_none(text) is not None or text == "null") is expected


# ---------------------------------------------------------------- done values


def test_pop_done_reports_closed_values_in_order() -> None:
    """track_done yields each closed sub-value with its path, children before parents, per feed."""
    parser = IncrementalJsonParser(track_done=True)
    parser.feed('{"a": [1, "x"')
    assert parser.pop_done() == [(["a", 0], 1), (["a", 1], "x")]
    assert parser.pop_done() == []
    parser.feed('], "b": {"c": nu')
    assert parser.pop_done() == [(["a"], [1, "x"])]
    parser.feed("ll}}")
    done = parser.pop_done()
    assert done == [(["b", "c"], None), (["b"], {"c": None}), ([], {"a": [1, "x"], "b": {"c": None}})]
    assert done[-1][1] is parser.finish()


def test_pop_done_for_a_top_level_number_closed_by_finish() -> None:
    """A top-level number closed by finish() is reported by the following pop_done()."""
    parser = IncrementalJsonParser(track_done=True)
    parser.feed("42")
    assert parser.pop_done() == []
    assert parser.finish() == 42
    assert parser.pop_done() == [([], 42)]


def test_emit_ops_false_returns_no_ops() -> None:
    """With emit_ops=False, feed returns an empty list and values are unaffected."""
    parser = IncrementalJsonParser(emit_ops=False)
    assert parser.feed('{"a": "b", "c": [1') == []
    assert parser.value() == {"a": "b", "c": [1]}


# ---------------------------------------------------------------- versions and snapshots


def test_version_changes_only_when_the_value_changes() -> None:
    """Streaming string text or whitespace leaves the version alone; a closed value bumps it."""
    parser = IncrementalJsonParser()
    assert parser.version == 0
    parser.feed('{"a": "x')
    first = parser.version
    parser.feed("yz   ")
    assert parser.version == first
    parser.feed('"')
    assert parser.version == first + 1
    parser.feed("  ,  ")
    assert parser.version == first + 1


def test_value_at_an_old_version_is_the_value_of_that_time() -> None:
    """value(v) read after more deltas is the value as it was when version v was current."""
    parser = IncrementalJsonParser()
    parser.feed('{"items": [1, 2')
    v1 = parser.version
    parser.feed('0, {"a": "b"')
    v2 = parser.version
    parser.feed("}, 3], ")
    v3 = parser.version
    parser.feed('"z": 1.2')
    assert parser.value(v1) == {"items": [1, 2]}
    assert parser.value(v2) == {"items": [1, 20, {"a": "b"}]}
    assert parser.value(v3) == {"items": [1, 20, {"a": "b"}, 3]}
    assert parser.value() == {"items": [1, 20, {"a": "b"}, 3], "z": 1.2}
    assert parser.value(0) is None
    snap = parser.snapshot()
    parser.feed("5}")
    assert snap() == {"items": [1, 20, {"a": "b"}, 3], "z": 1.2}
    with pytest.raises(ValueError, match="version"):
        parser.value(parser.version + 1)


def test_snapshots_share_closed_sub_values() -> None:
    """Closed containers are the same objects in every later snapshot and in the final value."""
    parser = IncrementalJsonParser()
    parser.feed('[{"a": [1]}, ')
    early = parser.value()
    parser.feed("[2")
    later = parser.value()
    parser.feed("]]")
    final = parser.finish()
    assert early[0] is later[0] is final[0]
    assert early == [{"a": [1]}]
    assert later == [{"a": [1]}, [2]]


def test_same_version_returns_the_same_object() -> None:
    """Asking twice for one version returns one object, also for an older version."""
    parser = IncrementalJsonParser()
    parser.feed("[1, ")
    old = parser.version
    first = parser.value()
    assert parser.value() is first
    parser.feed("2, ")
    assert parser.value() is parser.value()
    assert parser.value(old) is first


def test_a_snapshot_handed_out_is_never_changed_whoever_holds_it() -> None:
    """Ownership is explicit: a value handed out is its reader's, kept or dropped; nothing is decided on refcounts."""
    parser = IncrementalJsonParser()
    parser.feed('{"a": [1, ')
    first_id = id(parser.value())  # dropped at once: still never reused for a later version
    kept = parser.value()
    assert id(kept) == first_id  # asked again for the same version: the same object
    parser.feed("2, ")
    second = parser.value()
    assert second is not kept
    assert second["a"] is not kept["a"]  # the open containers are copies of their own
    assert kept == {"a": [1]}
    parser.feed("3], ")
    third = parser.value()
    assert third == {"a": [1, 2, 3]}
    assert second == {"a": [1, 2]}
    assert kept == {"a": [1]}
    parser.feed('"b": 4}')
    final = parser.value()
    assert final["a"] is third["a"]  # closed: shared by every later snapshot, never changed again
    assert third == {"a": [1, 2, 3]}
    assert parser.value(parser.version - 1) is third


def test_errors_are_sticky() -> None:
    """After an error every feed and finish raises the same error again; old snapshots still work."""
    parser = IncrementalJsonParser()
    parser.feed("[1, ")
    version = parser.version
    with pytest.raises(JsonParseError) as first:
        parser.feed("]")
    assert first.value.position == 4
    with pytest.raises(JsonParseError) as again:
        parser.feed("2]")
    assert again.value.position == 4
    assert again.value.text == "[1, ]"
    with pytest.raises(JsonParseError):
        parser.finish()
    assert parser.value(version) == [1]


def test_limit_errors_are_parse_errors() -> None:
    """JsonLimitError is a JsonParseError, so one except clause covers both."""
    parser = IncrementalJsonParser(max_depth=1)
    with pytest.raises(JsonParseError) as info:
        parser.feed("[[")
    assert isinstance(info.value, JsonLimitError)
    assert info.value.position == 1
