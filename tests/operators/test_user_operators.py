"""What an operator of the user's costs at each place in the README's chain, counted (no clock).

The README's "Write your own operator" says it: deltaflow's ``map`` / ``filter`` cost one call per
event anywhere; a plain reactivex operator costs one reactivex subscription call
(``AutoDetachObserver.on_next``) per item it receives, one more per event it passes on when
deltaflow's operators follow it (they start a fused chain of their own), and, between
``accumulate()`` and ``parse_partial_json``, a copy of each event that operator fills in (the
``chunk`` and ``content.delta`` of every content chunk, and ``completion.done``) instead of
filling it in place. The events are the same in every case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import reactivex
import reactivex.operators as rx
from pydantic import BaseModel
from reactivex.observer.autodetachobserver import AutoDetachObserver

import deltaflow._lazy
from deltaflow import operators as ops
from deltaflow.events import BaseEvent
from tests.chunks import chunk


class Weather(BaseModel):
    city: str
    temperature: float


PARTS = ['{"ci', 'ty": "Pa', 'ris", "temp', 'erature": 2', "1.5}"]


def _logprobs(token: str) -> dict[str, Any]:
    return {
        "content": [{"token": token, "logprob": -0.1, "bytes": None, "top_logprobs": []}],
        "refusal": None,
    }


CHUNKS = [
    chunk({"delta": {"role": "assistant", "content": ""}}),
    *(chunk({"delta": {"content": part}, "logprobs": _logprobs(part)}) for part in PARTS),
    chunk({"delta": {}, "finish_reason": "stop"}),
]


def _keep(event: BaseEvent) -> bool:
    return not event.type.startswith("logprobs.")


class Counts:
    """Calls counted while a chain runs."""

    def __init__(self) -> None:
        self.copies = 0  # events derived from another (deltaflow._lazy.derive)
        self.hops = 0  # reactivex subscription calls
        self.user_calls = 0  # the user's own function


@pytest.fixture
def counts(monkeypatch: pytest.MonkeyPatch) -> Counts:
    counted = Counts()
    derive = deltaflow._lazy.derive
    on_next = AutoDetachObserver.on_next

    def counting_derive(*args: Any, **kwargs: Any) -> Any:
        counted.copies += 1
        return derive(*args, **kwargs)

    def counting_on_next(self: AutoDetachObserver[Any], value: Any) -> None:
        counted.hops += 1
        on_next(self, value)

    monkeypatch.setattr(deltaflow._lazy, "derive", counting_derive)
    monkeypatch.setattr(AutoDetachObserver, "on_next", counting_on_next)
    return counted


def _run(counts: Counts, *operators: Callable[[Any], Any]) -> list[dict[str, Any]]:
    counts.copies = counts.hops = counts.user_calls = 0
    out: list[BaseEvent] = []
    reactivex.from_iterable(CHUNKS).pipe(*operators).subscribe(out.append)
    return [event.model_dump() for event in out]


def _counted(predicate: Callable[[Any], bool], counts: Counts) -> Callable[[Any], bool]:
    def counted(item: Any) -> bool:
        counts.user_calls += 1
        return predicate(item)

    return counted


def _parse() -> Callable[[Any], Any]:
    return ops.parse_partial_json(response_format=Weather)


def test_a_users_operator_costs_what_the_readme_says_at_each_place(counts: Counts) -> None:
    """Copies and reactivex calls added at each place, against the fused chain; the same events."""
    fused = _run(counts, ops.accumulate(), _parse())
    base_copies, base_hops = counts.copies, counts.hops
    assert base_hops == len(CHUNKS) + len(fused)  # into the chain's head and out to the subscriber
    expected = [event for event in fused if _keep_dump(event)]
    made = _run(counts, ops.accumulate(), rx.filter(lambda _: True))
    accumulated = len(made)  # the events accumulate() makes (parse_partial_json adds its own after)
    kept_by_accumulate = sum(1 for event in made if _keep_dump(event))
    chunk_events = sum(1 for event in made if event["type"] == "chunk")
    # the deltas parse_partial_json gives a ``parsed`` (not the blank first one)
    filled_deltas = sum(
        1 for event in fused if event["type"] == "content.delta" and event["parsed"] is not None
    )

    # deltaflow's filter between the two: one call of the user's function per event, nothing else
    assert _run(counts, ops.accumulate(), ops.filter(_counted(_keep, counts)), _parse()) == expected
    assert counts.user_calls == accumulated
    assert counts.copies == base_copies
    assert counts.hops == len(CHUNKS) + len(expected)

    # a plain reactivex operator before accumulate(): one hop per chunk
    assert _run(counts, rx.filter(_counted(lambda _: True, counts)), ops.accumulate(), _parse()) == fused
    assert counts.user_calls == len(CHUNKS)
    assert (counts.copies, counts.hops) == (base_copies, base_hops + len(CHUNKS))

    # between accumulate() and parse_partial_json: a hop per event in, one per event passed on, and a
    # copy of each event parse_partial_json fills in (chunk, content.delta, completion.done)
    assert _run(counts, ops.accumulate(), rx.filter(_counted(_keep, counts)), _parse()) == expected
    assert counts.user_calls == accumulated
    assert counts.copies == base_copies + chunk_events + filled_deltas + 1
    assert counts.hops == len(CHUNKS) + accumulated + kept_by_accumulate + len(expected)

    # at the end: one hop per event in
    assert _run(counts, ops.accumulate(), _parse(), rx.filter(_counted(_keep, counts))) == expected
    assert counts.user_calls == len(fused)
    assert counts.copies == base_copies
    assert counts.hops == len(CHUNKS) + len(fused) + len(expected)


def _keep_dump(event: dict[str, Any]) -> bool:
    return not str(event["type"]).startswith("logprobs.")


def test_map_passes_on_what_the_function_returns_and_fails_typed(counts: Counts) -> None:
    """``map`` derives events in the chain; an exception of the user's ends it with the completion so far."""
    shouted = _run(
        counts,
        ops.accumulate(),
        ops.map(
            lambda event: (
                event.evolve(fields={"delta": event.delta.upper()})
                if event.type == "content.delta"
                else event
            )
        ),
        _parse(),
    )
    deltas = [event["delta"] for event in shouted if event["type"] == "content.delta"]
    assert deltas == ["", *(part.upper() for part in PARTS)]

    def fail_on_second_delta(event: Any) -> Any:
        if event.type == "content.delta" and event.delta == PARTS[1]:
            raise KeyError("mine")
        return event

    seen: list[BaseEvent] = []
    errors: list[Exception] = []
    reactivex.from_iterable(CHUNKS).pipe(ops.accumulate(), ops.map(fail_on_second_delta)).subscribe(
        seen.append, errors.append
    )
    assert [type(error) for error in errors] == [KeyError]
    assert seen[-1].type == "error"
    completion = errors[0].completion  # type: ignore[attr-defined]
    assert completion.choices[0].message.content == PARTS[0] + PARTS[1]
