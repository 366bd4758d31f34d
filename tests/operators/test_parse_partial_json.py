"""parse_partial_json through the whole pipeline: parsed on deltas, path ops, closed sub-values, errors."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable
from itertools import pairwise
from typing import Any

import jiter
import openai
import pytest
import reactivex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from deltaflow import ChatStream
from deltaflow import operators as ops
from deltaflow.errors import ContentInvalidError, JsonLimitError, JsonParseError
from deltaflow.events import ContentDelta, ContentDone
from deltaflow.partial_json import apply_ops
from tests.chunks import chunk, text_stream
from tests.oracle import assert_same, run_deltaflow, run_openai

# --- the models of the property test -------------------------------------------------------------------


class Point(BaseModel):
    x: float
    y: int


class Tag(BaseModel):
    label: str = Field(alias="tagLabel")
    weight: float | None


class Item(BaseModel):
    name: str
    count: int
    price: float | None
    tags: list[Tag]
    location: Point | None


class Catalog(BaseModel):
    title: str
    items: list[Item]
    owner: Point | None
    notes: list[str]
    places: dict[str, Point]


# Characters JSON must escape, multi-code-point and astral ones, mixed with any encodable character.
_SNIPPETS = ['"', "\\", "/", "\n", "\t", "\b", "\x00", "\x1f", "\u2028", "é", "中文", "😀", "👩\u200d👧"]
_TEXT = st.lists(st.one_of(st.sampled_from(_SNIPPETS), st.characters(codec="utf-8")), max_size=8).map("".join)
_INT = st.one_of(st.integers(-1000, 1000), st.integers(-(10**30), 10**30))
_FLOAT = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.0, 1.0, 5e-324, 1.7976931348623157e308, 1e16, 0.1, -2.5e-8]),
)
_POINT = st.builds(Point, x=_FLOAT, y=_INT)
_TAG = st.builds(lambda label, weight: Tag(tagLabel=label, weight=weight), _TEXT, st.none() | _FLOAT)
_ITEM = st.builds(
    Item,
    name=_TEXT,
    count=_INT,
    price=st.none() | _FLOAT,
    tags=st.lists(_TAG, max_size=3),
    location=st.none() | _POINT,
)
_CATALOG = st.builds(
    Catalog,
    title=_TEXT,
    items=st.lists(_ITEM, max_size=4),
    owner=st.none() | _POINT,
    notes=st.lists(_TEXT, max_size=3),
    places=st.dictionaries(_TEXT, _POINT, max_size=3),
)

# Every way a float may be written that reads back as the same float: shortest repr ("1e+16",
# "5e-324", "-0.0"), 17 significant digits with lower or upper case exponents, an exponent without
# its sign, and %g (which writes integral values without a point: "1", "10000000000000000").
_FLOAT_FORMS: list[Callable[[float], str]] = [
    repr,
    lambda x: f"{x:.17e}",
    lambda x: f"{x:.17E}",
    lambda x: repr(x).replace("e+", "e"),
    lambda x: f"{x:.17g}",
]
_LAYOUTS = [(",", ":"), (", ", ": "), (",\n  ", " : "), ("\t,\r\n", ":\t")]


def _dumps(
    value: Any, *, ensure_ascii: bool, float_form: Callable[[float], str], layout: tuple[str, str]
) -> str:
    """JSON text: strings, ints and literals by ``json.dumps``, floats in ``float_form``."""
    comma, colon = layout

    def dump(item: Any) -> str:
        if isinstance(item, dict):
            return (
                "{"
                + comma.join(
                    json.dumps(k, ensure_ascii=ensure_ascii) + colon + dump(v) for k, v in item.items()
                )
                + "}"
            )
        if isinstance(item, list):
            return "[" + comma.join(dump(v) for v in item) + "]"
        if isinstance(item, float):
            return float_form(item)
        return json.dumps(item, ensure_ascii=ensure_ascii)

    return dump(value)


def _partial(prefix: str) -> Any:
    """openai's ``parsed`` for the content so far (None while it is blank)."""
    return jiter.from_json(prefix.encode(), partial_mode=True) if prefix.strip() else None


def _trailing(prefix: str) -> Any:
    return jiter.from_json(prefix.encode(), partial_mode="trailing-strings") if prefix.strip() else None


