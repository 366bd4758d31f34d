"""Every provider recording through its dialect (and through ``generic``): the exact final result.

Expected values were read off the recordings by hand and are written here literally; long texts
are pinned by length, both ends and a SHA-256 of the text.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from openai import ContentFilterFinishReasonError, LengthFinishReasonError
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

import deltaflow
from deltaflow import operators as ops
from deltaflow._openai_compat import construct
from deltaflow.errors import ProviderError
from deltaflow.events import BaseEvent
from deltaflow.state import RejectedChunk
from tests.fixtures import PROVIDER_FIXTURES, load_openai_fixture, openai_fixture_names, require, sse_payloads
from tests.oracle import OPENAI_EVENT_FIELDS, Run, assert_same, run_openai

# openai's ParsedChatCompletionMessage types `parsed` loosely, so dumping a parsed model warns
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")


@dataclass(frozen=True)
class Text:
    """A long text pinned by its length, its first and last 40 characters and its SHA-256."""

    length: int
    head: str
    tail: str
    sha256: str

    def matches(self, text: str | None) -> bool:
        """Whether ``text`` is this text."""
        return (
            text is not None
            and len(text) == self.length
            and text.startswith(self.head)
            and text.endswith(self.tail)
            and hashlib.sha256(text.encode()).hexdigest() == self.sha256
        )


@dataclass(frozen=True)
class Recording:
    """One recording and what it must come to."""

    path: str
    dialect: str
    content: str | Text | None
    reasoning: str | Text | None
    finish_reason: str | None
    usage: tuple[int, int, int] | None  # prompt, completion, total
    tool_calls: list[tuple[str, str, Any]] = field(default_factory=list)  # id, name, arguments
    error: str | None = None  # the ProviderError message that ends the stream
    # openai's helper on the raw recording: the exception it raises while reading, or None
    openai_crashes: type[Exception] | None = None
    # where openai's final completion differs from ours: (path, "openai" / "deltaflow" / "both")
    openai_differs: frozenset[tuple[str, str]] = frozenset()

    def __str__(self) -> str:
        return self.path


MESSAGE = "choices[0].message"

RECORDINGS = [
    Recording(
        "anthropic-gateway/claude-haiku-fallback-tool-call-index1.sse",
        "generic",
        content="Reading it.",
        reasoning=None,
        finish_reason="tool_calls",
        usage=None,
        tool_calls=[("toolu_sanitized", "read_file", {"path": "a.txt"})],
        openai_crashes=IndexError,
    ),
    Recording(
        "azure/async-filter-offsets-text-edited-ids.jsonl",
        "azure",
        content="Hello World",
        reasoning=None,
        finish_reason="stop",
        usage=(15, 5, 20),
        openai_crashes=AttributeError,
    ),
    Recording(
        "azure/model-router-gpt-5-nano-text.jsonl",
        "azure",
        content="Capital of Denmark.",
        reasoning=None,
        finish_reason="stop",
        usage=(15, 78, 93),
        # openai takes id, model and creation time from the empty prompt-filter chunk
        openai_differs=frozenset({("id", "both"), ("model", "both"), ("created", "both")}),
    ),
    Recording(
        "deepseek/deepseek-chat-text-length.jsonl",
        "deepseek",
        content=Text(
            1855,
            "## **Holiday Name:** Starlight Remembran",
            " observe 15 minutes of silent looking at",
            "2293daa9001bc91d0d84ea889a31d2bc7194afed494341ec23d189a1e6b550b5",
        ),
        reasoning=None,
        finish_reason="length",
        usage=(13, 400, 413),
    ),
    Recording(
        "deepseek/deepseek-reasoner-reasoning.jsonl",
        "deepseek",
        content='The word "strawberry" contains three "r"s.',
        reasoning=Text(
            606,
            "We need to count the number of the lette",
            "nd 9. So yes, 3.\n\nThus, the answer is 3.",
            "01a5d04ca7e849fd2fade232d01ab33b2f93c8b2cd8c4bfaa2acc0f6d86f83f5",
        ),
        finish_reason="stop",
        usage=(18, 219, 237),
    ),
    Recording(
        "deepseek/deepseek-reasoner-thinking.sse",
        "deepseek",
        content="Hello there! 😊 How can I help you today?",
        reasoning=Text(
            882,
            'Hmm, the user just said "Hello". It\'s a ',
            "not reply further - and that's okay too.",
            "d29146ea4f40dfde7b6155babd3d948397e1b174950e603ef18518f0ff85585a",
        ),
        finish_reason="stop",
        usage=(6, 212, 218),
    ),
    Recording(
        "deepseek/deepseek-reasoner-tool-call.jsonl",
        "deepseek",
        content="",
        reasoning=Text(
            191,
            "The user is asking for the weather in Sa",
            'cation parameter set to "San Francisco".',
            "e9e5190a993cf8919dac982cbe90e7202e9638702f6e4fbea9f1ff8614309fb8",
        ),
        finish_reason="tool_calls",
        usage=(339, 83, 422),
        tool_calls=[("call_00_ioIn7yN9p1ZOMNpDLwd4MgAF", "weather", {"location": "San Francisco"})],
    ),
    Recording(
        "deepseek/deepseek-v4-flash-content-with-finish-and-usage-sanitized.jsonl",
        "deepseek",
        content="sanitized",
        reasoning=None,
        finish_reason="length",
        usage=(88, 4, 92),
    ),
    Recording(
        "groq/gpt-oss-120b-tool-use-failed-event-error.sse",
        "groq",
        content="",
        reasoning=Text(
            412,
            "We need to call the tool with invalid pa",
            'd call with name: "test". Let\'s do that.',
            "42abcfd444c13a252daf3a905d1959fe1881cf8631c56e434cf9dd844576524f",
        ),
        finish_reason=None,
        usage=None,
        error=(
            "Tool call validation failed: tool call validation failed: parameters for tool "
            "get_something_by_name did not match schema: errors: [missing properties: 'name', "
            "additionalProperties 'invalid_param' not allowed]"
        ),
        # openai concatenates the `channel: "analysis"` labels and keeps the reasoning as `reasoning`
        openai_differs=frozenset(
            {
                (f"{MESSAGE}.channel", "openai"),
                (f"{MESSAGE}.reasoning", "openai"),
                (f"{MESSAGE}.reasoning_content", "deltaflow"),
            }
        ),
    ),
    Recording(
        "groq/llama-3.3-70b-text.jsonl",
        "groq",
        content=Text(
            3189,
            'Introducing "Luminaria" - a new holiday ',
            "per appreciation for the magic of light.",
            "ca1f8ad858e90cfae58a43d5a1aa6cf08d2f572b50f498e121da8415e36f9063",
        ),
        reasoning=None,
        finish_reason="stop",
        usage=(45, 662, 707),
    ),
    Recording(
        "groq/llama-3.3-70b-tool-call.jsonl",
        "groq",
        content=None,
        reasoning=None,
        finish_reason="tool_calls",
        usage=(210, 15, 225),
        tool_calls=[("tk85n1k4m", "weather", {})],
    ),
    Recording(
        "groq/qwen3-32b-reasoning.jsonl",
        "groq",
        content=Text(
            347,
            'The word **"strawberry"** is spelled as ',
            'awberry".\n\n**Final Answer**: $\\boxed{3}$',
            "c19609678caf916a806eac1d97cf4bf8fd56aeaa5aba0a252aab48fe7e2ae8b4",
        ),
        reasoning=Text(
            2952,
            "Okay, let me try to figure out how many ",
            'number of R\'s in "strawberry" is three.\n',
            "a8661d5bd141de42fe1683760783adf1557a8c14802bb4c7cfffcfb3d78f0943",
        ),
        finish_reason="stop",
        usage=(17, 1107, 1124),
        openai_differs=frozenset(
            {(f"{MESSAGE}.reasoning", "openai"), (f"{MESSAGE}.reasoning_content", "deltaflow")}
        ),
    ),
    Recording(
        "mistral/magistral-medium-thinking.jsonl",
        "mistral",
        content="2 + 2 = 4",
        reasoning="The user is asking for 2+2. This is basic arithmetic. 2+2=4.",
        finish_reason="stop",
        usage=(10, 46, 56),
        openai_crashes=RuntimeError,
    ),
    Recording(
        "mistral/mistral-small-text.jsonl",
        "mistral",
        content="Hello, world! This is a test response.",
        reasoning=None,
        finish_reason="stop",
        usage=(13, 8, 21),
    ),
    Recording(
        "mistral/mistral-small-tool-call.jsonl",
        "mistral",
        content="",
        reasoning=None,
        finish_reason="tool_calls",
        usage=(124, 22, 146),
        tool_calls=[("gSIMJiOkT", "weather", {"location": "San Francisco"})],
        openai_crashes=TypeError,
    ),
    Recording(
        "mistral/thinking-part-iter.sse",
        "mistral",
        content=Text(
            607,
            "To cross the street safely, follow these",
            "e steps, you can ensure a safe crossing.",
            "e61ff78a68761d944f21a92e5a89e365735022da8ffddd99ad9d87476548a8e2",
        ),
        reasoning=Text(
            421,
            "Okay, the user is asking how to cross th",
            "ation into a clear and concise response.",
            "fcab447a2e58f5b6312bb390f5cc5d211f32288dd14592d8487ad50b876863d0",
        ),
        finish_reason="stop",
        usage=(10, 232, 242),
        # openai silently drops the list-typed thinking deltas that follow a string content
        openai_differs=frozenset({(f"{MESSAGE}.reasoning_content", "deltaflow")}),
    ),
    Recording(
        "mistral/zai-glm-on-mistral-incremental-tool-call.jsonl",
        "mistral",
        content="",
        reasoning=None,
        finish_reason="tool_calls",
        usage=(171, 14, 185),
        tool_calls=[("chatcmpl-tool-9f149c74c42f265b", "webSearchTool", {"query": "current Berlin weather"})],
        # openai keeps the stray `delta.index` as `message.index` and has no role (none was sent)
        openai_differs=frozenset({(f"{MESSAGE}.index", "openai"), (f"{MESSAGE}.role", "both")}),
    ),
    Recording(
        "openai/gpt-4.1-nano-text-baseline.jsonl",
        "openai",
        content=Text(
            1724,
            "**Holiday Name:** Harmony Day\n\n**Date:**",
            "ed human experiences and mutual respect.",
            "53b2d9e583d02b3ff0a0e83be5beb61ce1d16ccddc7ab9f033e72ec8ef55c8e4",
        ),
        reasoning=None,
        finish_reason="stop",
        usage=(16, 300, 316),
    ),
    Recording(
        "openrouter/minimax-m2-midstream-error.sse",
        "openrouter",
        content="",
        reasoning="We need to respond to a greeting. The user",
        finish_reason="length",
        usage=(43, 10, 53),
        error="Token limit reached",
        # openai's client raises APIError on the error chunk: its usage never reaches the helper
        openai_differs=frozenset(
            {
                (f"{MESSAGE}.role", "both"),
                (f"{MESSAGE}.reasoning", "openai"),
                (f"{MESSAGE}.reasoning_content", "deltaflow"),
                ("usage", "both"),
            }
        ),
    ),
    Recording(
        "openrouter/o3-reasoning-encrypted.sse",
        "openrouter",
        content=Text(
            446,
            "I\u2019m ChatGPT, a large-language-model assi",
            " you\u2019d like help with, just let me know!",
            "863c7d8a882d2101876c75dfd26b35334e37bf1d00d9bb6c7f8551d86ffb83ca",
        ),
        reasoning=None,
        finish_reason="stop",
        usage=(9, 104, 113),
        openai_differs=frozenset({(f"{MESSAGE}.role", "both"), (f"{MESSAGE}.reasoning", "openai")}),
    ),
    Recording(
        "openrouter/streaming-reasoning.sse",
        "openrouter",
        content="2 + 2 = 4",
        reasoning="This is a simple arithmetic question. 2+2 equals 4.",
        finish_reason="stop",
        usage=(43, 36, 79),
        # openai also concatenates the repeated `format` label of the reasoning details
        openai_differs=frozenset(
            {
                (f"{MESSAGE}.role", "both"),
                (f"{MESSAGE}.reasoning", "openai"),
                (f"{MESSAGE}.reasoning_content", "deltaflow"),
                (f"{MESSAGE}.reasoning_details[0].format", "both"),
            }
        ),
    ),
    Recording(
        "perplexity/sonar-text.jsonl",
        "perplexity",
        content="**EcoVista Day**[1][5]",
        reasoning=None,
        finish_reason="stop",
        usage=(11, 434, 445),
        openai_differs=frozenset({(f"{MESSAGE}.role", "both")}),
    ),
    Recording(
        "qwen/qwen3-max-reasoning.jsonl",
        "qwen",
        content=Text(
            816,
            'The word **"strawberry"** contains **3**',
            '== "r"])` returns `3`).  \n\n**Answer: 3**',
            "7c7a59b12a79eed8b1048ee8b7da6f6455eb4465768374ba7d738f18b3199b51",
        ),
        reasoning=Text(
            3301,
            "We are asked: \"How many 'r's are in the ",
            "(count) -> 3.\n\nYes.\n\nSo final answer: 3.",
            "0aa0c3bc04e95c534d21691067b66827b3ca080c08e1b3f2e37545cc3809b3eb",
        ),
        finish_reason="stop",
        usage=(24, 1355, 1379),
    ),
    Recording(
        "qwen/qwen3-max-text.jsonl",
        "qwen",
        content=Text(
            3771,
            '## The Festival of Shared Stories: "Tale',
            ' story matters. We are woven together."*',
            "aa86fa88ea07918e9f6bdf5dd756c6adee9cc5965edad4512a50b200ca10f0ae",
        ),
        reasoning=None,
        finish_reason="stop",
        usage=(18, 779, 797),
    ),
    Recording(
        "qwen/qwen3-max-tool-call.jsonl",
        "qwen",
        content=None,
        reasoning=None,
        finish_reason="tool_calls",
        usage=(295, 22, 317),
        tool_calls=[("call_eee11723464a4b9eb8cee71d", "weather", {"location": "San Francisco"})],
    ),
    Recording(
        "xai/grok-3-mini-text.jsonl",
        "xai",
        content="Hello",
        reasoning="First, the user said",
        finish_reason="stop",
        usage=(12, 1, 303),
    ),
    Recording(
        "xai/grok-3-mini-tool-call.jsonl",
        "xai",
        content=None,
        reasoning="First, the user is",
        finish_reason="tool_calls",
        usage=(291, 26, 513),
        tool_calls=[("call_55117580", "weather", {"location": "San Francisco"})],
    ),
    Recording(
        "zhipu/glm-4.7-thinking.sse",
        "zhipu",
        content="4",
        reasoning=Text(
            2173,
            "\n1.  **Analyze the User's Request:** The",
            '\n\n7.  **Draft the final response:** "4".',
            "960317a214d06504c4bf8035707c11efe171d2d0137223fecc06993b7816892d",
        ),
        finish_reason="stop",
        usage=(13, 564, 577),
        openai_differs=frozenset({(f"{MESSAGE}.role", "both")}),
    ),
]

DIALECT_RUNS = [
    pytest.param(recording, dialect, id=f"{recording.path}-{dialect}")
    for recording in RECORDINGS
    for dialect in dict.fromkeys((recording.dialect, "generic"))
]


@dataclass
class Replay:
    """What the pipeline produced from one recording."""

    events: list[BaseEvent]
    error: Exception | None

    @property
    def completion(self) -> Any:
        """The final completion, or the partial one an error carries."""
        done = [event for event in self.events if event.type == "completion.done"]
        if done:
            return done[0].completion
        assert self.error is not None
        return self.error.completion  # type: ignore[attr-defined]


def _path(recording: Recording) -> Path:
    return require(PROVIDER_FIXTURES / recording.path)


def _source(path: Path) -> Any:
    return deltaflow.from_sse(path.read_bytes()) if path.suffix == ".sse" else deltaflow.from_jsonl(path)


def replay(recording: Recording, dialect: str) -> Replay:
    """The recording through ``normalize(dialect)`` and ``to_events()``."""
    events: list[BaseEvent] = []
    errors: list[Exception] = []
    _source(_path(recording)).pipe(ops.normalize(dialect), ops.to_events()).subscribe(
        events.append, errors.append
    )
    return Replay(events, errors[0] if errors else None)


def normalized_chunks(recording: Recording, dialect: str) -> list[ChatCompletionChunk]:
    """The chunks ``normalize(dialect)`` makes of the recording (up to an error)."""
    chunks: list[Any] = []
    _source(_path(recording)).pipe(ops.normalize(dialect)).subscribe(chunks.append, lambda _: None)
    assert not any(isinstance(chunk, RejectedChunk) for chunk in chunks)
    return chunks


def raw_chunks(recording: Recording) -> list[ChatCompletionChunk]:
    """The recording's chunks as openai's client builds them, up to a payload with ``error``."""
    path = _path(recording)
    text = path.read_text(encoding="utf-8")
    payloads = sse_payloads(path.read_bytes()) if path.suffix == ".sse" else text.splitlines()
    chunks = []
    for payload in payloads:
        if not payload.strip():
            continue
        data = json.loads(payload)
        if data.get("error"):
            break  # openai's client raises APIError here
        chunks.append(construct(ChatCompletionChunk, data))
    return chunks


def openai_final(chunks: list[ChatCompletionChunk]) -> dict[str, Any]:
    """openai's ChatCompletionStreamState over the chunks: its final completion as a dict.

    Where openai refuses a finished stream at the end (``finish_reason: "length"``), the completion
    that its error carries.
    """
    state = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(chunk)
    try:
        final = state.get_final_completion()
    except Exception as exc:  # LengthFinishReasonError, with the completion attached
        final = exc.completion  # type: ignore[attr-defined]
    return final.model_dump()


def differences(ours: Any, theirs: Any, path: str = "") -> set[tuple[str, str]]:
    """The paths where two dumps differ: only in ours ("deltaflow"), only in theirs, or in both."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found: set[tuple[str, str]] = set()
        for key in ours.keys() | theirs.keys():
            where = f"{path}.{key}" if path else key
            if key not in theirs:
                found.add((where, "deltaflow"))
            elif key not in ours:
                found.add((where, "openai"))
            else:
                found |= differences(ours[key], theirs[key], where)
        return found
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return set().union(
            *(differences(a, b, f"{path}[{i}]") for i, (a, b) in enumerate(zip(ours, theirs, strict=True)))
        )
    return set() if ours == theirs else {(path, "both")}


