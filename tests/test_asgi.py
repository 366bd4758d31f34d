"""Request bodies of the plain relay and the durable endpoint: any nesting is a 4xx, never a RecursionError."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.routing import Mount

import deltaflow
from deltaflow._asgi import MAX_BODY_DEPTH, json_object
from deltaflow.durable import durable_endpoint
from deltaflow.recipes import relay_endpoint
from deltaflow.replay import ReplayServer, Scenario
from tests.recipes import MESSAGES, aclient
from tests.recipes.test_relay import AppServer


def nested(depth: int, *, opener: str = "[", closer: str = "]", leaf: str = "1") -> str:
    return opener * depth + leaf + closer * depth


def object_nested(depth: int) -> str:
    return nested(depth, opener='{"x":', closer="}")


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    """The plain relay at /plain and the durable endpoint at /durable, over one replay server."""
    with ReplayServer({"m": Scenario.scripted("ok")}) as upstream:

        def make(body: dict[str, Any]) -> deltaflow.AsyncChatStream[Any]:
            if body.get("model") != "m":
                raise ValueError("model: must be 'm'")
            return deltaflow.astream(aclient(upstream), model="m", messages=MESSAGES)

        app = Starlette(
            routes=[
                Mount("/plain", app=relay_endpoint(make)),
                Mount("/durable", app=durable_endpoint(make, max_body=4 << 20)),
            ]
        )
        with AppServer(app) as server:
            yield {"plain": server.url + "/plain/", "durable": server.url + "/durable/"}


@pytest.mark.parametrize("endpoint", ["plain", "durable"])
@pytest.mark.parametrize(
    "body",
    [
        nested(100_000),  # an array 100,000 deep
        '{"model": "m", "messages": ' + object_nested(5_000) + "}",  # an object 5,000 deep in a field
        '{"model": "m", "x": ' + nested(MAX_BODY_DEPTH) + "}",  # one level too deep
    ],
    ids=["array-100000", "object-5000-in-a-field", "just-too-deep"],
)
def test_a_deeply_nested_body_is_a_400_with_a_json_error(
    servers: dict[str, str], endpoint: str, body: str
) -> None:
    """Bodies nested deeper than the stack allows get 400 and a JSON error, not a 500 with a RecursionError."""
    response = httpx2.post(servers[endpoint], content=body.encode(), timeout=30)
    assert response.status_code == 400, response.text
    assert "JSON object" in response.json()["error"]


def test_a_body_nested_within_the_bound_is_served(servers: dict[str, str]) -> None:
    """At the bound exactly, the body is an ordinary request."""
    body = '{"model": "m", "x": ' + nested(MAX_BODY_DEPTH - 2) + "}"
    assert json_object(body.encode()) is not None
    for url in servers.values():
        response = httpx2.post(url, content=body.encode(), timeout=30)
        assert response.status_code == 200, response.text


bodies = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=20,
)


@settings(max_examples=150, deadline=None)
@given(
    value=bodies,
    depth=st.integers(0, 3000),
    brackets=st.sampled_from([("[", "]"), ('{"k":', "}"), ('[{"k":', "}]")]),
)
def test_json_object_bounds_depth_whatever_the_body(
    value: Any, depth: int, brackets: tuple[str, str]
) -> None:
    """Any JSON value wrapped ``depth`` times: an object within the bound, else None; never an exception."""
    opener, closer = brackets
    text = opener * depth + json.dumps(value) + closer * depth
    parsed = json_object(text.encode())
    whole = json.loads(text) if depth < 300 else None
    if parsed is not None:
        assert isinstance(parsed, dict)
        assert whole is None or parsed == whole
    elif whole is not None and isinstance(whole, dict):
        assert depth_of(whole) > MAX_BODY_DEPTH


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max(map(depth_of, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(depth=st.integers(MAX_BODY_DEPTH, 200_000), endpoint=st.sampled_from(["plain", "durable"]))
def test_any_depth_over_http_is_a_4xx(servers: dict[str, str], depth: int, endpoint: str) -> None:
    """Whatever the depth of a body past the bound, both endpoints answer 400 with a JSON error."""
    body = '{"model": "m", "messages": ' + nested(depth) + "}"
    response = httpx2.post(servers[endpoint], content=body.encode(), timeout=30)
    assert response.status_code == 400, response.text
    assert "error" in response.json()