def _at(value: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _split(text: str, cuts: list[int]) -> list[str]:
    return [text[start:end] for start, end in pairwise([0, *sorted(cuts), len(text)])]


# --- (1) the property test -----------------------------------------------------------------------------


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    catalog=_CATALOG,
    ensure_ascii=st.booleans(),
    float_form=st.sampled_from(_FLOAT_FORMS),
    layout=st.sampled_from(_LAYOUTS),
    data=st.data(),
)
def test_pipeline_matches_jiter_at_every_delta(
    catalog: Catalog,
    ensure_ascii: bool,
    float_form: Callable[[float], str],
    layout: tuple[str, str],
    data: Any,
) -> None:
    """parsed, replayed ops and chunk snapshots equal jiter's parse of the content as of each event.

    Half of the events are read only after the stream ended: values are as of their event. The
    final value is the model instance, and every closed sub-value arrives validated where the type
    has a model there (list elements in order).
    """
    content = _dumps(
        catalog.model_dump(by_alias=True), ensure_ascii=ensure_ascii, float_form=float_form, layout=layout
    )
    assert Catalog.model_validate_json(content) == catalog
    cuts = data.draw(st.lists(st.integers(0, len(content)), max_size=min(len(content), 40)), label="cuts")
    parts = _split(content, cuts)
    rng = random.Random(data.draw(st.integers(0, 2**32), label="reading seed"))

    stream = ChatStream(iter(text_stream(*parts)), response_format=Catalog, parsed_done=True)
    prefix = ""
    replayed: Any = None
    late: list[tuple[Any, str]] = []  # (event, the content as of it), read after the stream ended
    chunk_events: list[tuple[Any, str]] = []
    done_events = []
    content_done = None
    for event in stream:
        if event.type == "chunk":
            delta = event.chunk.choices[0].delta.content if event.chunk.choices else None
            chunk_events.append((event, prefix + (delta or "")))
        elif event.type == "content.delta":
            # the ops of earlier deltas, replayed, are jiter's trailing-strings view of the text so far
            assert replayed == _trailing(prefix)
            prefix += event.delta
            if rng.random() < 0.5:
                assert event.parsed == _partial(prefix)
            else:
                late.append((event, prefix))
        elif event.type == "content.parsed.delta":
            replayed = apply_ops(replayed, [(event.path, event.op, event.value)])
        elif event.type == "content.parsed.done":
            done_events.append(event)
        elif event.type == "content.done":
            content_done = event
        assert event.type != "error", event

    assert prefix == content
    assert replayed == jiter.from_json(content.encode())
    for event, as_of in late:
        assert event.parsed == _partial(as_of)
    for event, as_of in chunk_events:
        parsed = event.snapshot.choices[0].message.parsed if event.snapshot.choices else None
        if (
            content_done is not None
            and as_of == content
            and parsed is not None
            and isinstance(parsed, Catalog)
        ):
            assert parsed == catalog  # the finish chunk's snapshot: validated already
        else:
            assert parsed == _partial(as_of)
    assert content_done is not None
    assert content_done.parsed == catalog
    assert stream.get_final_completion().choices[0].message.parsed == catalog

    # closed sub-values: each equals the final value there; models where the type has them, in order
    final = jiter.from_json(content.encode())
    for event in done_events:
        value = event.value
        expected = _at(final, event.path)
        if isinstance(value, BaseModel):
            assert value.model_dump(by_alias=True) == expected
        else:
            assert value == expected
    by_path = {event.path: event.value for event in done_events}
    assert by_path[()] == catalog
    item_paths = [event.path for event in done_events if len(event.path) == 2 and event.path[0] == "items"]
    assert item_paths == [("items", index) for index in range(len(catalog.items))]
    for index, item in enumerate(catalog.items):
        assert type(by_path["items", index]) is Item
        assert by_path["items", index] == item
        tag_paths = [
            e.path for e in done_events if e.path[:3] == ("items", index, "tags") and len(e.path) == 4
        ]
        assert tag_paths == [("items", index, "tags", position) for position in range(len(item.tags))]
        for position, tag in enumerate(item.tags):
            assert by_path["items", index, "tags", position] == tag
        assert by_path["items", index, "location"] == item.location
    assert by_path["owner",] == catalog.owner
    for key, point in catalog.places.items():
        assert type(by_path["places", key]) is Point
        assert by_path["places", key] == point


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(catalog=_CATALOG, data=st.data())
def test_a_value_a_user_holds_is_never_changed_afterwards(catalog: Catalog, data: Any) -> None:
    """Every ``parsed`` read from a delta or a chunk's snapshot stays as it was read, to the end.

    Kept objects, not copies: the parser hands each version out once and never changes it, on any
    interpreter (no decision on reference counts). Some values are dropped at once, which must not
    make the parser reuse them either.
    """
    content = json.dumps(catalog.model_dump(by_alias=True))
    cuts = data.draw(st.lists(st.integers(0, len(content)), max_size=min(len(content), 40)), label="cuts")
    keep = data.draw(st.lists(st.booleans(), min_size=2 * len(cuts) + 8), label="keep")
    held: list[tuple[Any, str]] = []
    stream = ChatStream(iter(text_stream(*_split(content, cuts))), response_format=Catalog)
    for position, event in enumerate(stream):
        if event.type == "content.delta":
            value = event.parsed
        elif event.type == "chunk" and event.snapshot.choices:
            value = event.snapshot.choices[0].message.parsed
        else:
            continue
        if keep[position % len(keep)] or not held:
            held.append((value, repr(value)))
        del value
    assert held
    for value, as_read in held:
        assert repr(value) == as_read