def _same_text(expected: str | Text | None, actual: str | None) -> bool:
    return expected.matches(actual) if isinstance(expected, Text) else actual == expected


@pytest.mark.parametrize(("recording", "dialect"), DIALECT_RUNS)
def test_final_completion_is_exact(recording: Recording, dialect: str) -> None:
    """Content, reasoning, tool calls, usage and finish reason are those of the recording."""
    result = replay(recording, dialect)
    completion = result.completion
    message = completion.choices[0].message
    assert _same_text(recording.content, message.content), message.content
    assert _same_text(recording.reasoning, getattr(message, "reasoning_content", None))
    assert completion.choices[0].finish_reason == recording.finish_reason
    calls = [
        (call.id, call.function.name, json.loads(call.function.arguments))
        for call in message.tool_calls or []
    ]
    assert calls == recording.tool_calls
    assert [call.index for call in message.tool_calls or []] == list(range(len(recording.tool_calls)))
    usage = completion.usage
    counts = None if usage is None else (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)
    assert counts == recording.usage


@pytest.mark.parametrize(("recording", "dialect"), DIALECT_RUNS)
def test_events_are_complete_and_usage_comes_once(recording: Recording, dialect: str) -> None:
    """One usage event at most, a done event per tool call, reasoning closed, no chunk rejected."""
    result = replay(recording, dialect)
    types = [event.type for event in result.events]
    assert types.count("usage") == (recording.usage is not None)
    assert "error" not in types or recording.error is not None
    if recording.error is None:
        assert types[-1] == "completion.done"
        assert types.count("tool_calls.function.arguments.done") == len(recording.tool_calls)
        assert types.count("reasoning.done") == (recording.reasoning is not None)
        assert types.count("choice.done") == 1


