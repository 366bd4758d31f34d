"""Every entry point a user takes, against hostile server behaviours drawn by hypothesis.

``stream``/``astream`` on both transports, the README's Rx chain (sync and async), ``deltaflow chat``
as a subprocess and ``deltaflow relay`` as a subprocess read with ``relay_events``: no untyped exception,
no traceback on any stderr, the partial completion kept, and every stall ended by the idle timeout
within its bound. The server runs on loopback for the module and stops by itself.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from hypothesis import HealthCheck, event, given, settings
from starlette.applications import Starlette
from starlette.routing import Route

import deltaflow
from deltaflow.errors import DeltaflowError, RelayError, StreamTimeout
from deltaflow.recipes import relay_endpoint, relay_events
from tests.live.behaviours import Behaviour, behaviours
from tests.live.hostile import (
    RUNNERS,
    HostileServer,
    Outcome,
    Reply,
    chunk_json,
    run_arx,
    run_rx,
    sse,
    text_body,
)
from tests.recipes.test_relay import AppServer
from tests.sse_mutations import ALLOWED_ERRORS, check_outcome

IDLE = 0.5
"""The idle timeout given in process: a stall must end between it and it plus SLACK."""
SLACK = 4.0
SUBPROCESS_IDLE = 1.0
"""The idle timeout given to the subprocesses (``chat --idle-timeout``, ``relay --upstream-idle-timeout``)."""
SUBPROCESS_SLACK = 8.0
"""Start-up of a Python process with openai, and the CLI's own end, on a loaded machine."""


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[HostileServer, list[Reply]]]:
    """One hostile server for the module; each example appends the reply it wants."""
    replies = [Reply([])]
    with HostileServer(lambda _exchange: replies[-1]) as running:
        yield running, replies


def _check(behaviour: Behaviour, outcome: Outcome, idle: float, slack: float) -> None:
    error = outcome.error
    assert error is None or isinstance(error, ALLOWED_ERRORS), f"{behaviour.name}: untyped {error!r}"
    check_outcome(outcome.events, error)
    if behaviour.expect == "timeout":
        assert isinstance(error, StreamTimeout), f"{behaviour.name}: {error!r}"
        assert outcome.elapsed < idle + slack, f"{behaviour.name}: ended after {outcome.elapsed:.1f} s"


def _in_process(entry: str, base_url: str) -> Outcome:
    if entry == "rx-sync":
        return run_rx(base_url, idle_timeout=IDLE)
    if entry == "rx-async":
        return run_arx(base_url, idle_timeout=IDLE)
    client, transport = entry.split("-")
    return RUNNERS[client](base_url, transport, "generic", idle_timeout=IDLE)


ENTRIES = ["sync-fast", "sync-openai", "async-fast", "async-openai", "rx-sync", "rx-async"]


@pytest.mark.once
@pytest.mark.parametrize("entry", ENTRIES)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(behaviour=behaviours)
def test_in_process_entry_points_end_typed_and_on_time(
    server: tuple[HostileServer, list[Reply]], entry: str, behaviour: Behaviour
) -> None:
    """stream/astream on both transports and the Rx chain: typed errors, the partial completion, no hang."""
    running, replies = server
    replies.append(behaviour.reply)
    event(behaviour.expect)  # how many stalls a run drew: --hypothesis-show-statistics
    _check(behaviour, _in_process(entry, running.base_url), IDLE, SLACK)


def _no_traceback(stderr: str, what: str) -> None:
    assert "Traceback" not in stderr, f"{what}: {stderr[-2000:]}"


def _env() -> dict[str, str]:
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "NO_COLOR": "1"}
    env.pop("OPENAI_BASE_URL", None)
    return env


