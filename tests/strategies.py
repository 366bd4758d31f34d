"""Hypothesis strategies for OpenAI-conformant ``ChatCompletionChunk`` streams.

A generated stream looks like what the Chat Completions API sends: one completion id, model,
``created`` and ``system_fingerprint`` on every chunk; one choice per chunk, the choices' chunks
interleaved but each choice's own chunks in order; a role chunk first, then content, refusal or
tool-call fragments, then a finish chunk per choice; optionally log probabilities on every chunk of a
choice and a final ``include_usage`` chunk. Tool calls name tools given with the stream (strict and
non-strict dict tools, ``openai.pydantic_function_tool`` tools) and carry arguments that fit them;
content is the JSON of the ``response_format`` model when there is one.

Streams are kept as dicts (``GeneratedStream.chunk_dicts``) and validated afresh for each consumer
(``GeneratedStream.chunks()``), so no implementation sees objects another one touched.

Some conformant-looking streams trip bugs in openai's own ``ChatCompletionStreamState`` (the oracle);
these are not generated, each for the reason given where it is avoided (line numbers are those of
``openai/lib/streaming/chat/_completions.py`` in openai 3.57.0).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass, field
from enum import StrEnum
from itertools import pairwise
from typing import Any, Literal

import openai
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel

__all__ = [
    "PYDANTIC_MODELS",
    "ChoicePlan",
    "GeneratedStream",
    "ToolCallPlan",
    "ToolSpec",
    "chat_streams",
    "content_streams",
    "tool_call_streams",
]

Kind = Literal["content", "refusal", "tool_calls"]


# --- values -------------------------------------------------------------------------------------------

# Multi-code-point snippets (accents, CJK, emoji incl. ZWJ sequences and flags) and the characters
# JSON must escape, mixed with any encodable character.
_SNIPPETS = ["a", "Hé", " ", "中文", "😀", "👩\u200d👩\u200d👧", "🇫🇷", '"', "\\", "\n", "\t", "/", "\u2028"]
_CHARACTER = st.one_of(st.sampled_from(_SNIPPETS), st.characters(codec="utf-8"))


def _texts(max_size: int = 12, min_size: int = 0) -> st.SearchStrategy[str]:
    return st.lists(_CHARACTER, min_size=min_size, max_size=max_size).map("".join)


_KEYS = _texts(max_size=6)
_INTS = st.one_of(st.integers(-1000, 1000), st.integers(-(2**70), 2**70))
# finite only: pydantic writes inf/nan as null and json.dumps writes non-JSON Infinity/NaN
_FLOATS = st.floats(allow_nan=False, allow_infinity=False)
_JSON_SCALARS = st.one_of(st.none(), st.booleans(), _INTS, _FLOATS, _texts())
_JSON_VALUES = st.recursive(
    _JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=6,
)
_JSON_OBJECTS = st.dictionaries(_KEYS, _JSON_VALUES, max_size=4)


@st.composite
def _json_text(draw: st.DrawFn, value: Any) -> str:
    """``value`` as JSON text, in one of the layouts a model may produce.

    Never with leading white-space: openai partially parses tool arguments with ``jiter.from_json``
    without the ``.lstrip()`` guard it has for content (line 459 vs line 439), so arguments such
    as ``" {"`` raise ValueError inside openai's helper.
    """
    return json.dumps(
        value,
        ensure_ascii=draw(st.booleans()),
        separators=draw(st.sampled_from([None, (",", ":")])),
        indent=draw(st.sampled_from([None, None, 2])),
    )


# --- pydantic models: response formats and pydantic tools ---------------------------------------------


class Units(StrEnum):
    """Temperature units."""

    CELSIUS = "c"
    FAHRENHEIT = "f"


class Weather(BaseModel):
    """A response format / tool with scalars, an enum and a list."""

    city: str
    units: Units
    temperature: float
    days: list[int]


class Item(BaseModel):
    """A nested model."""

    name: str
    quantity: int
    tags: list[str]


class Order(BaseModel):
    """A model with nesting, a boolean and a nullable field."""

    order_id: int
    express: bool
    note: str | None
    kind: Literal["pickup", "delivery"]
    items: list[Item]


_ITEMS = st.builds(Item, name=_texts(), quantity=_INTS, tags=st.lists(_texts(max_size=4), max_size=3))
MODEL_INSTANCES: dict[type[BaseModel], st.SearchStrategy[BaseModel]] = {
    Weather: st.builds(
        Weather,
        city=_texts(),
        units=st.sampled_from(Units),
        temperature=_FLOATS,
        days=st.lists(_INTS, max_size=3),
    ),
    Item: _ITEMS,
    Order: st.builds(
        Order,
        order_id=_INTS,
        express=st.booleans(),
        note=st.none() | _texts(),
        kind=st.sampled_from(["pickup", "delivery"]),
        items=st.lists(_ITEMS, max_size=2),
    ),
}
PYDANTIC_MODELS = tuple(MODEL_INSTANCES)


@st.composite
def _model_json(draw: st.DrawFn, model: type[BaseModel]) -> str:
    """JSON text of a random instance of ``model``: pydantic's own or a ``json.dumps`` layout."""
    instance = draw(MODEL_INSTANCES[model])
    if draw(st.booleans()):
        return instance.model_dump_json()
    return draw(_json_text(instance.model_dump(mode="json")))