@pytest.mark.parametrize(
    "recording", [recording for recording in RECORDINGS if recording.error is not None], ids=str
)
def test_provider_error_keeps_what_came_before(recording: Recording) -> None:
    """A mid-stream error ends the stream with ProviderError after an error event; usage is kept."""
    result = replay(recording, recording.dialect)
    error = result.error
    assert isinstance(error, ProviderError)
    assert str(error) == recording.error
    assert isinstance(error.error, dict)
    assert error.error["error"]["message"] == recording.error
    assert result.events[-1].type == "error"
    assert result.events[-1].exception is error  # type: ignore[attr-defined]
    assert error.completion is not None
    usage = error.completion.usage
    counts = None if usage is None else (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens)
    assert counts == recording.usage


@pytest.mark.parametrize("recording", RECORDINGS, ids=str)
def test_generic_matches_the_providers_dialect(recording: Recording) -> None:
    """``generic`` gives the same events and the same final completion as the provider's dialect."""
    own = replay(recording, recording.dialect)
    generic = replay(recording, "generic")
    assert [event.type for event in generic.events] == [event.type for event in own.events]
    assert generic.completion.model_dump() == own.completion.model_dump()
    assert type(generic.error) is type(own.error)


@pytest.mark.parametrize(("recording", "dialect"), DIALECT_RUNS)
def test_openai_folds_the_normalized_chunks_the_same(recording: Recording, dialect: str) -> None:
    """openai's ChatCompletionStreamState over the normalised chunks gives our completion exactly."""
    expected = openai_final(normalized_chunks(recording, dialect))
    assert replay(recording, dialect).completion.model_dump() == expected


