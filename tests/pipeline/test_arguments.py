"""Wrong arguments to stream / astream fail with a TypeError that names the fix, before any request."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import openai
import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai.lib._parsing import type_to_response_format_param
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel

import deltaflow
from deltaflow._arguments import checked_stream_arguments
from deltaflow.pipeline import request_params
from deltaflow.replay import ReplayServer, Scenario

MESSAGES = [{"role": "user", "content": "hi"}]


class Weather(BaseModel):
    city: str


def get_weather(city: str) -> str:
    return city


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(Scenario.scripted("Hello", tokens_per_second=1000)) as running:
        yield running


def _client(server: ReplayServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def _aclient(server: ReplayServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def _sync_run(server: ReplayServer, client: object, kwargs: dict[str, Any], transport: str) -> None:
    with deltaflow.stream(client, model="m", messages=MESSAGES, transport=transport, **kwargs) as stream:  # type: ignore[arg-type]
        stream.until_done()


async def _async_run(server: ReplayServer, client: object, kwargs: dict[str, Any], transport: str) -> None:
    async with deltaflow.astream(
        client, model="m", messages=MESSAGES, transport=transport, **kwargs
    ) as stream:  # type: ignore[arg-type]
        await stream.until_done()


def _assert_only_the_control_request_arrives(server: ReplayServer, client: openai.OpenAI) -> None:
    """Nothing reached the server, as a valid request sent now proves: it is the only one recorded."""
    before = len(server.requests)
    with deltaflow.stream(client, model="control", messages=MESSAGES) as stream:
        stream.until_done()
    arrived = server.requests[before:]
    assert [record.body["model"] for record in arrived] == ["control"]


@pytest.fixture
def fresh_server() -> Iterator[ReplayServer]:
    """A server of its own: its journal holds only this test's requests."""
    with ReplayServer(Scenario.scripted("Hello", tokens_per_second=1000)) as running:
        yield running


class TestTheClient:
    @pytest.mark.parametrize("transport", ["fast", "openai"])
    async def test_astream_with_a_sync_client_sends_nothing(
        self, fresh_server: ReplayServer, transport: str
    ) -> None:
        """The case that used to send a request and leave it open (transport="openai")."""
        with pytest.raises(
            TypeError, match=r"deltaflow\.astream needs openai\.AsyncOpenAI.*deltaflow\.stream"
        ):
            await _async_run(fresh_server, _client(fresh_server), {}, transport)
        assert fresh_server.requests == []
        _assert_only_the_control_request_arrives(fresh_server, _client(fresh_server))

    @pytest.mark.parametrize("transport", ["fast", "openai"])
    def test_stream_with_an_async_client_sends_nothing(
        self, fresh_server: ReplayServer, transport: str
    ) -> None:
        with pytest.raises(
            TypeError, match=r"deltaflow\.stream needs openai\.OpenAI.*async with deltaflow\.astream"
        ):
            _sync_run(fresh_server, _aclient(fresh_server), {}, transport)
        assert fresh_server.requests == []
        _assert_only_the_control_request_arrives(fresh_server, _client(fresh_server))

    @pytest.mark.parametrize(
        ("client", "message"),
        [
            (
                "gpt-4o-mini",
                r"takes the client first.*'gpt-4o-mini'.*deltaflow\.stream\(openai\.OpenAI\(\), model=",
            ),
            (None, r"needs openai\.OpenAI .*got NoneType None"),
            (42, r"got int 42"),
            (openai.OpenAI, r"got the class OpenAI: pass openai\.OpenAI\(\)"),
        ],
    )
    def test_what_is_no_client_is_named(self, client: object, message: str) -> None:
        with pytest.raises(TypeError, match=message):
            deltaflow.stream(client, model="m", messages=MESSAGES)  # type: ignore[arg-type]

    async def test_astream_names_its_own_example(self) -> None:
        with pytest.raises(TypeError, match=r"deltaflow\.astream\(openai\.AsyncOpenAI\(\), model="):
            deltaflow.astream("gpt-4o-mini", model="m", messages=MESSAGES)  # type: ignore[arg-type]

    def test_a_client_look_alike_is_judged_by_its_completions(self, server: ReplayServer) -> None:
        """A wrapper that does not subclass openai's clients passes when its resource is the right kind."""
        real = _aclient(server)

        class Wrapper:
            base_url = real.base_url
            chat = real.chat

        with pytest.raises(TypeError, match="got an async client"):
            deltaflow.stream(Wrapper(), model="m", messages=MESSAGES)  # type: ignore[arg-type]
        assert isinstance(
            deltaflow.astream(Wrapper(), model="m", messages=MESSAGES), deltaflow.AsyncChatStream
        )  # type: ignore[arg-type]