# --- tools ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolSpec:
    """One function tool given with the stream, and how its arguments are generated."""

    name: str
    kind: Literal["strict", "non_strict", "pydantic"]
    param: Any = field(repr=False)
    model: type[BaseModel] | None = None

    def parsed_arguments(self, arguments: str) -> Any:
        """What openai's helper parses complete ``arguments`` into for this tool."""
        if self.model is not None:
            return self.model.model_validate_json(arguments)
        return json.loads(arguments) if self.kind == "strict" else None


def _dict_tool(name: str, strict: bool | None) -> dict[str, Any]:
    function: dict[str, Any] = {
        "name": name,
        "description": f"The {name} tool.",
        "parameters": {"type": "object", "properties": {}, "additionalProperties": not strict},
    }
    if strict is not None:
        function["strict"] = strict
    return {"type": "function", "function": function}


_TOOL_SPECS: list[ToolSpec] = [
    *(ToolSpec(name, "strict", _dict_tool(name, True)) for name in ("get_time", "search_docs", "lookup")),
    ToolSpec("get_time", "non_strict", _dict_tool("get_time", False)),
    ToolSpec("search_docs", "non_strict", _dict_tool("search_docs", None)),
    ToolSpec("send_email", "non_strict", _dict_tool("send_email", False)),
    ToolSpec("Weather", "pydantic", openai.pydantic_function_tool(Weather), Weather),
    ToolSpec("Order", "pydantic", openai.pydantic_function_tool(Order), Order),
    ToolSpec("add_item", "pydantic", openai.pydantic_function_tool(Item, name="add_item"), Item),
]


def _arguments(spec: ToolSpec) -> st.SearchStrategy[str]:
    if spec.model is not None:
        return _model_json(spec.model)
    return _JSON_OBJECTS.flatmap(_json_text)


# --- response formats -------------------------------------------------------------------------------------

_FREE_TEXT = _texts(max_size=30)
# (the response_format both implementations get, what content choices answer with)
_RESPONSE_FORMATS: list[tuple[Any, st.SearchStrategy[str]]] = [
    (None, _FREE_TEXT),
    (Weather, _model_json(Weather)),
    (Order, _model_json(Order)),
    ({"type": "json_object"}, _JSON_OBJECTS.flatmap(_json_text)),
    (
        {
            "type": "json_schema",
            "json_schema": {"name": "Weather", "schema": Weather.model_json_schema(), "strict": True},
        },
        _model_json(Weather),
    ),
]