# --- (2) json_schema request dict -------------------------------------------------------------------------

CATALOG_SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "Catalog", "schema": Catalog.model_json_schema(), "strict": True},
}
SMALL = '{"title": "t", "items": [], "owner": {"x": 1.5, "y": 2}, "notes": ["a"], "places": {}}'


def _all(chunks: list[Any], **options: Any) -> tuple[list[Any], ChatStream[Any]]:
    stream: ChatStream[Any] = ChatStream(iter(chunks), parse_errors="keep", **options)
    return list(stream), stream


def test_json_schema_dict_gets_path_events_but_no_parsed() -> None:
    """As openai: no parsed anywhere for a request dict; the path events are deltaflow's own."""
    chunks = text_stream(*_split(SMALL, [5, 17, 30, 44, 60]))
    events, stream = _all(chunks, response_format=CATALOG_SCHEMA)
    ops_events = [event for event in events if event.type == "content.parsed.delta"]
    assert ops_events
    assert apply_ops(None, [(e.path, e.op, e.value) for e in ops_events]) == json.loads(SMALL)
    assert all(event.parsed is None for event in events if event.type in {"content.delta", "content.done"})
    assert stream.get_final_completion().choices[0].message.parsed is None
    assert not [event for event in events if event.type == "error"]
    assert_same(
        run_openai(chunks, response_format=CATALOG_SCHEMA),
        run_deltaflow(chunks, response_format=CATALOG_SCHEMA),
    )


def test_other_response_formats_pass_through() -> None:
    """json_object and plain text are not parsed: no path events, events untouched."""
    for response_format in ({"type": "json_object"}, {"type": "text"}, None):
        events, _ = _all(text_stream('{"a":', " 1}"), response_format=response_format)
        assert not [event for event in events if event.type.startswith("content.parsed")]


# --- (3) refusals ---------------------------------------------------------------------------------------


def _refusal_stream(*parts: str, content: tuple[str, ...] = ()) -> list[Any]:
    return [
        chunk({"delta": {"role": "assistant", "content": "" if content else None, "refusal": None}}),
        *(chunk({"delta": {"content": part}}) for part in content),
        *(chunk({"delta": {"refusal": part}}) for part in parts),
        chunk({"delta": {}, "finish_reason": "stop"}),
    ]


def test_refusal_has_no_parsed_and_no_content_done() -> None:
    """A refused structured answer: no parsed, no content.done, final parsed None, as openai."""
    chunks = _refusal_stream("I can", "not help with that.")
    events, stream = _all(chunks, response_format=Catalog, parsed_done=True)
    types = [event.type for event in events]
    assert "content.done" not in types
    assert not [t for t in types if t.startswith("content.") or t == "error"]
    message = stream.get_final_completion().choices[0].message
    assert message.parsed is None
    assert message.refusal == "I cannot help with that."
    assert_same(run_openai(chunks, response_format=Catalog), run_deltaflow(chunks, response_format=Catalog))


