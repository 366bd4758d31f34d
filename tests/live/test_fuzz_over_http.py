"""Fuzzing raw SSE bytes over HTTP: a sample of mutated streams on both transports, sync and async.

A hostile loopback server sends each body as drawn, split into HTTP chunks at drawn points; the
real openai client reads it. Only deltaflow's errors (and openai's finish-reason errors) may escape.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.live.hostile import RUNNERS, HostileServer, Reply
from tests.sse_mutations import ALLOWED_ERRORS, Mutation, check_outcome, hostile_bodies, reads_of

TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[HostileServer, list[Reply]]]:
    """One server for the module; each example puts its reply in the list."""
    replies = [Reply([])]
    with HostileServer(lambda _exchange: replies[-1]) as running:
        yield running, replies
    print(f"\nSSE fuzz over HTTP: {dict(TALLY)}")


@pytest.mark.parametrize("client", ["sync", "async"])
@pytest.mark.parametrize("transport", ["fast", "openai"])
@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    case=hostile_bodies(long_lines=False),
    cuts=st.lists(st.integers(min_value=0), max_size=4),
    dialect=st.sampled_from(["generic", "openai"]),
)
def test_mutated_streams_over_http(
    server: tuple[HostileServer, list[Reply]],
    client: str,
    transport: str,
    case: tuple[bytes, list[Mutation]],
    cuts: list[int],
    dialect: str,
) -> None:
    """Typed errors only, with the partial completion, whatever the server sends."""
    running, replies = server
    body, _applied = case
    replies.append(Reply(reads_of(body, cuts)))
    outcome = RUNNERS[client](running.base_url, transport, dialect)
    TALLY["streams"] += 1
    TALLY[f"{client}-{transport}"] += 1
    TALLY["untyped"] += outcome.error is not None and not isinstance(outcome.error, ALLOWED_ERRORS)
    check_outcome(outcome.events, outcome.error)
