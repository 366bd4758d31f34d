"""Bad input over the wire: each fault is a typed error carrying the partial completion; nothing hangs or leaks."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

import deltaflow
from deltaflow.errors import ProviderError, StreamContractError, StreamInterrupted, StreamTimeout
from deltaflow.pipeline import chunk_from_dict
from deltaflow.replay import FAULT_HEADER, ReplayServer, Scenario

MESSAGES = [{"role": "user", "content": "faults"}]
SCRIPT = Scenario.scripted("The quick brown fox jumps over the lazy dog", chunk_size=5)

FAULTS = [
    ("malformed-after=3", StreamContractError, None),
    ("drop-after=3", StreamInterrupted, None),
    ("error-after=3", ProviderError, None),
    ("stall-after=3;stall=5", StreamTimeout, 0.3),
]


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    """A server with one scripted answer; faults are chosen per request by header."""
    with ReplayServer(SCRIPT) as running:
        yield running


def _content_of_first(count: int) -> str:
    """The content the first ``count`` scripted chunks carry, accumulated in memory."""
    chunks = [chunk_from_dict(payload) for payload in SCRIPT.chunks()[:count]]
    return "".join(choice.delta.content or "" for chunk in chunks for choice in chunk.choices)


@pytest.mark.parametrize("transport", ["fast", "openai"])
@pytest.mark.parametrize(("fault", "error_class", "idle_timeout"), FAULTS)
def test_fault_is_a_typed_error_with_the_partial_completion(
    server: ReplayServer, transport: str, fault: str, error_class: type, idle_timeout: float | None
) -> None:
    """Every chunk before the fault is in the error's completion; an error event comes first; the connection ends."""
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    stream = deltaflow.stream(
        client,
        model="replay-1",
        messages=MESSAGES,
        transport=transport,
        idle_timeout=idle_timeout,
        extra_headers={FAULT_HEADER: fault},
    )
    seen = []
    with pytest.raises(error_class) as raised:
        seen.extend(event.type for event in stream)
    assert seen[-1] == "error"
    assert seen.count("chunk") == 3
    completion = raised.value.completion
    assert completion is not None
    assert completion.choices[0].message.content == _content_of_first(3)
    record = server.wait_for_disconnect(5) if fault.startswith("stall") else server.requests[-1]
    assert record.wait(5)


@pytest.mark.parametrize(("fault", "error_class", "idle_timeout"), FAULTS)
async def test_async_fault_is_a_typed_error_with_the_partial_completion(
    server: ReplayServer, fault: str, error_class: type, idle_timeout: float | None
) -> None:
    """The async stream reports the same typed errors with the same partial completion."""
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    seen = []
    with pytest.raises(error_class) as raised:
        async with deltaflow.astream(
            client,
            model="replay-1",
            messages=MESSAGES,
            idle_timeout=idle_timeout,
            extra_headers={FAULT_HEADER: fault},
        ) as stream:
            async for event in stream:
                seen.append(event.type)
    assert seen.count("chunk") == 3
    assert raised.value.completion.choices[0].message.content == _content_of_first(3)


def test_provider_error_keeps_the_providers_error_object(server: ReplayServer) -> None:
    """A mid-stream provider error carries what the provider sent."""
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    stream = deltaflow.stream(
        client,
        model="replay-1",
        messages=MESSAGES,
        extra_headers={FAULT_HEADER: "error-after=2;error-code=429"},
    )
    with pytest.raises(ProviderError) as raised:
        stream.until_done()
    assert "429" in str(raised.value.error)


def test_http_status_errors_pass_through_as_openais(server: ReplayServer) -> None:
    """An error status before the stream starts is openai's own exception, as users expect."""
    client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    with pytest.raises(openai.BadRequestError):
        deltaflow.stream(
            client, model="replay-1", messages=MESSAGES, extra_headers={FAULT_HEADER: "bogus"}
        ).until_done()


@pytest.mark.parametrize("transport", ["fast", "openai"])
def test_connection_refused_before_the_stream_is_openais_own_error(transport: str) -> None:
    """Nobody listening: openai's APIConnectionError, not a mid-stream interruption."""
    client = openai.OpenAI(base_url="http://127.0.0.1:9/v1", api_key="sk-test", max_retries=0)
    with pytest.raises(openai.APIConnectionError):
        deltaflow.stream(client, model="replay-1", messages=MESSAGES, transport=transport).until_done()
