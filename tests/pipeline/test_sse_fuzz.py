"""Fuzzing raw SSE bytes in memory: mutated streams through chunks_from_sse and from_sse, every dialect.

Whatever the bytes, only deltaflow's errors (and openai's finish-reason errors) escape, and an error
carries the completion accumulated before it. Counts are kept in ``TALLY`` (``-s`` prints them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import deltaflow
from deltaflow import operators as ops
from tests.sse_mutations import ALLOWED_ERRORS, Mutation, check_outcome, hostile_bodies, reads_of

TALLY: Counter[str] = Counter()
FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    print(f"\nSSE fuzz in memory: {dict(TALLY)}")


@pytest.mark.parametrize("dialect", ["generic", "openai"])
@FUZZ
@given(case=hostile_bodies(), cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_chat_stream_over_chunks_from_sse(
    dialect: str, case: tuple[bytes, list[Mutation]], cuts: list[int]
) -> None:
    """ChatStream over chunks_from_sse: typed errors only, the partial completion kept."""
    body, _applied = case
    events: list[Any] = []
    error: BaseException | None = None
    try:
        with deltaflow.ChatStream(
            deltaflow.pipeline.chunks_from_sse(reads_of(body, cuts)), dialect=dialect
        ) as s:
            events.extend(s)
            s.get_final_completion()
    except Exception as caught:  # every exception is checked below
        error = caught
    TALLY["streams"] += 1
    TALLY[f"chat_stream-{dialect}"] += 1
    TALLY["untyped"] += error is not None and not isinstance(error, ALLOWED_ERRORS)
    check_outcome(events, error)


@pytest.mark.parametrize("dialect", ["generic", "openai"])
@FUZZ
@given(case=hostile_bodies(), cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_rx_chain_over_from_sse(dialect: str, case: tuple[bytes, list[Mutation]], cuts: list[int]) -> None:
    """from_sse piped through normalize and to_events: on_error gets only typed errors."""
    body, _applied = case
    events: list[Any] = []
    errors: list[BaseException] = []
    deltaflow.from_sse(reads_of(body, cuts)).pipe(ops.normalize(dialect), ops.to_events()).subscribe(
        events.append, errors.append
    )
    TALLY["streams"] += 1
    TALLY[f"from_sse-{dialect}"] += 1
    TALLY["untyped"] += bool(errors) and not isinstance(errors[0], ALLOWED_ERRORS)
    assert len(errors) <= 1
    check_outcome(events, errors[0] if errors else None)