def test_refusal_after_some_content_stops_parsed() -> None:
    """Once the refusal is non-empty, parsed is None on deltas, snapshots and content.done (as openai)."""
    chunks = [
        chunk({"delta": {"role": "assistant", "content": "", "refusal": None}}),
        chunk({"delta": {"content": '{"title": "x",'}}),
        chunk({"delta": {"refusal": "no"}}),
        chunk({"delta": {"content": ' "items": ['}}),
        chunk({"delta": {}, "finish_reason": "stop"}),
    ]
    events, stream = _all(chunks, response_format=Catalog)
    deltas = [event for event in events if event.type == "content.delta"]
    assert [event.parsed for event in deltas] == [None, {"title": "x"}, None]
    done = next(event for event in events if event.type == "content.done")
    assert done.parsed is None
    assert not [event for event in events if event.type == "error"]
    assert stream.get_final_completion().choices[0].message.parsed is None
    assert_same(run_openai(chunks, response_format=Catalog), run_deltaflow(chunks, response_format=Catalog))


# --- (4) invalid JSON -----------------------------------------------------------------------------------


def test_invalid_json_gives_one_error_and_the_stream_completes() -> None:
    """One error event with the position (characters and UTF-8 bytes) and the raw text; content kept."""
    parts = ['{"title": "é",', " oops", '}, "more": 1}']
    events, stream = _all(text_stream(*parts), response_format=Catalog, parsed_done=True)
    errors = [event for event in events if event.type == "error"]
    assert len(errors) == 1
    error = errors[0]
    assert error.code == "content_invalid"
    assert error.choice_index == 0
    exc = error.exception
    assert type(exc) is JsonParseError
    assert exc.position == len('{"title": "é", ')
    assert exc.text == "".join(parts[:2])
    assert error.detail == {"position": exc.position, "byte_position": exc.position + 1}  # é is 2 bytes
    assert exc.completion is not None
    assert exc.completion.choices[0].message.content == "".join(parts[:2])
    # the error comes right after the delta that broke the JSON; later deltas stream, unparsed
    position = events.index(error)
    assert events[position - 1].type == "content.delta"
    assert events[position - 1].delta == " oops"
    deltas = [event for event in events if event.type == "content.delta"]
    assert [event.parsed for event in deltas] == [None, {"title": "é"}, None, None]
    assert not [event for event in events[position:] if event.type.startswith("content.parsed")]
    done = next(event for event in events if event.type == "content.done")
    assert done.content == "".join(parts)
    assert done.parsed is None
    assert events[-1].type == "completion.done"
    message = stream.get_final_completion().choices[0].message
    assert message.content == "".join(parts)
    assert message.parsed is None


def test_json_cut_short_is_reported_at_content_done() -> None:
    """A valid prefix that never closes: the error names the end of the text."""
    events, stream = _all(text_stream('{"title": "a",', ' "items": ['), response_format=Catalog)
    errors = [event for event in events if event.type == "error"]
    assert len(errors) == 1
    assert type(errors[0].exception) is JsonParseError
    assert errors[0].exception.position == len('{"title": "a", "items": [')
    assert events[events.index(errors[0]) - 1].type == "content.done"
    assert stream.get_final_completion().choices[0].message.parsed is None


def test_valid_json_of_the_wrong_shape_is_a_validation_error() -> None:
    """JSON that parses but does not fit the model: one error event, pydantic's error as the cause."""
    events, stream = _all(text_stream('{"title": 3}'), response_format=Catalog)
    errors = [event for event in events if event.type == "error"]
    assert len(errors) == 1
    exc = errors[0].exception
    assert isinstance(exc, ContentInvalidError)
    assert isinstance(exc, ValueError)  # what openai's helper raises (a ValidationError) is one too
    assert isinstance(exc.__cause__, ValidationError)
    assert exc.text == '{"title": 3}'
    assert exc.errors == errors[0].detail["errors"]
    assert exc.completion is not None
    assert [event.parsed for event in events if event.type == "content.delta"] == [None, {"title": 3}]
    assert stream.get_final_completion().choices[0].message.parsed is None


def test_parsed_is_none_while_the_content_is_blank() -> None:
    """Leading white-space: no parsed until something parses (openai's lstrip guard)."""
    chunks = text_stream("  \n", ' {"title"', ': "x"}')
    events, _ = _all(chunks, response_format=Catalog)
    assert [event.parsed for event in events if event.type == "content.delta"] == [
        None,
        None,
        {},
        {"title": "x"},
    ]


