"""Any request body, in either front-end's shape or not, is answered: a 4xx JSON error or the stream,
never a server error, on the plain relay and on the durable endpoint (hypothesis over the bodies)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount, Route

import deltaflow
from deltaflow.durable import MemoryEventLog, durable_endpoint
from deltaflow.pipeline import iter_sse
from deltaflow.recipes import relay_endpoint
from deltaflow.replay import ReplayServer
from deltaflow.wire import ag_ui_request, ai_sdk_request
from tests.frontends.scenario import TOOLS, Summary, scenarios
from tests.recipes import aclient
from tests.recipes.test_relay import AppServer

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
ids = st.text("abcXYZ019_-", min_size=1, max_size=12) | st.text(max_size=140) | json_values


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The field as the protocol has it, mostly; anything JSON sometimes."""
    return st.one_of(strategy, strategy, json_values)


ui_parts = st.fixed_dictionaries(
    {
        "type": maybe(
            st.sampled_from(
                ["text", "reasoning", "file", "dynamic-tool", "tool-lookup", "step-start", "data-x"]
            )
        )
    },
    optional={
        "text": maybe(st.text(max_size=20)),
        "toolCallId": maybe(st.text(max_size=8)),
        "toolName": maybe(st.text(max_size=8)),
        "state": maybe(
            st.sampled_from(["input-streaming", "input-available", "output-available", "output-error"])
        ),
        "input": json_values,
        "output": json_values,
        "errorText": maybe(st.text(max_size=8)),
        "url": maybe(st.text(max_size=20)),
        "mediaType": maybe(st.sampled_from(["image/png", "text/plain"])),
    },
)
ui_messages = st.fixed_dictionaries(
    {
        "role": maybe(st.sampled_from(["system", "user", "assistant"])),
        "parts": maybe(st.lists(ui_parts, max_size=3)),
    },
    optional={"id": maybe(st.text(max_size=8)), "metadata": json_values},
)
ai_sdk_bodies = st.fixed_dictionaries(
    {},
    optional={
        "id": ids,
        "messages": maybe(st.lists(ui_messages, max_size=3)),
        "trigger": maybe(st.sampled_from(["submit-message", "regenerate-message"])),
        "messageId": maybe(st.text(max_size=8)),
    },
)
ag_ui_messages = st.fixed_dictionaries(
    {
        "id": maybe(st.text(max_size=8)),
        "role": maybe(st.sampled_from(["developer", "system", "user", "assistant", "tool", "reasoning", "activity"])),
    },
    optional={
        "content": maybe(st.text(max_size=20) | st.lists(st.fixed_dictionaries({"type": maybe(st.just("text")), "text": maybe(st.text(max_size=8))}), max_size=2)),
        "toolCalls": maybe(
            st.lists(
                st.fixed_dictionaries(
                    {"id": maybe(st.text(max_size=8)), "type": maybe(st.just("function")),
                     "function": maybe(st.fixed_dictionaries({"name": maybe(st.text(max_size=8)), "arguments": maybe(st.text(max_size=12))}))}
                ),
                max_size=2,
            )
        ),
        "toolCallId": maybe(st.text(max_size=8)),
    },
)  # fmt: skip
ag_ui_bodies = st.fixed_dictionaries(
    {},
    optional={
        "threadId": ids,
        "runId": maybe(st.text(min_size=1, max_size=8)),
        "messages": maybe(st.lists(ag_ui_messages, max_size=3)),
        "state": json_values,
        "tools": json_values,
        "forwardedProps": json_values,
    },
)


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    """The plain relay at /relay/<format> and the durable endpoint at /durable/<format>."""
    with ReplayServer(scenarios()) as upstream:
        async_client = aclient(upstream)

        def make_stream(body: dict[str, Any]) -> deltaflow.AsyncChatStream[Any]:
            return deltaflow.astream(
                async_client, model="full", messages=body["messages"], tools=TOOLS, response_format=Summary
            )

        log = MemoryEventLog()
        routes = [
            Route("/relay/ai-sdk", relay_endpoint(make_stream, wire="ai-sdk"), methods=["POST"]),
            Route("/relay/ag-ui", relay_endpoint(make_stream, wire="ag-ui"), methods=["POST"]),
            Mount("/durable/ai-sdk", app=durable_endpoint(make_stream, log, wire="ai-sdk")),
            Mount("/durable/ag-ui", app=durable_endpoint(make_stream, log, wire="ag-ui")),
        ]
        with AppServer(Starlette(routes=routes)) as server:
            yield server.url


