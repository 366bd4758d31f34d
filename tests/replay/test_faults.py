"""Injected faults and pacing, as the real openai client experiences them over loopback HTTP."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterator

import openai
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from deltaflow.replay import Fault, ReplayServer, Scenario

SCRIPT = "The quick brown fox jumps over the lazy dog"


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(Scenario.scripted(SCRIPT, chunk_size=4)) as running:
        yield running


@pytest.fixture
def client(server: ReplayServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as sync_client:
        yield sync_client


def consume(client: openai.OpenAI, fault: str, received: list[object]) -> None:
    """Stream with an ``X-Replay-Fault`` header, collecting chunks until the client raises."""
    headers = {"X-Replay-Fault": fault}
    received.extend(
        client.chat.completions.create(model="m", messages=[], stream=True, extra_headers=headers)
    )


def test_drop_raises_connection_error_after_n_chunks(client: openai.OpenAI, server: ReplayServer) -> None:
    """A dropped connection raises ``APIConnectionError`` (an incomplete chunked read) after N chunks."""
    received: list[object] = []
    with pytest.raises(openai.APIConnectionError) as excinfo:
        consume(client, "drop-after=3", received)
    assert len(received) == 3
    assert type(excinfo.value.__cause__).__name__ == "RemoteProtocolError"
    record = server.requests[-1]
    assert record.wait()
    assert record.events_sent == 3
    assert record.fault == Fault.drop_after(3)


async def test_drop_raises_connection_error_in_async_client(server: ReplayServer) -> None:
    """The async client raises the same ``APIConnectionError`` after exactly N chunks."""
    received = []

    async def consume_async(client: openai.AsyncOpenAI) -> None:
        stream = await client.chat.completions.create(
            model="m", messages=[], stream=True, extra_headers={"X-Replay-Fault": "drop-after=2"}
        )
        async for chunk in stream:
            received.append(chunk)

    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client:
        with pytest.raises(openai.APIConnectionError):
            await consume_async(client)
    assert len(received) == 2


def test_malformed_line_raises_json_decode_error(client: openai.OpenAI) -> None:
    """openai leaves invalid JSON in a ``data:`` line unwrapped: ``json.JSONDecodeError`` after N chunks."""
    received: list[object] = []
    with pytest.raises(json.JSONDecodeError):
        consume(client, "malformed-after=1", received)
    assert len(received) == 1


def test_error_chunk_raises_api_error_with_message(client: openai.OpenAI, server: ReplayServer) -> None:
    """A mid-stream error chunk raises ``openai.APIError`` carrying the provider's message and error body."""
    received: list[object] = []
    with pytest.raises(openai.APIError) as excinfo:
        consume(client, "error-after=2;error-code=429;error-message=Rate limited upstream", received)
    assert len(received) == 2
    assert excinfo.value.message == "Rate limited upstream"
    assert excinfo.value.body == {"code": 429, "message": "Rate limited upstream"}
    assert not isinstance(excinfo.value, openai.APIConnectionError)
    assert server.requests[-1].wait()
    assert server.requests[-1].events_sent == 2


async def test_error_chunk_raises_api_error_in_async_client(server: ReplayServer) -> None:
    """The async client raises ``APIError`` with the default injected message."""
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client:
        stream = await client.chat.completions.create(
            model="m", messages=[], stream=True, extra_headers={"X-Replay-Fault": "error-after=0"}
        )
        with pytest.raises(openai.APIError, match="injected provider error"):
            async for _ in stream:
                pass


def test_stall_makes_a_short_timeout_client_time_out(server: ReplayServer) -> None:
    """A stall longer than the client's read timeout raises ``APITimeoutError``, and the server notices."""
    received: list[object] = []
    with (
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=0.3) as client,
        pytest.raises(openai.APITimeoutError),
    ):
        consume(client, "stall-after=2;stall=5", received)
    assert len(received) == 2
    record = server.wait_for_disconnect()
    assert record is server.requests[-1]
    assert record.events_sent == 2


def test_short_stall_only_delays_the_stream(client: openai.OpenAI) -> None:
    """A stall the client outlasts delays the stream but loses nothing."""
    received: list[object] = []
    started = time.monotonic()
    consume(client, "stall-after=1;stall=0.2", received)
    assert time.monotonic() - started >= 0.2
    assert len(received) == len(Scenario.scripted(SCRIPT, chunk_size=4).chunks())


def test_scenario_fault_applies_and_header_none_disables_it() -> None:
    """A scenario's own fault applies by default; ``X-Replay-Fault: none`` turns it off for one request."""
    scenario = Scenario.scripted("Hello world", fault=Fault.drop_after(1))
    with (
        ReplayServer(scenario) as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
    ):
        with pytest.raises(openai.APIConnectionError):
            list(client.chat.completions.create(model="m", messages=[], stream=True))
        clean = list(
            client.chat.completions.create(
                model="m", messages=[], stream=True, extra_headers={"X-Replay-Fault": "none"}
            )
        )
    assert len(clean) == len(scenario.chunks())


