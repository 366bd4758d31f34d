"""``deltaflow chat --api responses`` and ``record --api responses`` against the replay server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from deltaflow import responses
from deltaflow._cli._main import run
from deltaflow.replay import ReplayServer
from tests.responses.scripted import scripted, served

ANSWER = "Hello from the Responses API, over loopback."


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    scenarios = {"m": served(scripted(ANSWER)), "failing": served(scripted("half", end="failed"))}
    with ReplayServer(scenarios) as running:
        yield running


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, server: ReplayServer) -> ReplayServer:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    return server


def test_chat_streams_a_responses_answer(env: ReplayServer, capsys: pytest.CaptureFixture[str]) -> None:
    """The answer is drawn on stdout, and the request went to ``/v1/responses`` with the prompt as input."""
    assert run(["chat", "hi there", "--model", "m", "--api", "responses", "--system", "be brief"]) == 0
    assert ANSWER in capsys.readouterr().out
    request = env.requests[-1]
    assert request.path == "/v1/responses"
    assert request.body["input"] == "hi there"
    assert request.body["instructions"] == "be brief"


def test_chat_reports_a_failed_response(env: ReplayServer, capsys: pytest.CaptureFixture[str]) -> None:
    """``response.failed``: exit 1 and one line naming the provider's message."""
    assert run(["chat", "hi", "--model", "failing", "--api", "responses"]) == 1
    assert "The model crashed." in capsys.readouterr().err


def test_record_saves_raw_events_that_replay(env: ReplayServer, tmp_path: Path) -> None:
    """``record --api responses`` writes the raw events, one JSON line each, which replay as recorded."""
    target = tmp_path / "answer.jsonl"
    assert run(["record", "hi", "--model", "m", "--api", "responses", "-o", str(target)]) == 0
    lines = [json.loads(line) for line in target.read_text(encoding="utf-8").splitlines()]
    assert lines == scripted(ANSWER)
    stream = responses.ResponseStream([responses.event_from_dict(line) for line in lines])
    assert stream.get_final_response().output_text == ANSWER


def test_several_choices_are_refused(env: ReplayServer, capsys: pytest.CaptureFixture[str]) -> None:
    """``-n 2`` has no meaning on the Responses API: one clear line, no request."""
    count = len(env.requests)
    assert run(["chat", "hi", "--api", "responses", "-n", "2"]) == 1
    assert "-n is not available with --api responses" in capsys.readouterr().err
    assert len(env.requests) == count


def test_chat_schema_goes_as_the_responses_text_format(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--schema`` with ``--api responses``: sent as ``text.format`` json_schema, the answer checked against it."""
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    path = tmp_path / "place.json"
    path.write_text(json.dumps(schema), encoding="utf-8")
    with ReplayServer(served(scripted('{"city":"Paris"}'))) as running:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", running.base_url)
        assert run(["chat", "where?", "--api", "responses", "--schema", str(path)]) == 0
        text_format = running.requests[-1].body["text"]["format"]
    assert text_format == {"type": "json_schema", "name": "place", "schema": schema, "strict": True}
    assert "Paris" in capsys.readouterr().out
