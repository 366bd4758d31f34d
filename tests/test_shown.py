"""``deltaflow._shown.shown``: bounded reprs for error messages about hostile payloads."""

from __future__ import annotations

from openai.types.chat import ChatCompletionChunk

from deltaflow._openai_compat import construct
from deltaflow._shown import shown


def _nested(depth: int) -> object:
    value: object = "bottom"
    for _ in range(depth):
        value = [value]
    return value


class _Broken:
    def __repr__(self) -> str:
        raise RuntimeError("no repr")


def test_deep_nesting_is_cut_to_a_few_levels() -> None:
    """A list nested 10,000 deep (past the recursion limit) reads as five brackets, the last one elided."""
    assert shown(_nested(10_000)) == "[[[[[...]]]]]"


def test_long_values_are_cut_to_the_limit() -> None:
    """A long string and a long list are cut, and the whole text never exceeds ``limit``."""
    assert shown("x" * 10_000).startswith("'xxx")
    assert len(shown("x" * 10_000)) < 100
    assert len(shown([{"k": "v" * 70}] * 6, limit=50)) == 53


def test_openai_models_show_their_fields_within_the_bounds() -> None:
    """A chunk built without validation (openai's way) shows its odd values, cut as deep as lists."""
    chunk = construct(ChatCompletionChunk, {"id": "c", "choices": _nested(5_000), "created": 1, "model": "m"})
    assert shown(chunk).startswith("ChatCompletionChunk(id='c', choices=[[[[...]]]], created=1, model='m'")


def test_a_value_whose_repr_fails_is_named_by_its_type() -> None:
    """``shown`` never raises: a failing ``__repr__`` gives the type's name."""
    assert "_Broken" in shown(_Broken())
