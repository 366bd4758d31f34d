"""The real openai client, over loopback HTTP, receives openai-python's recorded streams unchanged."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest

from deltaflow.replay import ReplayServer, Scenario

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures" / "openai-python"
RECORDINGS = sorted(FIXTURES.glob("*.sse"))

pytestmark = pytest.mark.skipif(not RECORDINGS, reason=f"openai-python fixtures not found in {FIXTURES}")


def recorded_payloads(path: Path) -> list[dict[str, Any]]:
    """The chunk JSON of every ``data:`` line, parsed independently of the replay package."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: {")]


def expected(path: Path) -> dict[str, Any]:
    outcome: dict[str, Any] = json.loads(path.with_suffix(".json").read_text(encoding="utf-8"))["expected"]
    return outcome


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    # one server for the module, each recording routed by using its file stem as the model name
    with ReplayServer({path.stem: Scenario.from_file(path) for path in RECORDINGS}) as running:
        yield running


@pytest.fixture
def client(server: ReplayServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as sync_client:
        yield sync_client


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda path: path.stem)
def test_sync_stream_yields_recorded_chunks(client: openai.OpenAI, path: Path) -> None:
    """Every chunk the sync client yields equals the recorded payload at the same position."""
    stream = client.chat.completions.create(model=path.stem, messages=[], stream=True)
    received = [chunk.model_dump(exclude_unset=True) for chunk in stream]
    assert received == recorded_payloads(path)


@pytest.mark.parametrize("path", RECORDINGS, ids=lambda path: path.stem)
async def test_async_stream_yields_recorded_chunks(server: ReplayServer, path: Path) -> None:
    """Every chunk the async client yields equals the recorded payload at the same position."""
    async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client:
        stream = await client.chat.completions.create(model=path.stem, messages=[], stream=True)
        received = [chunk.model_dump(exclude_unset=True) async for chunk in stream]
    assert received == recorded_payloads(path)


def test_stream_helper_gives_recorded_final_content(client: openai.OpenAI) -> None:
    """openai's own ``chat.completions.stream`` helper accumulates the recorded content."""
    path = FIXTURES / "parse_nothing.sse"
    with client.chat.completions.stream(model=path.stem, messages=[]) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.content == expected(path)["choices"][0]["content"]


WITH_CHOICES = [path for path in RECORDINGS if "choices" in expected(path)]


@pytest.mark.parametrize("path", WITH_CHOICES, ids=lambda path: path.stem)
def test_non_streaming_answer_matches_recording(client: openai.OpenAI, path: Path) -> None:
    """``stream: false`` gets one ChatCompletion whose choices carry the recorded outcome."""
    completion = client.chat.completions.create(model=path.stem, messages=[])
    assert completion.object == "chat.completion"
    for choice, want in zip(completion.choices, expected(path)["choices"], strict=True):
        assert choice.index == want["index"]
        assert choice.finish_reason == want["finish_reason"]
        assert choice.message.content == want["content"]
        assert choice.message.refusal == want["refusal"]
        calls = [
            (call.id, call.function.name, call.function.arguments)
            for call in choice.message.tool_calls or []
            if call.type == "function"
        ]
        assert calls == [(call["id"], call["name"], call["arguments"]) for call in want["tool_calls"] or []]
