"""The front-end formats on the durable endpoint: two instances share one Redis log; a reader cut off on
one resumes on the other (the AI SDK's ``resume`` GET, AG-UI's reconnection) with nothing lost or repeated."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

import deltaflow
from deltaflow.durable import RedisEventLog, durable_endpoint
from deltaflow.pipeline import iter_sse
from deltaflow.recipes import relay_events
from deltaflow.replay import ReplayServer
from tests.durable.redis_server import REDIS_SERVER, RedisServer
from tests.frontends.conftest import run_node
from tests.frontends.scenario import REASONING, STRUCTURED, TOOLS, Summary, scenarios
from tests.frontends.test_clients import USER_TEXT, ui_request
from tests.recipes import aclient
from tests.recipes.test_relay import AppServer

pytestmark = [
    pytest.mark.once,
    pytest.mark.skipif(
        REDIS_SERVER is None, reason="redis-server is not installed (apt-get install redis-server)"
    ),
]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server.url
    server.stop()


@pytest.fixture(scope="module")
def instances(redis_url: str) -> Iterator[list[str]]:
    """Two relay instances (each its own app and Redis client) on one Redis; yields their root URLs."""
    with ReplayServer(scenarios(tokens_per_second=60)) as upstream:
        async_client = aclient(upstream)

        def make_stream(body: dict[str, Any]) -> deltaflow.AsyncChatStream[Any]:
            return deltaflow.astream(
                async_client, model="full", messages=body["messages"], tools=TOOLS, response_format=Summary
            )

        def app() -> Starlette:
            log = RedisEventLog.from_url(redis_url, prefix="frontends:", lease_time=3)
            chat = durable_endpoint(make_stream, log, wire="ai-sdk", keep_alive=0.5)
            agent = durable_endpoint(make_stream, log, wire="ag-ui", keep_alive=0.5)
            return Starlette(routes=[Mount("/chat", app=chat), Mount("/agent", app=agent)])

        with AppServer(app()) as first, AppServer(app()) as second:
            yield [first.url, second.url]


def request_body(wire: str, key: str, run_id: str) -> dict[str, Any]:
    """A front-end's request for a new answer under ``key`` (the chat's, or the thread's, id)."""
    if wire == "ai-sdk":
        return ui_request(key)
    return {"threadId": key, "runId": run_id, "messages": [{"id": "u", "role": "user", "content": USER_TEXT}]}


def read_some(url: str, body: dict[str, Any], count: int) -> tuple[list[Any], str]:
    """POST ``body`` and read ``count`` events that carry an id, then leave; returns them and the last id."""
    read: list[Any] = []
    with httpx2.stream("POST", url, json=body, timeout=10) as response:
        assert response.status_code == 200, response.read()
        for event in iter_sse(response.iter_bytes()):
            read.append(event)
            if sum(1 for item in read if item.id) == count:
                break
    last = [item.id for item in read if item.id][-1]
    return read, last


def read_all(url: str, **headers: str) -> list[Any]:
    with httpx2.stream("GET", url, headers=headers, timeout=20) as response:
        assert response.status_code == 200, response.read()
        return list(iter_sse(response.iter_bytes()))


def datas(events: list[Any]) -> list[str]:
    return [event.data for event in events]


@pytest.mark.parametrize(("mount", "wire"), [("chat", "ai-sdk"), ("agent", "ag-ui")])
def test_a_reader_cut_off_resumes_on_another_instance_exactly_once(
    instances: list[str], mount: str, wire: str
) -> None:
    """Events read on instance 1 up to an id, then from that id on instance 2 (``Last-Event-ID``),
    are exactly the whole stream as read once it has ended: nothing lost, nothing repeated."""
    first, second = instances
    key = f"cut-{wire}"
    body = request_body(wire, key, "run-1")
    head, last_id = read_some(f"{first}/{mount}/", body, count=12)
    tail = read_all(f"{second}/{mount}/{key}", **{"last-event-id": last_id})
    whole = read_all(f"{second}/{mount}/{key}")
    assert datas(head) + datas(tail) == datas(whole)
    assert len(datas(tail)) > len(datas(head)), "the cut came early, while the answer was streaming"
    if wire == "ai-sdk":
        assert datas(whole)[-1] == "[DONE]"
        assert json.loads(datas(whole)[-2])["type"] == "finish"
    else:
        assert json.loads(datas(whole)[-1])["type"] == "RUN_FINISHED"


def test_use_chat_resume_on_another_instance_builds_the_whole_message(
    node_modules: Path, instances: list[str]
) -> None:
    """``ai``'s DefaultChatTransport.reconnectToStream (the GET ``useChat``'s ``resume`` makes) on
    instance 2 while instance 1 streams: the whole message, built by readUIMessageStream."""
    first, second = instances
    read_some(f"{first}/chat/", ui_request("resumed-chat"), count=3)
    resumed = run_node(
        node_modules, "read_ui_stream.mjs", f"{second}/chat", json.dumps(ui_request("resumed-chat")), "resume"
    )
    message = resumed["message"]
    assert message is not None, "a running answer is resumed"
    texts = {part["type"]: part.get("text") for part in message["parts"]}
    assert texts["reasoning"] == REASONING
    assert json.loads(texts["text"]) == STRUCTURED
    objects = [part["data"] for part in message["parts"] if part["type"] == "data-object"]
    assert objects == [STRUCTURED]
    assert [part["toolName"] for part in message["parts"] if part["type"] == "dynamic-tool"] == [
        "lookup",
        "weather",
    ]
    assert resumed["chunks"][-1] == "finish"
    again = run_node(
        node_modules, "read_ui_stream.mjs", f"{second}/chat", json.dumps(ui_request("resumed-chat")), "resume"
    )
    assert again["message"] is None, "a finished answer is no active stream: 204"


