"""The durable log takes a Responses stream unchanged: its events logged, one terminal entry."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import openai
import pytest

from deltaflow import responses
from deltaflow.durable import MemoryEventLog, produce
from deltaflow.durable._follow import Idle, follow, start_position
from deltaflow.errors import StreamClosedError
from deltaflow.replay import FAULT_HEADER, ReplayServer
from tests.responses.scripted import scripted, served

ANSWER = "Logged, then read back by id."


async def _entries(log: MemoryEventLog, stream_id: str) -> list[Any]:
    position = await start_position(log, stream_id, None)
    return [item async for item in follow(log, stream_id, position, idle=0.05) if not isinstance(item, Idle)]


def test_a_responses_stream_is_logged_whole_then_done() -> None:
    """``produce`` over a Responses stream (deltaflow's events): every event in order, then ``done``."""
    with ReplayServer(served(scripted(ANSWER))) as running:
        client = openai.OpenAI(base_url=running.base_url, api_key="sk-test", max_retries=0)

        async def run() -> tuple[str, list[Any]]:
            log = MemoryEventLog()
            stream = responses.stream(client, model="m", input="hi", openai_events=False)
            outcome = await produce(log, await log.claim("r1"), stream)
            return outcome, await _entries(log, "r1")

        outcome, logged = asyncio.run(run())
    assert outcome == "done"
    assert json.loads(logged[-1].data) == {"ok": True, "outcome": "done"}
    kinds = [entry.kind for entry in logged[:-1]]
    assert kinds[-1] == "completion.done"
    assert "chunk" not in kinds
    assert "".join(json.loads(e.data)["delta"] for e in logged if e.kind == "content.delta") == ANSWER


def test_a_failed_response_is_logged_as_an_error_with_its_completion() -> None:
    """An injected ``error`` event: the log ends ``error`` with the partial completion."""
    with ReplayServer(served(scripted(ANSWER))) as running:
        client = openai.OpenAI(base_url=running.base_url, api_key="sk-test", max_retries=0)
        headers = {FAULT_HEADER: "error-after=6;error-message=overloaded"}

        async def run() -> tuple[str, list[Any]]:
            log = MemoryEventLog()
            stream = responses.stream(
                client, model="m", input="hi", openai_events=False, extra_headers=headers
            )
            outcome = await produce(log, await log.claim("r2"), stream)
            return outcome, await _entries(log, "r2")

        outcome, logged = asyncio.run(run())
    assert outcome == "error"
    final = json.loads(logged[-1].data)
    assert final["outcome"] == "error"
    assert "overloaded" in json.dumps(final)
    assert final["completion"]["choices"][0]["message"]["content"] == ANSWER[:8]


def test_an_async_responses_stream_with_openai_events_is_logged_as_deltaflow_events() -> None:
    """``astream`` as made (openai's events in): the log holds deltaflow's events, then ``done``."""
    with ReplayServer(served(scripted(ANSWER))) as running:

        async def run() -> tuple[str, list[Any]]:
            client = openai.AsyncOpenAI(base_url=running.base_url, api_key="sk-test", max_retries=0)
            log = MemoryEventLog()
            stream = responses.astream(client, model="m", input="hi")
            outcome = await produce(log, await log.claim("r3"), stream)
            return outcome, await _entries(log, "r3")

        outcome, logged = asyncio.run(run())
    assert outcome == "done"
    assert not [entry.kind for entry in logged if entry.kind.startswith("response.")]
    assert "".join(json.loads(e.data)["delta"] for e in logged if e.kind == "content.delta") == ANSWER


def test_an_async_responses_stream_refused_by_the_log_is_closed_on_the_loop() -> None:
    """A stream id in use: the durable endpoint answers 409 and closes the AsyncResponseStream it made,
    awaited on its loop (never a coroutine left unawaited in a thread)."""
    import gc  # noqa: PLC0415
    import warnings  # noqa: PLC0415

    import httpx2  # noqa: PLC0415
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.routing import Mount  # noqa: PLC0415

    from deltaflow.durable import durable_endpoint  # noqa: PLC0415
    from tests.recipes.test_relay import AppServer  # noqa: PLC0415

    made: list[Any] = []
    with ReplayServer(served(scripted(ANSWER))) as running:

        def make(body: dict[str, Any]) -> Any:
            client = openai.AsyncOpenAI(base_url=running.base_url, api_key="sk-test", max_retries=0)
            made.append(responses.astream(client, model="m", input=body["input"]))
            return made[-1]

        app = Starlette(routes=[Mount("/chat", app=durable_endpoint(make, MemoryEventLog()))])
        with AppServer(app) as relay, warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            accept = {"accept": "application/json"}
            first = httpx2.post(f"{relay.url}/chat/?stream_id=s1", json={"input": "hi"}, headers=accept)
            second = httpx2.post(f"{relay.url}/chat/?stream_id=s1", json={"input": "hi"}, headers=accept)
            gc.collect()
    assert (first.status_code, second.status_code) == (201, 409)
    assert len(made) == 2
    assert not [warning for warning in caught if "never awaited" in str(warning.message)]
    with pytest.raises(StreamClosedError):  # the refused one was closed, not left open
        made[1].on("content.delta", print)