# --- (5) bounds ---------------------------------------------------------------------------------------


def test_deep_nesting_is_an_error_event_not_a_crash() -> None:
    """100,000 '[': one JsonLimitError at the first bracket past max_depth, then the stream goes on."""
    events, stream = _all(text_stream(*(["[" * 1000] * 100)), response_format=Catalog)
    errors = [event for event in events if event.type == "error"]
    assert len(errors) == 1
    exc = errors[0].exception
    assert type(exc) is JsonLimitError
    assert exc.position == 256
    assert errors[0].detail["position"] == 256
    message = stream.get_final_completion().choices[0].message
    assert message.content == "[" * 100_000
    assert message.parsed is None


def _operator_events(chunks: list[Any], **options: Any) -> list[Any]:
    events: list[Any] = []
    failures: list[Any] = []
    reactivex.from_iterable(chunks).pipe(ops.accumulate(), ops.parse_partial_json(**options)).subscribe(
        events.append, failures.append
    )
    assert not failures
    return events


def test_max_depth_and_max_size_are_configurable() -> None:
    """The bounds are the operator's parameters; each breach is one error event at its position."""
    deep = _operator_events(text_stream('{"a": [[[', "[1]]]]}"), response_format=Catalog, max_depth=3)
    errors = [event for event in deep if event.type == "error"]
    assert len(errors) == 1
    assert type(errors[0].exception) is JsonLimitError
    assert errors[0].exception.position == len('{"a": [[')

    big = _operator_events(text_stream('{"title": "', "x" * 50, '"}'), response_format=Catalog, max_size=40)
    errors = [event for event in big if event.type == "error"]
    assert len(errors) == 1
    assert type(errors[0].exception) is JsonLimitError
    assert errors[0].exception.position == 40

    with pytest.raises(ValueError, match="max_depth"):
        ops.parse_partial_json(response_format=Catalog, max_depth=0)
    with pytest.raises(ValueError, match="max_size"):
        ops.parse_partial_json(response_format=Catalog, max_size=0)


class Blob(BaseModel):
    text: str


def test_a_multi_megabyte_string_streams() -> None:
    """8 MB of string value (escapes included) in 64 KB deltas: parsed, ops and final value complete."""
    unit = 'some text \\"quoted\\" \\u00e9\\ud83d\\ude00 and more\\n'
    decoded = json.loads(f'"{unit}"')
    repeats = 8 * 1024 * 1024 // len(unit)
    content = '{"text": "' + unit * repeats + '"}'
    parts = [content[start : start + 65536] for start in range(0, len(content), 65536)]
    appended = 0
    last_delta = None
    for event in ChatStream(iter(text_stream(*parts)), response_format=Blob):
        if event.type == "content.parsed.delta":
            assert event.path in {(), ("text",)}
            appended += len(event.value) if event.path else 0
        elif event.type == "content.delta":
            last_delta = event
        elif event.type == "content.done":
            assert len(event.parsed.text) == len(decoded) * repeats
            assert event.parsed.text == decoded * repeats
        assert event.type != "error"
    assert appended == len(decoded) * repeats
    assert last_delta is not None
    assert last_delta.parsed == {"text": decoded * repeats}


# --- (6) switches -------------------------------------------------------------------------------------


def test_parsed_deltas_false_emits_no_path_events() -> None:
    """parsed_deltas=False: no content.parsed.delta, parsed on deltas and the final model as before."""
    chunks = text_stream(*_split(SMALL, [3, 20, 50]))
    events, stream = _all(chunks, response_format=Catalog, parsed_deltas=False)
    assert not [event for event in events if event.type == "content.parsed.delta"]
    deltas = [event for event in events if event.type == "content.delta"]
    assert deltas[-1].parsed == json.loads(SMALL)
    assert stream.get_final_completion().choices[0].message.parsed == Catalog.model_validate_json(SMALL)
    assert_same(run_openai(chunks, response_format=Catalog), run_deltaflow(chunks, response_format=Catalog))


def test_parsed_done_is_off_by_default() -> None:
    events, _ = _all(text_stream(SMALL), response_format=Catalog)
    assert not [event for event in events if event.type == "content.parsed.done"]


