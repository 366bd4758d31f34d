"""Events built by ``deltaflow._lazy.build``: pydantic's own state, as ``model_construct`` makes it."""

from __future__ import annotations

import copy
import pickle

import pytest
from pydantic import BaseModel

from deltaflow._lazy import build, compute, refine
from deltaflow.events import ContentDelta


def _delta(**lazy: object) -> ContentDelta:
    fields = {"type": "content.delta", "choice_index": 0, "delta": "ab", "parsed": None}
    if not lazy:
        fields["snapshot"] = "ab"
    return build(ContentDelta, fields, {name: (str, value) for name, value in lazy.items()} or None)


def test_a_built_event_has_the_state_model_construct_gives() -> None:
    """Fields set, extra and private attributes as pydantic's public construction leaves them."""
    built = _delta()
    constructed = ContentDelta.model_construct(
        type="content.delta", choice_index=0, delta="ab", snapshot="ab", parsed=None
    )
    assert built.model_fields_set == constructed.model_fields_set
    assert built.model_extra == constructed.model_extra
    assert built.__pydantic_private__ == constructed.__pydantic_private__
    assert built == constructed
    assert built.model_dump() == constructed.model_dump()
    assert BaseModel.__eq__(built, constructed)  # pydantic's own comparison agrees


def test_copies_and_pickles_keep_each_event_its_own() -> None:
    """A copy with an update, a deep copy and a pickle round trip change nothing in the original."""
    first = _delta(snapshot="a")
    second = _delta(snapshot="b")
    updated = first.model_copy(update={"delta": "x"})
    assert updated.delta == "x"
    assert first.delta == "ab"
    assert first.model_fields_set == second.model_fields_set == set(ContentDelta.model_fields)
    assert copy.deepcopy(second) == second
    assert pickle.loads(pickle.dumps(second)) == second
    assert second.snapshot == "b"


def _shout(of: tuple[object, str]) -> str:
    former, suffix = of
    return str(compute(former)).upper() + suffix  # type: ignore[arg-type]


@pytest.mark.parametrize("read_first", [False, True])
@pytest.mark.parametrize("in_place", [False, True])
def test_refine_builds_on_the_former_value_however_far_it_was_computed(
    read_first: bool, in_place: bool
) -> None:
    """Pending, computed already, in place or on a copy: the refined field reads as function(former)."""
    event = _delta(snapshot="ab")
    if read_first:
        assert event.snapshot == "ab"
    refined = refine(event, "snapshot", _shout, "!", in_place=in_place)
    assert (refined is event) is in_place
    assert refined.snapshot == "AB!"
    if not in_place:
        assert event.snapshot == "ab"  # the copy leaves the original as it was
    twice = refine(refined, "snapshot", _shout, "?", in_place=in_place)
    assert twice.snapshot == "AB!?"
