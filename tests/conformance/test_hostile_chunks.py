"""Hostile chunk objects: only typed errors escape, and what arrived before the bad chunk is kept.

openai's client builds ``ChatCompletionChunk`` without validation, so a provider's JSON reaches
deltaflow as it was sent: ``choices: null``, a choice that is a string, ``tool_calls: 1.5``, a
thousand nested lists. Every such stream, through ``ChatStream`` / ``AsyncChatStream`` (``openai``
and ``generic`` dialects) and through ``from_chunks(...).pipe(normalize, to_events)``, ends in a
``DeltaflowError`` (or openai's ``LengthFinishReasonError`` / ``ContentFilterFinishReasonError``) or
in a final completion, an ``error`` event standing for the chunk that could not be read. Either way
the completion holds the content and refusal of every choice as it was before the bad chunk.

The streams are openai-python's recordings with fields replaced, deleted or retyped at every level,
and streams made up of hostile shapes after a good start.
"""

from __future__ import annotations

import asyncio
import copy
import json
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import ContentFilterFinishReasonError, LengthFinishReasonError
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

import deltaflow
from deltaflow import operators as ops
from deltaflow._openai_compat import construct
from deltaflow.errors import DeltaflowError, StreamContractError
from deltaflow.events import BaseEvent
from tests.fixtures import OPENAI_FIXTURES, load_openai_fixture, openai_fixture_names, sse_payloads

pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")

TYPED = (DeltaflowError, LengthFinishReasonError, ContentFilterFinishReasonError)
DIALECTS = ("openai", "generic")


def _nested(depth: int, wrap: Any) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = wrap(value)
    return value


DEEP_LIST = _nested(1000, lambda inner: [inner])
DEEP_DICT = _nested(1000, lambda inner: {"a": inner})
HOSTILE_VALUES = [
    None,
    "",
    "x",
    "9",
    0,
    -1,
    7,
    1.5,
    True,
    2**70,
    [],
    {},
    ["x"],
    [None],
    [{"a": 1}],
    {"a": 1},
    DEEP_LIST,
    DEEP_DICT,
]


@dataclass(frozen=True)
class Recording:
    """One of openai-python's recorded streams, as chunk dicts, with its request's tools and format."""

    dicts: list[dict[str, Any]]
    options: dict[str, Any]


def _recordings() -> list[Recording]:
    """openai-python's recorded streams (none when the shared fixtures are absent)."""
    recordings = []
    for name in openai_fixture_names():
        if name == "<missing>":
            return []
        fixture = load_openai_fixture(name)
        recordings.append(
            Recording(
                [json.loads(payload) for payload in sse_payloads(fixture.body)],
                {"tools": fixture.tools, "response_format": fixture.response_format},
            )
        )
    return recordings


RECORDINGS = _recordings()
needs_recordings = pytest.mark.skipif(
    not RECORDINGS,
    reason=f"shared fixtures not found at {OPENAI_FIXTURES}: clone with shared/ beside the checkout",
)


# --- strategies ---------------------------------------------------------------------------------------


def _paths(value: Any, prefix: tuple[Any, ...] = (), depth: int = 0) -> Iterator[tuple[Any, ...]]:
    """Every place in a chunk dict a mutation can hit (not inside a nest we put there ourselves)."""
    yield prefix
    if depth > 6:
        return
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, (*prefix, key), depth + 1)
    elif isinstance(value, list):
        for position, item in enumerate(value[:4]):
            yield from _paths(item, (*prefix, position), depth + 1)


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
    max_leaves=8,
)
_HOSTILE = st.sampled_from(HOSTILE_VALUES) | _JSON


def _as_text(value: Any) -> str:
    try:
        return json.dumps(value)
    except (RecursionError, ValueError):
        return "[[[["


@st.composite
def _mutation(draw: st.DrawFn, chunk: Any) -> Any:
    """``chunk`` with one value replaced, deleted, retyped or one key added, somewhere.

    Only the containers on the way to that value are copied: a nest put there by an earlier
    mutation is shared, not deep-copied.
    """
    path = draw(st.sampled_from(list(_paths(chunk))))
    if not path:
        return draw(_HOSTILE)
    chunk = copy.copy(chunk)
    parent = chunk
    for step in path[:-1]:
        parent[step] = copy.copy(parent[step])
        parent = parent[step]
    key = path[-1]
    operation = draw(st.sampled_from(["replace", "delete", "retype", "add"]))
    if operation == "delete" and isinstance(parent, dict):
        del parent[key]
    elif operation == "retype":
        value = parent[key]
        parent[key] = draw(st.sampled_from([[value], {"value": value}, _as_text(value)]))
    elif operation == "add" and isinstance(parent[key], dict):
        parent[key] = {
            **parent[key],
            draw(
                st.sampled_from(["index", "delta", "content", "tool_calls", "function", "usage", "zz"])
            ): draw(_HOSTILE),
        }
    else:
        parent[key] = draw(_HOSTILE)
    return chunk