def test_two_choices_are_parsed_apart() -> None:
    """n=2 interleaved: each choice's parsed follows its own content."""
    chunks = [
        chunk({"index": 0, "delta": {"role": "assistant", "content": ""}}),
        chunk({"index": 1, "delta": {"role": "assistant", "content": ""}}),
        chunk({"index": 0, "delta": {"content": '{"title": "zero"'}}),
        chunk({"index": 1, "delta": {"content": '{"title": "one", "notes": ["n"'}}),
        chunk({"index": 0, "delta": {"content": ', "items": [], "owner": null, "notes": [], "places": {}}'}}),
        chunk({"index": 1, "delta": {"content": '], "items": [], "owner": null, "places": {}}'}}),
        chunk({"index": 0, "delta": {}, "finish_reason": "stop"}),
        chunk({"index": 1, "delta": {}, "finish_reason": "stop"}),
    ]
    events, stream = _all(chunks, response_format=Catalog)
    parsed = [(event.choice_index, event.parsed) for event in events if event.type == "content.delta"]
    assert parsed[2:4] == [(0, {"title": "zero"}), (1, {"title": "one", "notes": ["n"]})]
    final = stream.get_final_completion()
    assert [choice.message.parsed.title for choice in final.choices] == ["zero", "one"]
    assert_same(run_openai(chunks, response_format=Catalog), run_deltaflow(chunks, response_format=Catalog))


# --- content.parsed.done: which sub-values arrive as which models ---------------------------------------------


def _done_values(response_format: Any, content: str) -> dict[tuple[str | int, ...], Any]:
    """The ``content.parsed.done`` values by path, content streamed one character at a time."""
    events, _ = _all(text_stream(*content), response_format=response_format, parsed_done=True)
    assert not [event for event in events if event.type == "error"]
    return {event.path: event.value for event in events if event.type == "content.parsed.done"}


class Leaf(BaseModel):
    v: int


class Branch(BaseModel):
    leaf: Leaf
    maybe: Leaf | None
    leaves: list[Leaf]
    by_name: dict[str, Leaf]
    pair: tuple[Leaf, Point]
    many: tuple[Leaf, ...]
    loose: dict[str, Any]


def test_sub_models_nested_optional_lists_dicts_tuples() -> None:
    content = json.dumps(
        {
            "leaf": {"v": 1},
            "maybe": {"v": 2},
            "leaves": [{"v": 3}, {"v": 4}],
            "by_name": {"a": {"v": 5}},
            "pair": [{"v": 6}, {"x": 1.5, "y": 7}],
            "many": [{"v": 8}],
            "loose": {"v": 9},
        }
    )
    done = _done_values(Branch, content)
    assert done["leaf",] == Leaf(v=1)
    assert done["maybe",] == Leaf(v=2)
    assert done["leaves", 0] == Leaf(v=3)
    assert done["leaves", 1] == Leaf(v=4)
    assert done["by_name", "a"] == Leaf(v=5)
    assert done["by_name",] == {"a": {"v": 5}}  # the dict itself is no model
    assert done["pair", 0] == Leaf(v=6)
    assert done["pair", 1] == Point(x=1.5, y=7)
    assert done["many", 0] == Leaf(v=8)
    assert done["loose",] == {"v": 9}  # Any: left as parsed
    assert done["leaf", "v"] == 1
    assert done[()] == Branch.model_validate_json(content)


