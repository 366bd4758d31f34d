"""The README's Rx chain, ``from_chunks(client.chat.completions.create(stream=True))``, over hostile HTTP.

openai's ``Stream`` lets its decoders' exceptions out raw; read through ``from_chunks`` they end in
deltaflow's typed errors with the partial completion and the original as the cause, and a trickle of
keep-alives ends at the idle timeout.
"""

from __future__ import annotations

import json

import pytest

from deltaflow.errors import StreamContractError, StreamTimeout
from tests.live.hostile import RUNNERS, HostileServer, Reply, run_arx, run_rx, text_body

HELLO = text_body("Hel", "lo")

BAD = {
    "invalid UTF-8 in data": (b'data: {"x": "\xff"}\n\n', UnicodeDecodeError),
    "invalid UTF-8 in a comment": (b": \xff\xfe\n\n", UnicodeDecodeError),
    "a raw NUL": (b"data: {\x00}\n\n", json.JSONDecodeError),
    "an empty data line": (b"data: \n\n", json.JSONDecodeError),
    "truncated JSON": (b'data: {"id": \n\n', json.JSONDecodeError),
    "two objects on a line": (b"data: {} {}\n\n", json.JSONDecodeError),
    "JSON nested 10,000 deep": (b"data: " + b"[" * 10_000 + b"]" * 10_000 + b"\n\n", RecursionError),
    "an integer of 5,000 digits": (b'data: {"n": ' + b"1" * 5000 + b"}\n\n", ValueError),
}


RUNS = {"sync": run_rx, "async": run_arx}


@pytest.mark.parametrize("run", list(RUNS))
@pytest.mark.parametrize("name", list(BAD))
def test_what_openais_decoders_let_out_raw_is_a_contract_error(run: str, name: str) -> None:
    """Typed, the original exception as the cause, the text before it in the completion."""
    insert, raw = BAD[name]
    with HostileServer(Reply([*HELLO[:2], insert, *HELLO[2:]])) as server:
        outcome = RUNS[run](server.base_url)
    events, error = outcome.events, outcome.error
    assert isinstance(error, StreamContractError), repr(error)
    assert isinstance(error.__cause__, raw)
    assert error.completion is not None
    assert error.completion.choices[0].message.content == "Hel"
    assert "".join(event.delta for event in events if event.type == "content.delta") == "Hel"


@pytest.mark.parametrize("run", list(RUNS))
def test_keep_alives_forever_end_at_the_idle_timeout(run: str) -> None:
    """Comments and pings every 50 ms keep the read timeout away; the idle clock counts chunks."""
    pings = [b": OPENROUTER PROCESSING\n\n", 0.05, b'data: {"type": "ping"}\n\n', 0.05] * 200
    with HostileServer(Reply([*HELLO[:2], *pings])) as server:
        outcome = RUNS[run](server.base_url, idle_timeout=0.5)
    error, elapsed = outcome.error, outcome.elapsed
    assert isinstance(error, StreamTimeout)
    assert error.completion is not None
    assert error.completion.choices[0].message.content == "Hel"
    assert elapsed < 5


@pytest.mark.parametrize("run", list(RUNS))
def test_silence_after_some_text_ends_at_the_idle_timeout(run: str) -> None:
    """Headers and some text, then nothing: the client's 30 s read timeout is not what ends it."""
    with HostileServer(Reply(HELLO[:2], end="hang")) as server:
        outcome = RUNS[run](server.base_url, idle_timeout=0.5)
    assert isinstance(outcome.error, StreamTimeout), repr(outcome.error)
    assert outcome.error.timeout == 0.5
    assert outcome.content == "Hel"
    assert outcome.elapsed < 5


@pytest.mark.parametrize("run", list(RUNS))
def test_a_well_formed_stream_is_unchanged(run: str) -> None:
    """The guard adds nothing to a good stream: the same text, completed."""
    with HostileServer(Reply(HELLO)) as server:
        outcome = RUNS[run](server.base_url)
    events, error = outcome.events, outcome.error
    assert error is None
    assert [event.content for event in events if event.type == "content.done"] == ["Hello"]


@pytest.mark.parametrize(("client", "transport"), [("sync", "openai"), ("async", "openai"), ("sync", "fast")])
def test_an_integer_of_5000_digits_is_a_contract_error_on_both_transports(
    client: str, transport: str
) -> None:
    """stream()/astream() with transport="openai" say what the fast transport says."""
    body = [*HELLO[:2], b'data: {"n": ' + b"1" * 5000 + b"}\n\n", *HELLO[2:]]
    with HostileServer(Reply(body)) as server:
        outcome = RUNNERS[client](server.base_url, transport, "generic")
    assert isinstance(outcome.error, StreamContractError), repr(outcome.error)
    assert outcome.content == "Hel"