@dataclass
class Case:
    """A stream of chunk dicts whose chunks before ``intact`` arrived as the provider sent them."""

    dicts: list[Any]
    intact: int
    options: dict[str, Any] = field(default_factory=dict)
    """The stream's ``tools`` and ``response_format``, for every path."""


@st.composite
def mutated_recordings(draw: st.DrawFn) -> Case:
    """An openai-python recording with one to three chunks mutated."""
    recording = draw(st.sampled_from(RECORDINGS))
    dicts = list(recording.dicts)
    positions = draw(st.lists(st.integers(0, len(dicts) - 1), min_size=1, max_size=3))
    for position in positions:
        dicts[position] = draw(_mutation(dicts[position]))
    return Case(dicts, min(positions), recording.options)


def _field(plausible: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return plausible | _HOSTILE


_FRAGMENTS = st.fixed_dictionaries(
    {},
    optional={
        "index": _field(st.integers(0, 2)),
        "id": _field(st.just("call_1")),
        "type": _field(st.just("function")),
        "function": _field(
            st.fixed_dictionaries(
                {}, optional={"name": _field(st.just("f")), "arguments": _field(st.just('{"a"'))}
            )
        ),
    },
)
_DELTAS = st.fixed_dictionaries(
    {},
    optional={
        "role": _field(st.just("assistant")),
        "content": _field(st.text(max_size=3)),
        "refusal": _field(st.text(max_size=3)),
        "reasoning_content": _field(st.text(max_size=3)),
        "tool_calls": _field(st.lists(_FRAGMENTS, max_size=2)),
        "function_call": _field(
            st.fixed_dictionaries(
                {}, optional={"name": _field(st.just("f")), "arguments": _field(st.just("{}"))}
            )
        ),
    },
)
_TOKENS = st.lists(
    _field(st.fixed_dictionaries({"token": _field(st.just("a")), "logprob": _field(st.just(-0.5))})),
    max_size=2,
)
_LOGPROBS = st.fixed_dictionaries({}, optional={"content": _field(_TOKENS), "refusal": _field(_TOKENS)})
_CHOICES = st.fixed_dictionaries(
    {},
    optional={
        "index": _field(st.integers(0, 1)),
        "delta": _field(_DELTAS),
        "finish_reason": _field(st.sampled_from(["stop", "length", "tool_calls"])),
        "logprobs": _field(_LOGPROBS),
    },
)
_CHUNKS = st.fixed_dictionaries(
    {
        "id": st.just("c"),
        "object": st.just("chat.completion.chunk"),
        "created": st.just(1),
        "model": st.just("m"),
    },
    optional={
        "choices": _field(st.lists(_field(_CHOICES), max_size=2)),
        "usage": _field(st.just({"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})),
        "system_fingerprint": _HOSTILE,
        "moderation": _HOSTILE,
    },
)
GOOD_START = [
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}],
    }
    for text in ("", "Hel", "lo")
]


@st.composite
def hostile_streams(draw: st.DrawFn) -> Case:
    """A good start ("Hello"), then one to four chunks of any shape."""
    return Case([*GOOD_START, *draw(st.lists(_CHUNKS, min_size=1, max_size=4))], len(GOOD_START))


# --- running a stream through every path --------------------------------------------------------------


def _chunk_objects(dicts: list[Any]) -> list[Any]:
    """The chunks as openai's client makes them: ``construct``, no validation."""
    return [construct(ChatCompletionChunk, item) for item in dicts]


def _read(events: Iterator[BaseEvent]) -> None:
    for event in events:
        getattr(event, "snapshot", None)  # lazy fields are read as handlers read them


def run_sync(case: Case, dialect: str) -> Any:
    """``ChatStream`` to the end: the final completion, or the typed error's completion."""
    stream = deltaflow.ChatStream(_chunk_objects(case.dicts), dialect=dialect, **case.options)
    try:
        _read(stream)
        return stream.get_final_completion()
    except TYPED as error:
        return error


def run_async(case: Case, dialect: str) -> Any:
    """``AsyncChatStream`` to the end, as ``run_sync``."""

    async def chunks() -> AsyncIterator[Any]:
        for chunk in _chunk_objects(case.dicts):
            yield chunk

    async def consume() -> Any:
        stream = deltaflow.AsyncChatStream(chunks(), dialect=dialect, **case.options)
        try:
            async for _ in stream:
                pass
            return await stream.get_final_completion()
        except TYPED as error:
            return error

    return asyncio.run(consume())


def run_operators(case: Case, dialect: str) -> Any:
    """``from_chunks(...).pipe(normalize, to_events)``: the final completion, or the error it ended with."""
    events: list[BaseEvent] = []
    errors: list[Exception] = []
    chain = (ops.normalize(dialect), ops.to_events(**case.options))
    deltaflow.from_chunks(_chunk_objects(case.dicts)).pipe(*chain).subscribe(events.append, errors.append)
    if errors:
        if not isinstance(errors[0], TYPED):
            raise errors[0]
        return errors[0]
    done = [event for event in events if event.type == "completion.done"]
    assert len(done) == 1
    return done[0].completion  # type: ignore[attr-defined]


RUNNERS = {"sync": run_sync, "async": run_async, "operators": run_operators}
TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def _report_tally(pytestconfig: pytest.Config) -> Iterator[None]:
    """The counts go to the terminal when the module's tests are done."""
    yield
    reporter = pytestconfig.pluginmanager.get_plugin("terminalreporter")
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    if TALLY and reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(
                f"\nhostile chunks: {TALLY['streams']} streams, {TALLY['runs']} runs (3 facades x 2 dialects), "
                f"{TALLY['typed']} ended in a typed error, {TALLY['untyped']} untyped exceptions"
            )


def _before(dicts: list[Any], intact: int) -> Any:
    """openai's helper over the intact chunks: what every path must still hold."""
    if intact == 0:
        return None
    state = ChatCompletionStreamState()
    for item in dicts[:intact]:
        state.handle_chunk(ChatCompletionChunk.model_validate(item))
    return state.current_completion_snapshot


class Held:
    """What a completion holds, per choice: texts and tool calls; ``a >= b`` when ``a`` extends ``b``."""

    def __init__(self, completion: Any) -> None:
        self.texts: dict[tuple[int, str], str] = {}
        for choice in completion.choices:
            message = choice.message
            for text in ("content", "refusal"):
                self.texts[choice.index, text] = getattr(message, text) or ""
            for call in message.tool_calls or []:
                self.texts[choice.index, f"call {call.index} name"] = call.function.name or ""
                self.texts[choice.index, f"call {call.index} arguments"] = call.function.arguments or ""

    def __ge__(self, other: Held) -> bool:
        return all(self.texts.get(key, "").startswith(text) for key, text in other.texts.items())

    def __repr__(self) -> str:
        return repr(self.texts)


def check(case: Case) -> None:
    """Every path ends typed and keeps, per choice, the texts and tool calls that came before."""
    before = _before(case.dicts, case.intact)
    TALLY["streams"] += 1
    for runner in RUNNERS.values():
        for dialect in DIALECTS:
            TALLY["runs"] += 1
            try:
                result = runner(case, dialect)
            except BaseException:
                TALLY["untyped"] += 1
                raise
            completion = result.completion if isinstance(result, BaseException) else result
            TALLY["typed"] += isinstance(result, BaseException)
            if before is None:
                continue
            assert completion is not None, result
            assert Held(completion) >= Held(before), (runner, dialect, result)


@needs_recordings
@settings(
    max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(mutated_recordings())
def test_mutated_recordings_end_typed_and_keep_what_came_before(case: Case) -> None:
    """openai-python's recordings with fields replaced, deleted or retyped at any level: no untyped crash."""
    check(case)


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
@given(hostile_streams())
def test_hostile_shapes_end_typed_and_keep_what_came_before(case: Case) -> None:
    """After "Hello", chunks of any shape: typed errors only, and "Hello" is still there."""
    check(case)


# --- the shapes issue 13 names, one by one -------------------------------------------------------------


def _with(**fields: Any) -> dict[str, Any]:
    return {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m", **fields}


def _choice(delta: Any) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "finish_reason": None}


NAMED = {
    "choices null": _with(choices=None),
    "choice a list": _with(choices=[["x"]]),
    "choice a string": _with(choices=["x"]),
    "delta a string": _with(choices=[_choice("x")]),
    "tool_calls a string": _with(choices=[_choice({"tool_calls": "x"})]),
    "function a string": _with(
        choices=[_choice({"tool_calls": [{"index": 0, "id": "c1", "function": "x"}]})]
    ),
    "numeric tool name": _with(
        choices=[
            _choice({"tool_calls": [{"index": 0, "id": "c1", "type": "function", "function": {"name": 7}}]})
        ]
    ),
    "usage a string": _with(choices=[], usage="x"),
    "choices nested 1000 deep": _with(choices=DEEP_LIST),
    "extra field nested 1000 deep": _with(choices=[_choice({"content": "!"})], extra=DEEP_DICT),
    "content nested 1000 deep": _with(choices=[_choice({"content": DEEP_LIST})]),
}
FINISH = _with(choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("runner", RUNNERS)
@pytest.mark.parametrize("bad", NAMED)
def test_a_named_hostile_chunk_keeps_hello(bad: str, runner: str, dialect: str) -> None:
    """The chunk ends the stream with a typed error, or is reported and skipped: "Hello" is kept either way."""
    result = RUNNERS[runner](Case([*GOOD_START, NAMED[bad], FINISH], len(GOOD_START)), dialect)
    if isinstance(result, BaseException):
        assert isinstance(result, StreamContractError), result
        assert result.completion is not None
        completion = result.completion
    else:
        completion = result
        assert completion.choices[0].finish_reason == "stop"
    assert completion.choices[0].message.content in ("Hello", "Hello!")


@pytest.mark.parametrize("dialect", DIALECTS)
def test_usage_of_the_wrong_type_never_breaks_the_final_completion(dialect: str) -> None:
    """``"usage": "x"`` at the end: a typed error (or a reported chunk), never an AttributeError at the end."""
    stream = deltaflow.ChatStream(
        _chunk_objects([*GOOD_START, FINISH, _with(choices=[], usage="x")]), dialect=dialect
    )
    events = [event.type for event in _events(stream, dialect)]
    if dialect == "generic":
        assert "error" in events
        completion = stream.get_final_completion()
    else:
        with pytest.raises(StreamContractError, match="usage must be an object") as raised:
            stream.get_final_completion()
        completion = raised.value.completion
    assert completion is not None
    assert completion.choices[0].message.content == "Hello"
    assert completion.usage is None


def _events(stream: Any, dialect: str) -> list[BaseEvent]:
    try:
        return list(stream)
    except StreamContractError:
        assert dialect == "openai"
        return []


@pytest.mark.parametrize("runner", RUNNERS)
def test_a_chunk_failing_halfway_is_left_out_whole(runner: str) -> None:
    """Content read before the chunk's bad refusal is not half kept: the snapshot is the one before it."""
    bad = _with(choices=[_choice({"content": " world", "refusal": 5})])
    result = RUNNERS[runner](Case([*GOOD_START, bad, FINISH], len(GOOD_START)), "openai")
    assert isinstance(result, StreamContractError)
    assert result.completion is not None
    assert result.completion.choices[0].message.content == "Hello"


def test_a_payload_nested_1000_deep_is_named_in_a_short_message() -> None:
    """The ``error`` event for a choice nested 1000 deep says what it is, in short; the stream goes on."""
    events: list[BaseEvent] = []
    dicts = [*GOOD_START, NAMED["choices nested 1000 deep"], FINISH]
    deltaflow.from_chunks(_chunk_objects(dicts)).pipe(ops.normalize("generic"), ops.to_events()).subscribe(
        events.append
    )
    errors = [event for event in events if event.type == "error"]
    assert len(errors) == 1
    error: Any = errors[0]
    # pydantic words the depth error its own way (2.11: "Circular reference detected (depth exceeded)",
    # later: "Maximum serialization depth exceeded"): a short message naming it, either way
    assert error.message.startswith("chunk could not be read: ValueError(")
    assert "depth exceeded" in error.message
    assert len(error.message) < 100
    assert error.detail.startswith("ChatCompletionChunk(id='c', choices=[[[[...]]]], created=1")
    assert events[-1].completion.choices[0].message.content == "Hello"  # type: ignore[attr-defined]
