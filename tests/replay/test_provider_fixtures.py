"""Provider recordings replay as recorded: raw bytes, quirky chunks and mid-stream errors included."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from deltaflow.replay import ReplayServer, Scenario

FIXTURES = Path(__file__).resolve().parents[2] / ".." / "shared" / "fixtures"
SSE_FILES = sorted(FIXTURES.glob("**/*.sse"))
JSONL_FILES = sorted(FIXTURES.glob("providers/**/*.jsonl"))

pytestmark = pytest.mark.skipif(not SSE_FILES, reason=f"recorded fixtures not found under {FIXTURES}")


def model_for(path: Path) -> str:
    """The model name routing to a recording: its path under the fixtures folder, without suffix."""
    return path.relative_to(FIXTURES).with_suffix("").as_posix()


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    scenarios = {model_for(path): Scenario.from_file(path) for path in [*SSE_FILES, *JSONL_FILES]}
    with (
        ReplayServer(scenarios) as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as sync_client,
    ):
        yield sync_client


@pytest.mark.parametrize("path", SSE_FILES, ids=model_for)
def test_sse_recording_is_replayed_byte_for_byte(client: openai.OpenAI, path: Path) -> None:
    """The response body is the recorded body, comments and ``event:`` lines included."""
    with client.chat.completions.with_streaming_response.create(
        model=model_for(path), messages=[], stream=True
    ) as response:
        body = b"".join(response.iter_bytes())
        content_type = response.headers["content-type"]
    # a recording whose last event lacks its blank line is replayed with one
    assert body.rstrip(b"\n") == path.read_bytes().rstrip(b"\n")
    assert content_type.startswith("text/event-stream")


@pytest.mark.parametrize("path", JSONL_FILES, ids=model_for)
def test_jsonl_recording_streams_each_line_as_a_chunk(client: openai.OpenAI, path: Path) -> None:
    """Each line of a ``.jsonl`` recording reaches the client as one chunk, then the stream ends cleanly."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]
    stream = client.chat.completions.create(model=model_for(path), messages=[], stream=True)
    # warnings off: Mistral's list-typed ``content`` is not what the str-typed field expects
    assert [chunk.model_dump(exclude_unset=True, warnings=False) for chunk in stream] == lines


@pytest.mark.parametrize(
    ("recording", "chunks_before", "message"),
    [
        ("providers/openrouter/minimax-m2-midstream-error", 3, "Token limit reached"),
        ("providers/groq/gpt-oss-120b-tool-use-failed-event-error", 94, "Tool call validation failed"),
    ],
)
def test_recorded_midstream_error_raises_api_error(
    client: openai.OpenAI, recording: str, chunks_before: int, message: str
) -> None:
    """A recorded provider error reaches openai as ``APIError`` after the recorded number of chunks."""
    received: list[object] = []
    stream = client.chat.completions.create(model=recording, messages=[], stream=True)
    with pytest.raises(openai.APIError, match=message) as excinfo:
        received.extend(stream)
    assert len(received) == chunks_before
    assert type(excinfo.value) is openai.APIError


def test_non_streaming_quirky_recording_is_a_500(client: openai.OpenAI) -> None:
    """A recording openai's accumulator cannot fold (a tool call without ``index``) is a 500 non-streaming."""
    with pytest.raises(openai.InternalServerError, match="no non-streaming answer"):
        client.chat.completions.create(model="providers/mistral/mistral-small-tool-call", messages=[])


def test_non_streaming_recorded_error_uses_its_code(client: openai.OpenAI) -> None:
    """A recording with an error chunk answers non-streaming requests with that error and its HTTP code."""
    with pytest.raises(openai.BadRequestError, match="Token limit reached"):
        client.chat.completions.create(model="providers/openrouter/minimax-m2-midstream-error", messages=[])