# --- the generated stream ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolCallPlan:
    """One generated tool call: what a ``tool_calls.function.arguments.done`` event must carry."""

    index: int
    id: str
    tool: ToolSpec
    arguments: str


@dataclass(frozen=True)
class ChoicePlan:
    """What one choice was generated to say."""

    index: int
    kind: Kind
    text: str
    """The content (for content and tool-call choices) or refusal, as sent (truncated on length)."""
    finish_reason: str
    tool_calls: tuple[ToolCallPlan, ...] = ()


@dataclass(frozen=True)
class GeneratedStream:
    """A generated chunk sequence with the request parameters both implementations get."""

    chunk_dicts: list[dict[str, Any]]
    tools: list[Any] | None = field(repr=False)
    tool_kinds: tuple[tuple[str, str], ...]
    """(name, strict / non_strict / pydantic) of each tool given, to read a falsifying example."""
    response_format: Any
    choices: tuple[ChoicePlan, ...] = field(repr=False)

    def chunks(self) -> list[ChatCompletionChunk]:
        """Freshly validated chunks: call once per implementation."""
        return [ChatCompletionChunk.model_validate(chunk) for chunk in self.chunk_dicts]


@st.composite
def _split(draw: st.DrawFn, text: str, max_pieces: int = 8) -> list[str]:
    """``text`` cut at random code-point boundaries; repeated cuts give (legal) empty deltas."""
    if not text:
        return []
    cuts = sorted(draw(st.lists(st.integers(0, len(text)), max_size=max_pieces - 1)))
    return [text[start:end] for start, end in pairwise([0, *cuts, len(text)])]


@st.composite
def _token_logprobs(draw: st.DrawFn, piece: str) -> list[dict[str, Any]]:
    """Token log probabilities whose tokens spell ``piece``."""
    logprob = st.floats(max_value=0.0, min_value=-1e4, allow_nan=False)
    tokens = draw(_split(piece, max_pieces=3))
    entries = []
    for token in filter(None, tokens):
        top = [
            {"token": alt, "logprob": draw(logprob), "bytes": list(alt.encode())}
            for alt in draw(st.lists(_texts(max_size=3, min_size=1), max_size=2))
        ]
        entries.append(
            {"token": token, "logprob": draw(logprob), "bytes": list(token.encode()), "top_logprobs": top}
        )
    return entries