@pytest.mark.once
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(behaviour=behaviours)
def test_deltaflow_chat_ends_in_one_line_and_on_time(
    server: tuple[HostileServer, list[Reply]], behaviour: Behaviour
) -> None:
    """``deltaflow chat``: exit 0 or 1, stderr only deltaflow's own lines, a stall ended by --idle-timeout."""
    running, replies = server
    replies.append(behaviour.reply)
    event(behaviour.expect)  # how many stalls a run drew: --hypothesis-show-statistics
    command = [sys.executable, "-m", "deltaflow", "chat", "hi", "--base-url", running.base_url]
    start = time.monotonic()
    result = subprocess.run(
        [*command, "--idle-timeout", str(SUBPROCESS_IDLE)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=60,
        check=False,
    )
    elapsed = time.monotonic() - start
    _no_traceback(result.stderr, behaviour.name)
    assert result.returncode in (0, 1), f"{behaviour.name}: {result.returncode} {result.stderr}"
    assert all(line.startswith("deltaflow: ") for line in result.stderr.splitlines()), result.stderr
    if behaviour.expect == "timeout":
        assert result.returncode == 1
        assert "sent no chunk" in result.stderr, f"{behaviour.name}: {result.stderr}"
        assert elapsed < SUBPROCESS_IDLE + SUBPROCESS_SLACK, f"{behaviour.name}: {elapsed:.1f} s"


def _free_port() -> int:
    with socket.create_server(("127.0.0.1", 0)) as probe:
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def relay(server: tuple[HostileServer, list[Reply]]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``deltaflow relay`` in front of the hostile server, on a free port; its stderr checked at the end."""
    running, _ = server
    port = _free_port()
    process = subprocess.Popen(
        [
            sys.executable, "-m", "deltaflow", "relay", "--base-url", running.base_url, "--port", str(port),
            "--upstream-idle-timeout", str(SUBPROCESS_IDLE), "--model", "m",
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the relay did not start: {process.communicate()[1]}") from None
            time.sleep(0.1)
    try:
        yield f"http://127.0.0.1:{port}/chat/", process
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
        _no_traceback(stderr, "deltaflow relay")


def _relayed(url: str) -> tuple[list[Any], BaseException | None, float]:
    events: list[Any] = []
    start = time.monotonic()
    with httpx2.Client(timeout=httpx2.Timeout(30.0, connect=5.0)) as client:
        try:
            events.extend(
                relay_events(url, json={"messages": [{"role": "user", "content": "hi"}]}, http_client=client)
            )
        except Exception as error:  # the error is what the test looks at
            return events, error, time.monotonic() - start
    return events, None, time.monotonic() - start


@pytest.mark.once
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(behaviour=behaviours)
def test_deltaflow_relay_read_with_relay_events_ends_typed_and_on_time(
    server: tuple[HostileServer, list[Reply]],
    relay: tuple[str, subprocess.Popen[str]],
    behaviour: Behaviour,
) -> None:
    """The relay's readers get events, then done or a typed error with the completion; stalls end on time."""
    _, replies = server
    url, _process = relay
    replies.append(behaviour.reply)
    event(behaviour.expect)  # how many stalls a run drew: --hypothesis-show-statistics
    events, error, elapsed = _relayed(url)
    assert error is None or isinstance(error, DeltaflowError), f"{behaviour.name}: untyped {error!r}"
    if error is not None:
        assert events, f"{behaviour.name}: no error event before {error!r}"
        assert events[-1].type == "error", f"{behaviour.name}: {[event.type for event in events][-3:]}"
    deltas = "".join(event.delta for event in events if event.type == "content.delta")
    if isinstance(error, RelayError) and deltas:
        assert error.completion is not None
        assert (error.completion.choices[0].message.content or "") == deltas
    if behaviour.expect == "timeout":
        assert isinstance(error, RelayError), f"{behaviour.name}: {error!r}"
        assert error.error.get("type") == "StreamTimeout", f"{behaviour.name}: {error.error}"
        assert elapsed < SUBPROCESS_IDLE + SLACK, f"{behaviour.name}: ended after {elapsed:.1f} s"


def test_the_plain_relay_ends_an_upstream_stall_with_an_error_event_and_done() -> None:
    """relay_endpoint over an astream whose provider sends keep-alives forever: error, done, on time."""
    keep_alives = [b": OPENROUTER PROCESSING\n\n", 0.1] * 200
    with HostileServer(Reply([*text_body("Hel")[:2], *keep_alives])) as upstream:
        client = openai.AsyncOpenAI(base_url=upstream.base_url, api_key="sk-test", max_retries=0)

        def make_stream(body: dict[str, Any]) -> deltaflow.AsyncChatStream[Any]:
            return deltaflow.astream(client, model="m", messages=body["messages"], idle_timeout=IDLE)

        app = Starlette(routes=[Route("/chat", relay_endpoint(make_stream), methods=["POST"])])
        with AppServer(app) as relay_server:
            events, error, elapsed = _relayed(f"{relay_server.url}/chat")
    assert isinstance(error, RelayError), repr(error)
    assert error.error["type"] == "StreamTimeout"
    assert events[-1].type == "error"
    assert error.completion is not None
    assert error.completion.choices[0].message.content == "Hel"
    assert elapsed < IDLE + SLACK


@pytest.mark.parametrize("entry", ENTRIES)
def test_ping_payloads_and_events_are_skipped_on_every_in_process_entry_point(
    server: tuple[HostileServer, list[Reply]], entry: str
) -> None:
    """`data: {"type": "ping"}` and `event: ping` between chunks: the answer as if they were not there.

    The fast transport used to call the payload a contract error while openai's transport skipped it.
    """
    running, replies = server
    hello = text_body("Hel", "lo")
    pings = [b'data: {"type": "ping"}\n\n', b'event: ping\ndata: {"type": "ping"}\n\n']
    replies.append(Reply([*hello[:2], *pings, *hello[2:]]))
    outcome = _in_process(entry, running.base_url)
    assert outcome.error is None, repr(outcome.error)
    assert "".join(event.delta for event in outcome.events if event.type == "content.delta") == "Hello"


@pytest.mark.once
def test_a_lone_surrogate_crosses_deltaflow_relay(
    server: tuple[HostileServer, list[Reply]], relay: tuple[str, subprocess.Popen[str]]
) -> None:
    """Text UTF-8 cannot encode is handled on the durable relay as in process: it arrives as it was."""
    _, replies = server
    url, _process = relay
    surrogate = '{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"a\\ud800b"},"finish_reason":null}]}'
    replies.append(Reply(sse(chunk_json("", role=True), surrogate, chunk_json(finish_reason="stop"))))
    events, error, _ = _relayed(url)
    assert error is None, repr(error)
    assert next(event for event in events if event.type == "content.done").content == "a\ud800b"