def post(url: str, body: object) -> httpx2.Response:
    """POST ``body`` as Python's json writes it (``Infinity`` included: a hostile client may send it)."""
    return httpx2.post(
        url, content=json.dumps(body), headers={"content-type": "application/json"}, timeout=20
    )


def slash(endpoint: str) -> str:
    """The durable endpoint is a mount (``/durable/ai-sdk/``), the relay a route (``/relay/ai-sdk``)."""
    return "/" if endpoint == "durable" else ""


def check_answer(response: httpx2.Response, wire: str) -> None:
    """A 4xx with a JSON error, or a 200 stream that ends as its protocol ends."""
    assert response.status_code < 500, response.text
    if response.status_code != 200:
        assert response.headers["content-type"] == "application/json"
        assert isinstance(response.json()["error"], str)
        return
    datas = [event.data for event in iter_sse([response.content])]
    if wire == "ai-sdk":
        assert datas[-1] == "[DONE]"
        assert json.loads(datas[-2])["type"] == "finish"
    else:
        assert json.loads(datas[-1])["type"] in ("RUN_FINISHED", "RUN_ERROR")


@pytest.mark.parametrize("endpoint", ["relay", "durable"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=ai_sdk_bodies)
def test_any_ai_sdk_body_is_answered_without_a_server_error(
    site: str, endpoint: str, body: dict[str, Any]
) -> None:
    """Bodies shaped like ``useChat``'s request, fields valid or not."""
    check_answer(post(f"{site}/{endpoint}/ai-sdk{slash(endpoint)}", body), "ai-sdk")


@pytest.mark.parametrize("endpoint", ["relay", "durable"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=ag_ui_bodies)
def test_any_ag_ui_body_is_answered_without_a_server_error(
    site: str, endpoint: str, body: dict[str, Any]
) -> None:
    """Bodies shaped like AG-UI's ``RunAgentInput``, fields valid or not."""
    check_answer(post(f"{site}/{endpoint}/ag-ui{slash(endpoint)}", body), "ag-ui")


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/relay/ai-sdk", {"id": "c", "messages": [{"role": "user", "parts": [{"type": "text", "text": "hi"}]}]}, 200),
        ("/relay/ai-sdk", {"messages": []}, 422),
        ("/relay/ag-ui", {"threadId": "t", "runId": "r", "messages": []}, 200),
        ("/relay/ai-sdk?wire=ag-ui", {"threadId": "t", "runId": "r", "messages": []}, 200),
        ("/relay/ag-ui?wire=ai-sdk", {"threadId": "t", "runId": "r", "messages": []}, 422),
        ("/relay/ag-ui", {"threadId": "t", "runId": "r", "messages": [{"id": "m", "role": "tool", "content": "x"}]}, 422),
        ("/durable/ai-sdk/", {"id": "x" * 200, "messages": []}, 400),
        ("/durable/ag-ui/?wire=nonsense", {"threadId": "t", "runId": "r", "messages": []}, 422),
    ],
)  # fmt: skip
def test_known_bodies_get_their_status(site: str, path: str, body: dict[str, Any], status: int) -> None:
    """A valid request streams, in the format its ``?wire=`` asks for when it does; a missing chat id,
    a tool message without its call id, an id too long for a stream id and an unknown format are
    refused with a JSON error."""
    response = post(site + path, body)
    assert response.status_code == status, response.text
    # the format a request asked for, else its endpoint's
    check_answer(response, path.rpartition("wire=")[2] if "wire=" in path else path.split("/")[2])


@settings(max_examples=300, deadline=None)
@given(body=ai_sdk_bodies | ag_ui_bodies | st.dictionaries(st.text(max_size=10), json_values, max_size=5))
def test_the_request_parsers_raise_only_value_errors(body: dict[str, Any]) -> None:
    """Any JSON object: chat messages (dicts with a role) or a ValueError, never another exception."""
    for parse in (ai_sdk_request, ag_ui_request):
        try:
            converted = parse(body)
        except ValueError as error:
            assert str(error).startswith(("not ", "a ", "message content"))
            continue
        assert all(isinstance(message, dict) and message["role"] for message in converted["messages"])
        assert {key: value for key, value in converted.items() if key != "messages"} == {
            key: value for key, value in body.items() if key != "messages"
        }


@pytest.mark.parametrize("path", ["/relay/ai-sdk", "/relay/ag-ui", "/durable/ai-sdk/", "/durable/ag-ui/"])
def test_a_body_nested_past_the_parsers_stack_is_a_400(site: str, path: str) -> None:
    """``[[[[...`` a hundred thousand deep: Python's json gives up with RecursionError, answered 400."""
    response = httpx2.post(site + path, content=b"[" * 100_000, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": "the request body must be a JSON object, nested at most 64 deep"}
