"""The 40 recordings of ``providers-more`` under ``generic`` and under the dialect a user gets.

Each recording's ``expected.json`` entry was read off the wire by hand (see its MANIFEST). Every
run here treats warnings as errors: a provider's odd value must not make pydantic warn while the
stream is read.
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from openai import LengthFinishReasonError

import deltaflow
from deltaflow import operators as ops
from deltaflow.dialects import detect_dialect
from deltaflow.errors import DeltaflowError, ProviderError
from deltaflow.events import BaseEvent
from deltaflow.recipes import print_stream
from tests.fixtures import MORE_PROVIDER_FIXTURES, require

EXPECTED = MORE_PROVIDER_FIXTURES / "expected.json"


def _runs() -> list[Any]:
    """(recording, dialect) pairs: ``generic``, the detected dialect and any the MANIFEST names."""
    if not EXPECTED.exists():
        return [pytest.param("<missing>", "generic", id="<missing>")]
    expected = json.loads(EXPECTED.read_text(encoding="utf-8"))
    return [
        pytest.param(name, dialect, id=f"{name}-{dialect}")
        for name, entry in expected.items()
        for dialect in dict.fromkeys(
            ("generic", detect_dialect(entry["base_url"]).name, *entry.get("extra_dialects", ()))
        )
    ]


RUNS = _runs()


def _expected(name: str) -> dict[str, Any]:
    entries: dict[str, Any] = json.loads(require(EXPECTED).read_text(encoding="utf-8"))
    return entries[name]


def _chunks(path: Path) -> Iterator[Any]:
    """The recording's chunks, as deltaflow reads them off the wire (an error payload raises)."""
    if path.suffix == ".sse":
        return deltaflow.chunks_from_sse(path.read_bytes())
    return deltaflow.chunks_from_jsonl(path)


def _source(path: Path) -> Any:
    return deltaflow.from_sse(path.read_bytes()) if path.suffix == ".sse" else deltaflow.from_jsonl(path)


def _text(value: str | None) -> str | None:
    # expected.json's reader (the MANIFEST's reference.py) writes text that never came as null,
    # where OpenAI's accumulation keeps a `content: ""` that was sent as ""
    return value or None


def _reading(completion: Any) -> dict[str, Any]:
    """A completion in expected.json's terms."""
    usage = completion.usage
    return {
        "choices": [
            {
                "index": choice.index,
                "content": _text(choice.message.content),
                "reasoning": _text(getattr(choice.message, "reasoning_content", None)),
                "tool_calls": [
                    {"id": call.id, "name": call.function.name, "arguments": call.function.arguments}
                    for call in choice.message.tool_calls or []
                ],
                "finish_reason": choice.finish_reason,
            }
            for choice in completion.choices
        ],
        "usage": None
        if usage is None
        else {key: getattr(usage, key) for key in ("prompt_tokens", "completion_tokens", "total_tokens")},
    }


def _replay(name: str, dialect: str) -> tuple[list[BaseEvent], Exception | None]:
    events: list[BaseEvent] = []
    errors: list[Exception] = []
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _source(require(MORE_PROVIDER_FIXTURES / name)).pipe(
            ops.normalize(dialect), ops.to_events()
        ).subscribe(events.append, errors.append)
    return events, errors[0] if errors else None


@pytest.mark.parametrize(("name", "dialect"), RUNS)
def test_the_pipeline_reads_what_the_wire_says(name: str, dialect: str) -> None:
    """Content, reasoning, tool calls, finish reasons and usage are expected.json's, without a warning."""
    expected = _expected(name)
    events, error = _replay(name, dialect)
    if expected["outcome"] == "error":
        assert isinstance(error, ProviderError)
        assert str(error) == expected["error"]["message"]
        assert error.completion is not None
        completion = error.completion
    else:
        assert error is None, repr(error)
        completion = events[-1].completion  # type: ignore[attr-defined]
        assert events[-1].type == "completion.done"
    assert _reading(completion) == {"choices": expected["choices"], "usage": expected["usage"]}
    # no chunk rejected: the only error event is the one reporting the provider's error, or the
    # notice that a choice ended without a finish reason (the flag on completion.done says it too)
    errors = [event for event in events if event.type == "error"]
    unfinished = [event for event in errors if event.code == "finish_reason_missing"]  # type: ignore[attr-defined]
    reported = [event.exception for event in errors if event not in unfinished]  # type: ignore[attr-defined]
    assert reported == ([error] if expected["outcome"] == "error" else [])
    if expected["outcome"] != "error":
        finished = all(choice["finish_reason"] is not None for choice in expected["choices"])
        assert events[-1].unfinished is not finished  # type: ignore[attr-defined]
        assert len(unfinished) == sum(choice["finish_reason"] is None for choice in expected["choices"])


@pytest.mark.parametrize(("name", "dialect"), RUNS)
def test_no_empty_refusal(name: str, dialect: str) -> None:
    """None of these answers refuses: no ``refusal.delta`` event, no ``message.refusal``, not even ``""``."""
    events, error = _replay(name, dialect)
    assert [event for event in events if event.type.startswith("refusal.")] == []
    completion = error.completion if isinstance(error, DeltaflowError) else events[-1].completion  # type: ignore[attr-defined]
    assert [choice.message.refusal for choice in completion.choices] == [None] * len(completion.choices)


@pytest.mark.parametrize(("name", "dialect"), RUNS)
def test_the_facade_gives_the_same_final_completion(name: str, dialect: str) -> None:
    """``ChatStream`` (openai's surface) ends as openai's helper would, with the same completion."""
    expected = _expected(name)
    path = require(MORE_PROVIDER_FIXTURES / name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        stream = deltaflow.ChatStream(_chunks(path), dialect=dialect)
        cut = any(choice["finish_reason"] == "length" for choice in expected["choices"])
        if expected["outcome"] == "error":
            with pytest.raises(ProviderError) as raised:
                stream.get_final_completion()
            completion = raised.value.completion
        elif cut:
            with pytest.raises(LengthFinishReasonError) as cut_off:
                stream.get_final_completion()
            completion = cut_off.value.completion
        else:
            completion = stream.get_final_completion()
    assert _reading(completion) == {"choices": expected["choices"], "usage": expected["usage"]}


@pytest.mark.parametrize(("name", "dialect"), RUNS)
def test_print_stream_never_says_refused(name: str, dialect: str) -> None:
    """The terminal recipe prints no ``[refused]`` for answers that carry an empty refusal field."""
    path = require(MORE_PROVIDER_FIXTURES / name)
    out = io.StringIO()
    try:
        print_stream(deltaflow.ChatStream(_chunks(path), dialect=dialect), file=out)
    except ProviderError:
        assert _expected(name)["outcome"] == "error"
    assert "[refused]" not in out.getvalue()
    assert out.getvalue().strip()