WRONG_TOOLS: list[tuple[str, Any, str]] = [
    (
        "function",
        [get_weather],
        r"tools\[0\] must be a tool dict, got function .*openai\.pydantic_function_tool",
    ),
    (
        "model class",
        [Weather],
        r"tools\[0\] is the pydantic model Weather.*openai\.pydantic_function_tool\(Weather\)",
    ),
    ("string", "get_weather", r"tools must be a list of tool dicts, got str"),
    ("one tool dict", {"type": "function", "function": {"name": "f"}}, r"got one mapping: wrap it in a list"),
    ("number", 3, r"tools must be a list of tool dicts, got int 3"),
    ("None item", [None], r"tools\[0\] must be a tool dict, got NoneType"),
    (
        "bare definition",
        [{"name": "f", "parameters": {}}],
        r"needs a string 'type'.*'type': 'function', 'function'",
    ),
    (
        "function without name",
        [{"type": "function", "function": {}}],
        r"tools\[0\] is a function tool without",
    ),
    (
        "second item",
        [{"type": "function", "function": {"name": "f"}}, "g"],
        r"tools\[1\] must be a tool dict",
    ),
]

WRONG_RESPONSE_FORMATS: list[tuple[str, Any, str]] = [
    (
        "model instance",
        Weather(city="Paris"),
        r"takes the model class, not an instance: response_format=Weather",
    ),
    ("type name", "json_object", r"not the string 'json_object': response_format=\{'type': 'json_object'\}"),
    ("other string", "json", r"response_format=\{'type': 'json_object'\}"),
    ("generic alias", list[int], r"must be a pydantic model class, a dataclass or a response_format dict"),
    ("number", 1, r"got int 1"),
    # a class openai cannot make a schema of: openai's own TypeError, still before the request
    ("plain class", int, r"Unsupported response_format type"),
]


class TestToolsAndResponseFormat:
    @pytest.mark.parametrize(("case", "tools", "message"), WRONG_TOOLS, ids=[case[0] for case in WRONG_TOOLS])
    def test_wrong_tools_send_nothing(
        self, fresh_server: ReplayServer, case: str, tools: Any, message: str
    ) -> None:
        with pytest.raises(TypeError, match=message):
            _sync_run(fresh_server, _client(fresh_server), {"tools": tools}, "fast")
        assert fresh_server.requests == []
        _assert_only_the_control_request_arrives(fresh_server, _client(fresh_server))

    @pytest.mark.parametrize(
        ("case", "response_format", "message"),
        WRONG_RESPONSE_FORMATS,
        ids=[case[0] for case in WRONG_RESPONSE_FORMATS],
    )
    async def test_wrong_response_formats_send_nothing(
        self, fresh_server: ReplayServer, case: str, response_format: Any, message: str
    ) -> None:
        with pytest.raises(TypeError, match=message):
            await _async_run(
                fresh_server, _aclient(fresh_server), {"response_format": response_format}, "openai"
            )
        assert fresh_server.requests == []
        _assert_only_the_control_request_arrives(fresh_server, _client(fresh_server))

    def test_tools_from_a_generator_are_read_once_and_sent(self, server: ReplayServer) -> None:
        """An iterator of tools is checked and still reaches the request whole."""
        tools = ({"type": "function", "function": {"name": name, "parameters": {}}} for name in ("a", "b"))
        before = len(server.requests)
        with deltaflow.stream(_client(server), model="m", messages=MESSAGES, tools=tools) as stream:
            stream.until_done()
        (record,) = server.requests[before:]
        assert [tool["function"]["name"] for tool in record.body["tools"]] == ["a", "b"]

    def test_what_openai_accepts_is_accepted(self) -> None:
        """Custom tools, non-strict functions, pydantic tools, dicts and model classes all pass."""
        tools = [
            {"type": "custom", "custom": {"name": "grammar"}},
            {"type": "function", "function": {"name": "loose", "parameters": {}}},
            openai.pydantic_function_tool(Weather),
        ]
        for response_format in (None, Weather, {"type": "json_object"}):
            assert checked_stream_arguments(iter(tools), response_format) == tools


# ---- hostile input: only a TypeError escapes, and never for what openai's helper accepts


@pydantic.dataclasses.dataclass
class PydanticPoint:
    x: int


@dataclasses.dataclass
class PlainPoint:
    x: int


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
_objects = st.sampled_from(
    [get_weather, Weather, Weather(city="x"), object(), {1, 2}, b"tools", list[int], PlainPoint]
)
_names = st.sampled_from(["f", "g", ""]) | st.text(max_size=6)
_tool_like = st.one_of(
    st.builds(lambda name: {"type": "function", "function": {"name": name, "parameters": {}}}, _names),
    st.fixed_dictionaries(
        {},
        optional={
            "type": st.sampled_from(["function", "custom"]) | _json,
            "function": st.fixed_dictionaries({}, optional={"name": _names | _json}) | _json,
            "name": _names,
        },
    ),
    _json,
    _objects,
)
hostile_tools = (
    st.none()
    | st.lists(_tool_like, max_size=4)
    | _json
    | _objects
    | st.dictionaries(st.text(max_size=4), _tool_like, max_size=2)
)
hostile_response_formats = st.one_of(
    st.none(),
    st.sampled_from(
        [Weather, PydanticPoint, PlainPoint, int, str, {"type": "json_object"}, "json_object", "text"]
    ),
    st.dictionaries(st.text(max_size=6), _json, max_size=3),
    _json,
    _objects,
)


