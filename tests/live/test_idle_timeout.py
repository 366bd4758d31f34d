"""The idle timeout and the client's own timeouts: which one ends a stall, and what it leaves alone."""

from __future__ import annotations

import inspect

import openai
import pytest

import deltaflow
from deltaflow.errors import StreamTimeout
from deltaflow.pipeline import DEFAULT_IDLE_TIMEOUT, ChunkRequest
from tests.live.hostile import RUNNERS, HostileServer, Reply, text_body


def test_the_library_default_leaves_room_for_a_reasoning_model() -> None:
    """stream/astream/from_chunks default to 600 s counted in chunks (openai's read timeout)."""
    assert DEFAULT_IDLE_TIMEOUT == 600
    for function in (deltaflow.stream, deltaflow.astream, deltaflow.from_chunks):
        assert inspect.signature(function).parameters["idle_timeout"].default == DEFAULT_IDLE_TIMEOUT


def test_a_shorter_idle_timeout_lowers_only_the_read_timeout() -> None:
    """The client's connect, write and pool timeouts stay; a longer idle timeout changes nothing."""
    client = openai.OpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1")
    timeout = ChunkRequest(client, {}, idle_timeout=30).params["timeout"]
    assert isinstance(timeout, openai.Timeout)
    assert (timeout.connect, timeout.read) == (client.timeout.connect, 30)  # type: ignore[union-attr]
    short = openai.OpenAI(api_key="sk-test", base_url="http://127.0.0.1:9/v1", timeout=100.0)
    assert "timeout" not in ChunkRequest(short, {}, idle_timeout=300).params


@pytest.mark.parametrize("client", list(RUNNERS))
@pytest.mark.parametrize("transport", ["fast", "openai"])
def test_a_client_read_timeout_shorter_than_the_idle_timeout_ends_a_silence_first(
    client: str, transport: str
) -> None:
    """Silence after some text under the default idle timeout: the client's 0.5 s read timeout, typed."""
    with HostileServer(Reply(text_body("Hel")[:2], end="hang")) as server:
        runner = RUNNERS[client]
        outcome = runner(server.base_url, transport, "generic", client_timeout=0.5)
    assert isinstance(outcome.error, StreamTimeout), repr(outcome.error)
    assert outcome.error.timeout == 0.5
    assert outcome.content == "Hel"
    assert outcome.elapsed < 5