def test_ag_ui_connect_agent_on_another_instance_builds_the_run(
    node_modules: Path, instances: list[str]
) -> None:
    """``@ag-ui/client``'s connectAgent (its reconnection) on instance 2 while instance 1 streams."""
    first, second = instances
    run_input = {
        "threadId": "joined",
        "runId": "run-9",
        "messages": [{"id": "u", "role": "user", "content": "hi"}],
    }
    read_some(f"{first}/agent/", run_input, count=3)
    ran = run_node(
        node_modules, "run_ag_ui.mjs", f"{second}/agent", json.dumps(run_input), "connect",
        f"{second}/agent/joined",
    )  # fmt: skip
    assert ran["error"] is None, ran
    (assistant,) = [message for message in ran["messages"] if message["role"] == "assistant"]
    assert json.loads(assistant["content"]) == STRUCTURED
    assert [call["function"]["name"] for call in assistant["toolCalls"]] == ["lookup", "weather"]
    assert ran["state"] == {"output": STRUCTURED}
    assert ran["finished"]["runId"] == "run-9", "the run's ids come from the log, on any instance"


def test_a_conversations_next_answer_replaces_its_finished_one(instances: list[str]) -> None:
    """A chat id names its running answer: the next turn takes the id once the previous answer ended,
    and not while it runs (409)."""
    first, second = instances
    body = ui_request("turns")
    with httpx2.stream("POST", f"{first}/chat/", json=body, timeout=10) as response:
        assert response.status_code == 200
        busy = httpx2.post(f"{second}/chat/", json=body, timeout=10)
        assert busy.status_code == 409
        response.read()
    again = read_all(f"{second}/chat/turns")
    with httpx2.stream("POST", f"{second}/chat/", json=body, timeout=10) as response:
        assert response.status_code == 200
        second_turn = list(iter_sse(response.iter_bytes()))
    start = [json.loads(item.data) for item in second_turn if item.data.startswith('{"type":"start"')]
    assert start[0]["messageId"] != json.loads(again[0].data)["messageId"], "each answer is its own message"


@pytest.mark.parametrize(("mount", "wire"), [("chat", "ai-sdk"), ("agent", "ag-ui")])
def test_a_stop_from_another_instance_ends_the_answer_as_the_protocol_says(
    instances: list[str], mount: str, wire: str
) -> None:
    """``POST <endpoint>/<id>/stop`` on instance 2: readers get the AI SDK's ``abort`` (then ``[DONE]``),
    or AG-UI's RUN_FINISHED with outcome ``cancelled``, after what was generated."""
    first, second = instances
    key = f"stopped-{wire}"
    body = request_body(wire, key, "run-s")
    head, _ = read_some(f"{first}/{mount}/", body, count=4)
    stopping = httpx2.post(f"{second}/{mount}/{key}/stop", timeout=10)
    assert stopping.status_code == 202, stopping.text
    whole = datas(read_all(f"{second}/{mount}/{key}"))
    assert whole[: len(head)] == datas(head)
    if wire == "ai-sdk":
        assert whole[-1] == "[DONE]"
        assert json.loads(whole[-2]) == {"type": "abort", "reason": "stopped"}
    else:
        finished = json.loads(whole[-1])
        assert finished["type"] == "RUN_FINISHED"
        assert finished["outcome"] == {"type": "cancelled"}
        assert finished["result"] == {"reason": "stopped"}


def test_one_logged_answer_reads_in_every_format(instances: list[str]) -> None:
    """A stream started by ``useChat`` reads, by ``?wire=``, as deltaflow's own events (``relay_events``:
    the front-end's ``wire.start`` entry is not among them) and as an AG-UI run, each whole."""
    first, second = instances
    with httpx2.stream("POST", f"{first}/chat/", json=ui_request("every-format"), timeout=20) as response:
        ai_sdk = [json.loads(item.data) for item in iter_sse(response.iter_bytes()) if item.data != "[DONE]"]
    events = list(relay_events(f"{second}/chat/every-format?wire=deltaflow"))
    assert events[-1].type == "completion.done"
    content = "".join(event.delta for event in events if event.type == "content.delta")
    assert json.loads(content) == STRUCTURED
    assert content == "".join(part["delta"] for part in ai_sdk if part["type"] == "text-delta")
    ag_ui = [json.loads(item.data) for item in read_all(f"{second}/chat/every-format?wire=ag-ui")]
    assert (ag_ui[0]["type"], ag_ui[-1]["type"]) == ("RUN_STARTED", "RUN_FINISHED")
    assert ag_ui[0]["threadId"] == "every-format"
    assert content == "".join(event["delta"] for event in ag_ui if event["type"] == "TEXT_MESSAGE_CONTENT")
