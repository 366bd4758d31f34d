"""sinks.otel on the recorded provider streams: model, finish reasons and usage match the wire.

``providers-more`` comes with ``expected.json`` (checked by hand against the raw files). For
``providers`` the expectation is read off the wire here with the standard library alone: the
models named, the last ``finish_reason`` of each choice, the last ``usage`` object sent.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import deltaflow
from deltaflow.dialects import detect_dialect
from tests.fixtures import FIXTURES, PROVIDER_FIXTURES, require, sse_payloads
from tests.sinks.otel_capture import Telemetry, telemetry

__all__ = ["telemetry"]

MORE_FIXTURES = FIXTURES / "providers-more"
# the dialect each providers/ folder's recordings are read with
FOLDER_DIALECTS = {
    "anthropic-gateway": "generic",
    "azure": "azure",
    "deepseek": "deepseek",
    "groq": "groq",
    "mistral": "mistral",
    "openai": "openai",
    "openrouter": "openrouter",
    "perplexity": "perplexity",
    "qwen": "qwen",
    "xai": "xai",
    "zhipu": "zhipu",
}


def _payloads(path: Path) -> list[dict[str, Any]]:
    text = path.read_bytes()
    raw = sse_payloads(text) if path.suffix == ".sse" else text.decode("utf-8").splitlines()
    payloads = []
    for line in raw:
        try:
            payload = json.loads(line)
        except ValueError:
            continue
        if isinstance(payload, dict):
            payloads.append(payload)
    return payloads


def _wire_expectation(path: Path) -> dict[str, Any] | None:
    """Usage and finish reasons as the wire states them, or None for a stream that reports no usage."""
    usage = None
    reasons: dict[int, str] = {}
    for payload in _payloads(path):
        if payload.get("error"):
            return None  # a failed stream: its usage never reaches a client
        if isinstance(payload.get("usage"), dict) and "prompt_tokens" in payload["usage"]:
            usage = payload["usage"]
        for choice in payload.get("choices") or ():
            if choice.get("finish_reason"):
                reasons[choice.get("index", 0)] = choice["finish_reason"]
    if usage is None:
        return None
    return {
        "usage": usage,
        "finish_reasons": [reasons.get(index) for index in range(max(reasons, default=0) + 1)],
    }


def _cases() -> list[Any]:
    cases = []
    if (MORE_FIXTURES / "expected.json").exists():
        expected = json.loads((MORE_FIXTURES / "expected.json").read_text())
        for name, entry in sorted(expected.items()):
            if entry["outcome"] == "complete" and entry["usage"] is not None:
                dialect = (entry.get("extra_dialects") or [detect_dialect(entry["base_url"]).name])[0]
                finish = [choice["finish_reason"] for choice in entry["choices"]]
                wanted = {"usage": entry["usage"], "finish_reasons": finish}
                cases.append(pytest.param(MORE_FIXTURES / name, dialect, wanted, id=f"providers-more/{name}"))
    if PROVIDER_FIXTURES.exists():
        for path in sorted(PROVIDER_FIXTURES.glob("*/*")):
            wanted = _wire_expectation(path) if path.suffix in {".sse", ".jsonl"} else None
            if wanted is not None:
                dialect = FOLDER_DIALECTS[path.parent.name]
                cases.append(
                    pytest.param(path, dialect, wanted, id=f"providers/{path.parent.name}/{path.name}")
                )
    return cases or [pytest.param(PROVIDER_FIXTURES, "generic", {}, id="<missing>")]


@pytest.mark.parametrize(("path", "dialect", "wanted"), _cases())
def test_span_attributes_match_the_recording(
    telemetry: Telemetry, path: Path, dialect: str, wanted: dict[str, Any]
) -> None:
    """Response model, one finish reason per choice and the usage counts are the recording's."""
    require(path)
    chunks = (
        deltaflow.chunks_from_sse(path.read_bytes())
        if path.suffix == ".sse"
        else deltaflow.chunks_from_jsonl(path)
    )
    stream = deltaflow.ChatStream(chunks, dialect=dialect).subscribe(telemetry.sink(dialect=dialect))
    stream.until_done()
    attributes = telemetry.only_span().attributes
    assert attributes["deltaflow.stream.outcome"] == "completed"
    models = {payload["model"] for payload in _payloads(path) if payload.get("model")}
    assert attributes["gen_ai.response.model"] in models
    # a choice the provider never gave a finish reason reads `error`, as the conventions ask
    assert list(attributes["gen_ai.response.finish_reasons"]) == [
        reason or "error" for reason in wanted["finish_reasons"]
    ]
    assert attributes["gen_ai.usage.input_tokens"] == wanted["usage"]["prompt_tokens"]
    assert attributes["gen_ai.usage.output_tokens"] == wanted["usage"]["completion_tokens"]
    # the cache and reasoning counts, where the provider reports them
    wire_usage = (_wire_expectation(path) or {}).get("usage") or {}
    details = {
        "gen_ai.usage.cache_read.input_tokens": (wire_usage.get("prompt_tokens_details") or {}).get(
            "cached_tokens"
        ),
        "gen_ai.usage.reasoning.output_tokens": (wire_usage.get("completion_tokens_details") or {}).get(
            "reasoning_tokens"
        ),
    }
    for name, count in details.items():
        assert attributes.get(name) == (count if isinstance(count, int) else None), name
    (point,) = telemetry.histogram("gen_ai.client.operation.duration")
    assert point.attributes["gen_ai.response.model"] == attributes["gen_ai.response.model"]