class Aliased(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    first_leaf: Leaf
    other_leaf: Leaf = Field(validation_alias=AliasChoices("other", "alsoOther"))


class Holder(BaseModel):
    tag: Tag
    aliased: Aliased


def test_sub_models_found_by_alias() -> None:
    """Keys are the validation aliases (Field alias, alias generator, AliasChoices) and, if allowed, names."""
    done = _done_values(
        Holder,
        '{"tag": {"tagLabel": "t", "weight": null},'
        ' "aliased": {"firstLeaf": {"v": 1}, "alsoOther": {"v": 2}, "first_leaf": {"v": 3}}}',
    )
    assert done["tag",] == Tag(tagLabel="t", weight=None)
    assert done["aliased", "firstLeaf"] == Leaf(v=1)
    assert done["aliased", "alsoOther"] == Leaf(v=2)
    assert done["aliased", "first_leaf"] == Leaf(v=3)  # populate_by_name


class Cat(BaseModel):
    meow: str


class Dog(BaseModel):
    bark: str


class Node(BaseModel):
    name: str
    children: list[Node]
    pet: Cat | Dog | None = None


def test_sub_models_unions_and_recursion() -> None:
    """A union picks the model that fits (pydantic's smart mode); recursive models map at any depth."""
    content = json.dumps(
        {
            "name": "root",
            "pet": {"bark": "woof"},
            "children": [{"name": "a", "children": [{"name": "b", "children": [], "pet": {"meow": "m"}}]}],
        }
    )
    done = _done_values(Node, content)
    assert done["pet",] == Dog(bark="woof")
    assert done["children", 0, "children", 0, "pet"] == Cat(meow="m")
    assert type(done["children", 0, "children", 0]) is Node
    assert done["children", 0] == Node.model_validate_json(content).children[0]


def test_a_sub_value_that_fails_its_model_arrives_as_parsed() -> None:
    events, _ = _all(text_stream('{"leaf": {"v": "x"}, "rest": 1}'), response_format=Branch, parsed_done=True)
    done = {event.path: event.value for event in events if event.type == "content.parsed.done"}
    assert done["leaf",] == {"v": "x"}
    assert [event.code for event in events if event.type == "error"] == ["content_invalid"]  # at content.done


@dataclasses.dataclass
class Box:
    leaf: Leaf
    size: int


def test_dataclass_response_format() -> None:
    events, stream = _all(
        text_stream('{"leaf": {"v": 1}', ', "size": 2}'), response_format=Box, parsed_done=True
    )
    done = {event.path: event.value for event in events if event.type == "content.parsed.done"}
    assert done["leaf",] == Leaf(v=1)
    assert done[()] == Box(leaf=Leaf(v=1), size=2)
    assert stream.get_final_completion().choices[0].message.parsed == Box(leaf=Leaf(v=1), size=2)


def test_operator_works_on_events_without_an_accumulator() -> None:
    """Events built by hand (no CompletionState): parsed and ops all the same."""
    source = [
        ContentDelta(choice_index=0, delta='{"v"', snapshot='{"v"'),
        ContentDelta(choice_index=0, delta=": 1}", snapshot='{"v": 1}'),
        ContentDone(choice_index=0, content='{"v": 1}'),
    ]
    events: list[Any] = []
    reactivex.from_iterable(source).pipe(
        ops.parse_partial_json(response_format=Leaf, parsed_done=True)
    ).subscribe(events.append)
    assert [event.type for event in events] == [
        "content.delta", "content.parsed.delta",
        "content.delta", "content.parsed.delta", "content.parsed.done", "content.parsed.done",
        "content.done",
    ]  # fmt: skip
    assert [event.parsed for event in events if event.type == "content.delta"] == [{}, {"v": 1}]
    assert events[-1].parsed == Leaf(v=1)
    assert events[-2].value == Leaf(v=1)


# --- tools: each call validated at its done -------------------------------------------------------------


def test_parallel_pydantic_tool_calls_are_validated_per_call() -> None:
    """Two pydantic tools called in parallel: each done carries its own model (as openai)."""
    tools = [openai.pydantic_function_tool(Point), openai.pydantic_function_tool(Leaf)]
    calls = [("call_a", "Point", ['{"x": 1', '.5, "y": 2}']), ("call_b", "Leaf", ['{"v":', " 3}"])]
    chunks = [chunk({"delta": {"role": "assistant", "content": None}})]
    for index, (call_id, name, parts) in enumerate(calls):
        header = {
            "index": index,
            "id": call_id,
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        chunks.append(chunk({"delta": {"tool_calls": [header]}}))
        chunks += [
            chunk({"delta": {"tool_calls": [{"index": index, "function": {"arguments": part}}]}})
            for part in parts
        ]
    chunks.append(chunk({"delta": {}, "finish_reason": "tool_calls"}))
    events, stream = _all(chunks, tools=tools)
    done = [event for event in events if event.type == "tool_calls.function.arguments.done"]
    assert [event.parsed_arguments for event in done] == [Point(x=1.5, y=2), Leaf(v=3)]
    final = stream.get_final_completion().choices[0].message.tool_calls
    assert [call.function.parsed_arguments for call in final] == [Point(x=1.5, y=2), Leaf(v=3)]
    assert_same(run_openai(chunks, tools=tools), run_deltaflow(chunks, tools=tools))