def test_bad_fault_header_is_a_400(client: openai.OpenAI) -> None:
    """An unparseable ``X-Replay-Fault`` header is rejected with an OpenAI-style 400."""
    with pytest.raises(openai.BadRequestError, match="x-replay-fault"):
        client.chat.completions.create(
            model="m", messages=[], stream=True, extra_headers={"X-Replay-Fault": "explode-after=1"}
        )


def test_error_fault_on_non_streaming_request_is_an_http_error(client: openai.OpenAI) -> None:
    """Without streaming, an error fault becomes an HTTP error whose status is the error code."""
    with pytest.raises(openai.RateLimitError, match="slow down"):
        client.chat.completions.create(
            model="m",
            messages=[],
            extra_headers={"X-Replay-Fault": "error-after=0;error-code=429;error-message=slow down"},
        )


def test_ttft_delays_the_first_chunk() -> None:
    """With ``ttft=0.2`` the first chunk does not arrive before 0.2 s."""
    with (
        ReplayServer(Scenario.scripted("Hi", ttft=0.2)) as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
    ):
        started = time.monotonic()
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        next(iter(stream))
        first_chunk_after = time.monotonic() - started
        stream.close()
    assert first_chunk_after >= 0.2


def test_tokens_per_second_paces_events() -> None:
    """At 50 events per second, N events take at least (N - 1) / 50 seconds after the first."""
    scenario = Scenario.scripted("abcdefghij", chunk_size=1, tokens_per_second=50)
    with (
        ReplayServer(scenario) as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
    ):
        stream = iter(client.chat.completions.create(model="m", messages=[], stream=True))
        next(stream)
        started = time.monotonic()
        rest = list(stream)
        elapsed = time.monotonic() - started
    assert elapsed >= len(rest) / 50
    assert len(rest) == len(scenario.chunks()) - 1


@pytest.mark.parametrize(
    ("header", "fault"),
    [
        ("drop-after=3", Fault("drop", 3)),
        ("stall-after=2;stall=5", Fault("stall", 2, seconds=5)),
        ("malformed-after=0", Fault("malformed", 0)),
        ("error-after=4", Fault("error", 4)),
        (
            " Error-After = 1 ; error-code=rate_limit ; error-message=busy",
            Fault.error_after(1, code="rate_limit", message="busy"),
        ),
        ("none", None),
    ],
)
def test_fault_header_parses(header: str, fault: Fault | None) -> None:
    """Each documented ``X-Replay-Fault`` form parses to the matching ``Fault``."""
    assert Fault.parse(header) == fault


@pytest.mark.parametrize(
    "header",
    [
        "",
        "drop-after",
        "drop-after=x",
        "drop-after=1;stall-after=2",
        "boom-after=1",
        "drop-after=1;colour=red",
    ],
)
def test_bad_fault_header_is_refused(header: str) -> None:
    """Malformed, ambiguous or unknown fault headers raise ``ValueError``."""
    with pytest.raises(ValueError):
        Fault.parse(header)


def test_fault_rejects_negative_counts() -> None:
    """A fault cannot trigger after a negative number of events."""
    with pytest.raises(ValueError, match="negative"):
        Fault.drop_after(-1)


_hostile_value = st.one_of(
    st.text(max_size=8), st.sampled_from(["1", "-1", "nan", "inf", "-inf", "1e400", "٣", "0"])
)
_fault_text = st.one_of(
    st.text(max_size=60),
    st.builds(
        lambda trigger, value, options: ";".join([f"{trigger}={value}", *(f"{k}={v}" for k, v in options)]),
        st.sampled_from(["drop-after", "stall-after", "malformed-after", "error-after", "boom-after"]),
        _hostile_value,
        st.lists(
            st.tuples(st.sampled_from(["stall", "error-code", "error-message", "x"]), _hostile_value),
            max_size=2,
        ),
    ),
)


@given(_fault_text)
@example("stall-after=1;stall=nan")
@example("stall-after=1;stall=inf")
def test_any_fault_header_parses_to_a_usable_fault_or_a_value_error(header: str) -> None:
    """Whatever a client sends as X-Replay-Fault (or a user as serve --fault): a fault with finite,
    non-negative figures, None, or ``ValueError``; never another exception."""
    try:
        fault = Fault.parse(header)
    except ValueError:
        return
    if fault is not None:
        assert fault.after >= 0
        assert math.isfinite(fault.seconds)
        assert fault.seconds >= 0