def _choice(
    index: int,
    delta: dict[str, Any],
    *,
    explicit_nulls: bool,
    finish_reason: str | None = None,
    logprobs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": index, "delta": delta}
    if finish_reason is not None or explicit_nulls:
        choice["finish_reason"] = finish_reason
    if logprobs is not None or explicit_nulls:
        choice["logprobs"] = logprobs
    return choice


@st.composite
def _choice_lane(
    draw: st.DrawFn,
    index: int,
    *,
    kinds: tuple[Kind, ...],
    tools: list[ToolSpec],
    content: st.SearchStrategy[str],
    errors: bool,
    explicit_nulls: bool,
) -> tuple[ChoicePlan, list[dict[str, Any]]]:
    """One choice: its plan and its chunks' ``choices[0]`` entries, in order."""
    kind = draw(st.sampled_from([k for k in kinds if k != "tool_calls" or tools]))

    def lane_choice(delta: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        return _choice(index, delta, explicit_nulls=explicit_nulls, **kwargs)

    if kind == "tool_calls":
        return draw(_tool_call_lane(index, tools, content, errors, lane_choice))

    # The first chunk of a choice carries empty logprob lists, never tokens: when a choice first
    # appears after the stream's first chunk, openai builds its snapshot from
    # `choice.model_dump(exclude_unset=True, exclude={"delta"})`, logprobs included (line 415), then
    # falls through to `choice_snapshot.logprobs.content.extend(choice.logprobs.content)` (line 478),
    # so the first chunk's tokens end up in the snapshot twice.
    with_logprobs = draw(st.booleans())
    text_key, other_key = ("content", "refusal") if kind == "content" else ("refusal", "content")
    finish_reason = "stop"
    text = draw(content if kind == "content" else _FREE_TEXT)
    if errors and kind == "content":
        finish_reason = draw(st.sampled_from(["stop", "stop", "length", "content_filter"]))
        if finish_reason != "stop":
            text = text[: draw(st.integers(0, len(text)))]

    def logprobs(tokens: list[dict[str, Any]] | None) -> dict[str, Any] | None:
        return {text_key: tokens, other_key: None} if with_logprobs else None

    lane = [lane_choice({"role": "assistant", text_key: "", other_key: None}, logprobs=logprobs([]))]
    for piece in draw(_split(text)):
        tokens = draw(_token_logprobs(piece)) if with_logprobs else None
        lane.append(lane_choice({text_key: piece}, logprobs=logprobs(tokens)))
    last_logprobs = logprobs([]) if draw(st.booleans()) else None
    lane.append(lane_choice({}, finish_reason=finish_reason, logprobs=last_logprobs))
    return ChoicePlan(index, kind, text, finish_reason), lane


@st.composite
def _tool_call_lane(
    draw: st.DrawFn,
    index: int,
    tools: list[ToolSpec],
    content: st.SearchStrategy[str],
    errors: bool,
    lane_choice: Any,
) -> tuple[ChoicePlan, list[dict[str, Any]]]:
    """A choice calling 1-3 tools in parallel, optionally after some content."""
    calls = []
    for call_index in range(draw(st.integers(1, 3))):
        tool = draw(st.sampled_from(tools))
        suffix = draw(st.text(string.ascii_letters + string.digits, min_size=1, max_size=24))
        calls.append(ToolCallPlan(call_index, f"call_{suffix}", tool, draw(_arguments(tool))))
    text = draw(content) if draw(st.booleans()) else ""
    finish_reason = draw(st.sampled_from(["tool_calls", "length"])) if errors else "tool_calls"
    if finish_reason == "length":
        last = calls[-1]
        cut = draw(st.integers(0, len(last.arguments)))
        calls[-1] = ToolCallPlan(last.index, last.id, last.tool, last.arguments[:cut])

    headers = [
        {
            "index": call.index,
            "id": call.id,
            "type": "function",
            "function": {"name": call.tool.name, "arguments": ""},
        }
        for call in calls
    ]
    first_content = "" if text else draw(st.sampled_from([None, ""]))
    role: dict[str, Any] = {"role": "assistant", "content": first_content, "refusal": None}
    lane = []
    if text or draw(st.booleans()):
        lane.append(lane_choice(role))
        lane.extend(lane_choice({"content": piece}) for piece in draw(_split(text)))
    else:  # as OpenAI mostly sends it: the role and the first call's header in one chunk
        lane.append(lane_choice({**role, "tool_calls": [headers[0]]}))
    for call, header in zip(calls, headers, strict=True):
        if call.index or not lane[0]["delta"].get("tool_calls"):
            lane.append(lane_choice({"tool_calls": [header]}))
        lane.extend(
            lane_choice({"tool_calls": [{"index": call.index, "function": {"arguments": piece}}]})
            for piece in draw(_split(call.arguments))
        )
    lane.append(lane_choice({}, finish_reason=finish_reason))
    return ChoicePlan(index, "tool_calls", text, finish_reason, tuple(calls)), lane


@st.composite
def _interleave(draw: st.DrawFn, lanes: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The lanes' entries interleaved, each lane in order, lanes *starting* in index order.

    Choices must first appear in index order: openai keeps per-choice state in a list appended in
    order of first appearance (line 356-359) and appends unseen choices to the snapshot
    (`completion_snapshot.choices.append`, line 420), so choice 1 arriving before choice 0 is filed
    under index 0; and the first chunk's choices are written to `choices[choice.index]` (line 745),
    an IndexError unless the first chunk carries choice 0. (OpenAI starts choices in order.)
    Shrinks toward the lanes one after the other.
    """
    positions = [0] * len(lanes)
    started = 0
    entries = []
    while True:
        candidates = [i for i in range(started) if positions[i] < len(lanes[i])]
        if started < len(lanes):
            candidates.append(started)
        if not candidates:
            return entries
        lane = candidates[draw(st.integers(0, len(candidates) - 1))]
        started = max(started, lane + 1)
        entries.append(lanes[lane][positions[lane]])
        positions[lane] += 1


@st.composite
def chat_streams(
    draw: st.DrawFn,
    *,
    kinds: tuple[Kind, ...] = ("content", "refusal", "tool_calls"),
    errors: bool = True,
) -> GeneratedStream:
    """An OpenAI-conformant stream of 1-3 choices of the given kinds, with tools and response format.

    With ``errors``, choices may finish with ``length`` (truncated) or ``content_filter``, which
    openai turns into errors mid-stream (with parseable input) or at ``get_final_completion()``.
    """
    specs = None
    if kinds == ("tool_calls",) or draw(st.sampled_from([True, True, False])):
        specs = draw(
            st.lists(st.sampled_from(_TOOL_SPECS), min_size=1, max_size=4, unique_by=lambda spec: spec.name)
        )
    elif draw(st.booleans()):
        specs = []
    # half the streams may end in a length / content_filter finish
    errors = errors and draw(st.booleans())
    response_format, content = draw(st.sampled_from(_RESPONSE_FORMATS))
    explicit_nulls = draw(st.booleans())
    lanes_and_plans = [
        draw(
            _choice_lane(
                index,
                kinds=kinds,
                tools=specs or [],
                content=content,
                errors=errors,
                explicit_nulls=explicit_nulls,
            )
        )
        for index in range(draw(st.integers(1, 3)))
    ]
    plans = tuple(plan for plan, _ in lanes_and_plans)
    entries = draw(_interleave([lane for _, lane in lanes_and_plans]))

    base: dict[str, Any] = {
        "id": "chatcmpl-" + draw(st.text(string.ascii_letters + string.digits, min_size=1, max_size=12)),
        "object": "chat.completion.chunk",
        "created": draw(st.integers(1_600_000_000, 1_900_000_000)),
        "model": draw(st.sampled_from(["gpt-4o-2024-08-06", "gpt-4o-mini", "o3-mini"])),
        "system_fingerprint": draw(st.sampled_from([None, "fp_eb9dce56a8"])),
    }
    if draw(st.booleans()):
        base["service_tier"] = "default"
    obfuscate = draw(st.booleans())
    include_usage = draw(st.booleans())
    if include_usage:
        base["usage"] = None

    def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
        extra = {"obfuscation": draw(st.text(string.ascii_letters, max_size=8))} if obfuscate else {}
        return {**base, "choices": choices, **extra}

    chunk_dicts = [chunk([entry]) for entry in entries]
    if include_usage:
        prompt, completion = draw(st.integers(0, 10_000)), draw(st.integers(0, 10_000))
        usage: dict[str, Any] = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        if draw(st.booleans()):
            usage["prompt_tokens_details"] = {"cached_tokens": 0, "audio_tokens": 0}
            usage["completion_tokens_details"] = {"reasoning_tokens": 0, "audio_tokens": 0}
        chunk_dicts.append({**chunk([]), "usage": usage})

    return GeneratedStream(
        chunk_dicts=chunk_dicts,
        tools=[spec.param for spec in specs] if specs is not None else None,
        tool_kinds=tuple((spec.name, spec.kind) for spec in specs or ()),
        response_format=response_format,
        choices=plans,
    )


def content_streams() -> st.SearchStrategy[GeneratedStream]:
    """Streams whose choices all answer with content and finish with ``stop``."""
    return chat_streams(kinds=("content",), errors=False)


def tool_call_streams() -> st.SearchStrategy[GeneratedStream]:
    """Streams whose choices all call tools and finish with ``tool_calls``."""
    return chat_streams(kinds=("tool_calls",), errors=False)
