"""Chunks built from dicts: the chunk the same JSON gives over HTTP (validated when well-formed, built as
openai builds it when not), so a dict source and a server behave alike."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from deltaflow._openai_compat import build_chunk
from deltaflow.pipeline import chunk_from_dict, chunk_from_json

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


def _chunk(**choice: Any) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": None, **choice}],
    }


@settings(max_examples=300, deadline=None)
@given(
    created=st.sampled_from([1, 1.0, "1", True, None, "x"]),
    index=st.sampled_from([0, "0", 0.0, 1, None]),
    finish=st.sampled_from([None, "stop", "length", "tool_calls", "weird", 3]),
    delta=st.dictionaries(
        st.sampled_from(["content", "role", "refusal", "reasoning_content", "tool_calls", "x"]),
        values,
        max_size=3,
    ),
    extra=st.dictionaries(
        st.sampled_from(["usage", "system_fingerprint", "obfuscation", "provider"]), values
    ),
)
def test_a_dict_gives_the_chunk_its_json_gives(
    created: Any, index: Any, finish: Any, delta: dict[str, Any], extra: dict[str, Any]
) -> None:
    """Whatever the dict holds, its chunk dumps as the chunk of the same JSON read from a server does."""
    data = {**_chunk(index=index, finish_reason=finish, delta=delta), **extra, "created": created}
    built, over_http = build_chunk(data), chunk_from_json(json.dumps(data))
    assert built.model_dump(warnings=False) == over_http.model_dump(warnings=False)
    assert built.model_fields_set == over_http.model_fields_set


def test_an_unexpected_value_is_kept_not_rejected() -> None:
    chunk = chunk_from_dict(_chunk(finish_reason="weird"))
    assert chunk.choices[0].finish_reason == "weird"
    assert chunk.choices[0].delta.content == "hi"