@pytest.mark.parametrize("recording", RECORDINGS, ids=str)
def test_openai_helper_on_the_raw_recording(recording: Recording) -> None:
    """openai's helper on the raw chunks crashes, or agrees with us except where it loses data."""
    chunks = raw_chunks(recording)
    if recording.openai_crashes is not None:
        with pytest.raises(recording.openai_crashes), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            openai_final(chunks)
        return
    theirs = openai_final(chunks)
    ours = replay(recording, recording.dialect).completion.model_dump()
    assert differences(ours, theirs) == recording.openai_differs


@pytest.mark.parametrize("name", openai_fixture_names())
@pytest.mark.parametrize("dialect", ["openai", "generic"])
def test_openai_python_fixtures_through_normalize(name: str, dialect: str) -> None:
    """openai-python's recorded streams through normalize still equal openai's helper, chunk for chunk."""
    fixture = load_openai_fixture(name)
    chunks = fixture.chunks
    passed: list[Any] = []
    events: list[BaseEvent] = []
    errors: list[Exception] = []
    deltaflow.from_chunks(chunks).pipe(ops.normalize(dialect)).subscribe(passed.append, errors.append)
    assert errors == []
    assert len(passed) == len(chunks)
    assert all(mine is theirs for mine, theirs in zip(passed, chunks, strict=True))

    deltaflow.from_chunks(fixture.chunks).pipe(
        ops.normalize(dialect), ops.to_events(tools=fixture.tools, response_format=fixture.response_format)
    ).subscribe(events.append, errors.append)
    actual = Run(
        events=[
            event.model_dump(include=OPENAI_EVENT_FIELDS[event.type])
            for event in events
            if event.type in OPENAI_EVENT_FIELDS
        ]
    )
    done = [event for event in events if event.type == "completion.done"]
    if errors:
        actual.error = errors[0]
    else:
        final = done[0].completion  # type: ignore[attr-defined]
        # as ChatStream.get_final_completion and openai's parse_chat_completion
        cut = [choice for choice in final.choices if choice.finish_reason in ("length", "content_filter")]
        if cut:
            kind = (
                LengthFinishReasonError
                if cut[0].finish_reason == "length"
                else ContentFilterFinishReasonError
            )
            actual.error = kind(completion=final)
        else:
            actual.final = final.model_dump()
    assert_same(run_openai(fixture.chunks, fixture.tools, fixture.response_format), actual)