def _outcome(call: Callable[[], object]) -> type[BaseException] | None:
    try:
        call()
    except Exception as error:
        return type(error)
    return None


def _openai_chokes_on_tools(tools: object) -> bool:
    """Whether openai's stream helper fails on these tools client-side: sending them, or streaming a call of each."""
    try:
        listed = list(tools)  # type: ignore[call-overload]
        json.dumps(listed)  # the request body
        state = ChatCompletionStreamState(input_tools=listed)
        names = [_name_of(tool) for tool in listed]
        for index, name in enumerate(names):
            state.handle_chunk(_chunk({"tool_calls": [_call(index, name)]}))
        state.handle_chunk(_chunk({}, finish_reason="tool_calls" if names else "stop"))
        state.get_final_completion()
    except Exception:
        return True
    return False


def _api_refuses(tools: object) -> bool:
    """What deltaflow rejects beyond openai's client: shapes the chat completions API answers with a 400."""
    if isinstance(tools, (str, bytes, Mapping)):
        return True
    for tool in tools:  # type: ignore[attr-defined]
        if not isinstance(tool, Mapping) or not isinstance(tool.get("type"), str):
            return True
        function = tool.get("function")
        if tool["type"] == "function" and not (
            isinstance(function, Mapping) and isinstance(function.get("name"), str)
        ):
            return True
    return False


def _name_of(tool: object) -> str:
    function = tool.get("function") if isinstance(tool, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    return name if isinstance(name, str) else "f"


def _call(index: int, name: str) -> dict[str, Any]:
    return {
        "index": index,
        "id": f"call_{index}",
        "type": "function",
        "function": {"name": name, "arguments": "{}"},
    }


def _chunk(delta: dict[str, Any], finish_reason: str | None = None) -> ChatCompletionChunk:
    return ChatCompletionChunk.model_validate(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "m",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
    )


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tools=hostile_tools, response_format=hostile_response_formats)
def test_hostile_arguments_fail_with_a_type_error_or_pass(tools: Any, response_format: Any) -> None:
    """Whatever is passed, the check raises TypeError or hands back the tools as a list."""
    try:
        checked = checked_stream_arguments(tools, response_format)
    except TypeError as error:
        assert str(error)
        return
    assert checked is None or all(isinstance(tool.get("type"), str) for tool in checked)


@settings(max_examples=300, deadline=None)
@given(tools=hostile_tools)
def test_tools_openai_chokes_on_are_rejected_first(tools: Any) -> None:
    """Tools on which openai's helper fails client-side are rejected; the rest only when the API would refuse them."""
    rejected = _outcome(lambda: checked_stream_arguments(tools, None))
    assert rejected in (None, TypeError)
    if tools is not None and _openai_chokes_on_tools(tools):
        assert rejected is TypeError
    if rejected is TypeError and not _openai_chokes_on_tools(tools):
        assert _api_refuses(tools)


@settings(max_examples=300, deadline=None)
@given(response_format=hostile_response_formats)
def test_response_formats_rejected_exactly_as_openai_does(response_format: Any) -> None:
    """For a request, deltaflow raises TypeError exactly when openai's helper would, before sending."""
    ours = _outcome(
        lambda: request_params({}, tools=None, response_format=response_format, include_usage=False)
    )
    theirs = (
        None if response_format is None else _outcome(lambda: type_to_response_format_param(response_format))
    )
    assert ours in (None, TypeError)
    assert ours == theirs


@pytest.mark.parametrize("facade", ["ChatStream", "AsyncChatStream"])
@pytest.mark.parametrize(
    "tools",
    [[print], [Weather], "x", {"type": "function", "function": {"name": "f"}}],
    ids=["function", "model-class", "string", "a-single-dict"],
)
def test_the_facades_over_chunks_refuse_wrong_tools(facade: str, tools: object) -> None:
    """ChatStream(chunks, tools=...) checks its tools as stream() does: a TypeError, nothing read."""
    read: list[object] = []

    def chunks() -> Iterator[object]:
        read.append("read")
        yield from ()

    with pytest.raises(TypeError):
        getattr(deltaflow, facade)(chunks(), tools=tools)
    assert read == []


@pytest.mark.parametrize("response_format", [Weather(city="Paris"), "json_object", list[int], 5])
def test_the_facades_over_chunks_refuse_a_wrong_response_format(response_format: object) -> None:
    with pytest.raises(TypeError):
        deltaflow.ChatStream(iter(()), response_format=response_format)  # type: ignore[arg-type]
