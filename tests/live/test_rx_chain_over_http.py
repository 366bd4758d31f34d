"""The README's Rx chain, ``from_chunks(client.chat.completions.create(stream=True))``, over hostile HTTP.

openai's ``Stream`` lets its decoders' exceptions out raw; read through ``from_chunks`` they end in
deltaflow's typed errors with the partial completion and the original as the cause, and a trickle of
keep-alives ends at the idle timeout.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import openai
import pytest

import deltaflow
from deltaflow import operators as ops
from deltaflow.errors import StreamContractError, StreamTimeout
from tests.live.hostile import MESSAGES, RUNNERS, HostileServer, Reply, text_body

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


def _rx(base_url: str, **options: Any) -> tuple[list[Any], BaseException | None, float]:
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=30)
    events: list[Any] = []
    failures: list[BaseException] = []
    start = time.monotonic()
    chunks = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    deltaflow.from_chunks(chunks, **options).pipe(ops.to_events()).subscribe(
        on_next=events.append, on_error=failures.append
    )
    return events, failures[0] if failures else None, time.monotonic() - start


def _arx(base_url: str, **options: Any) -> tuple[list[Any], BaseException | None, float]:
    async def go() -> tuple[list[Any], BaseException | None, float]:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=30)
        events: list[Any] = []
        ended: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        start = time.monotonic()
        chunks = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        deltaflow.from_chunks(chunks, **options).pipe(ops.to_events()).subscribe(
            on_next=events.append,
            on_error=ended.set_result,
            on_completed=lambda: ended.set_result(None),
        )
        error = await asyncio.wait_for(ended, 30)
        await client.close()
        return events, error, time.monotonic() - start

    return asyncio.run(go())


RUNS = {"sync": _rx, "async": _arx}


@pytest.mark.parametrize("run", list(RUNS))
@pytest.mark.parametrize("name", list(BAD))
def test_what_openais_decoders_let_out_raw_is_a_contract_error(run: str, name: str) -> None:
    """Typed, the original exception as the cause, the text before it in the completion."""
    insert, raw = BAD[name]
    with HostileServer(Reply([*HELLO[:2], insert, *HELLO[2:]])) as server:
        events, error, _ = RUNS[run](server.base_url)
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
        _, error, elapsed = RUNS[run](server.base_url, idle_timeout=0.5)
    assert isinstance(error, StreamTimeout)
    assert error.completion is not None
    assert error.completion.choices[0].message.content == "Hel"
    assert elapsed < 5


@pytest.mark.parametrize("run", list(RUNS))
def test_a_well_formed_stream_is_unchanged(run: str) -> None:
    """The guard adds nothing to a good stream: the same text, completed."""
    with HostileServer(Reply(HELLO)) as server:
        events, error, _ = RUNS[run](server.base_url)
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
