"""The deltaflow command: every subcommand documents itself; user errors are one line, no traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deltaflow.replay import ReplayServer, Scenario
from tests.fixtures import OPENAI_FIXTURES, require

COMMANDS = ["demo", "chat", "replay", "record", "serve"]


def _run(
    *arguments: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("OPENAI_")}
    return subprocess.run(
        [sys.executable, "-m", "deltaflow", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
        check=False,
    )


def _one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("deltaflow: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    """A replay server standing in for a provider."""
    with ReplayServer(Scenario.scripted("Hello from the replay server")) as running:
        yield running


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command: str) -> None:
    """--help works on every subcommand and describes it."""
    result = _run(command, "--help")
    assert result.returncode == 0
    assert f"usage: deltaflow {command}" in result.stdout


def test_chat_without_a_key_is_one_clear_line() -> None:
    """No OPENAI_API_KEY: one line saying so, exit 1."""
    _one_line_error(_run("chat", "hello"), "OPENAI_API_KEY is not set")


def test_unreachable_base_url_is_one_clear_line() -> None:
    """A base URL nobody listens on: one line naming the URL."""
    result = _run("chat", "hello", "--base-url", "http://127.0.0.1:9/v1", env={"OPENAI_API_KEY": "sk-test"})
    _one_line_error(result, "cannot reach the API")


def test_unknown_dialect_is_one_clear_line(server: ReplayServer) -> None:
    """An unknown dialect lists the known ones in one line."""
    result = _run(
        "chat", "hi", "--base-url", server.base_url, "--dialect", "nope", env={"OPENAI_API_KEY": "sk-test"}
    )
    _one_line_error(result, "nope")


def test_bad_schema_file_is_one_clear_line(tmp_path: Path, server: ReplayServer) -> None:
    """A schema file that is not JSON: one line naming the file."""
    schema = tmp_path / "schema.json"
    schema.write_text("{not json")
    result = _run(
        "chat",
        "hi",
        "--base-url",
        server.base_url,
        "--schema",
        str(schema),
        env={"OPENAI_API_KEY": "sk-test"},
    )
    _one_line_error(result, "schema.json")


def test_missing_recording_is_one_clear_line() -> None:
    """Replaying a file that does not exist: one line."""
    _one_line_error(_run("replay", "no-such-file.jsonl"), "recording not found")


def test_chat_streams_from_an_openai_compatible_endpoint(server: ReplayServer) -> None:
    """chat prints the streamed answer using OPENAI_API_KEY and --base-url."""
    result = _run("chat", "hi", "--base-url", server.base_url, env={"OPENAI_API_KEY": "sk-test"})
    assert result.returncode == 0, result.stderr
    assert "Hello from the replay server" in result.stdout
    assert server.requests[-1].headers["authorization"] == "Bearer sk-test"


def test_chat_log_json_never_logs_the_key(server: ReplayServer) -> None:
    """--log-json writes JSON records to stderr, without the API key."""
    result = _run(
        "chat",
        "hi",
        "--base-url",
        server.base_url,
        "--log-json",
        env={"OPENAI_API_KEY": "sk-test-SECRET-123"},
    )
    assert result.returncode == 0, result.stderr
    assert '"event": "stream_completed"' in result.stderr
    assert "SECRET" not in result.stdout + result.stderr


def test_record_then_replay_gives_the_same_text(tmp_path: Path, server: ReplayServer) -> None:
    """record saves the chunks as JSONL; replay of that file prints the same answer."""
    recording = tmp_path / "run.jsonl"
    result = _run(
        "record", "hi", "--base-url", server.base_url, "-o", str(recording), env={"OPENAI_API_KEY": "sk-t"}
    )
    assert result.returncode == 0, result.stderr
    replayed = _run("replay", str(recording), "--output", "text")
    assert replayed.returncode == 0, replayed.stderr
    assert "Hello from the replay server" in replayed.stdout


def test_replay_prints_events_of_a_recorded_sse_body() -> None:
    """replay of an SSE recording prints one line per event, ending with completion.done."""
    path = require(OPENAI_FIXTURES / "parse_nothing.sse")
    result = _run("replay", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("chunk")
    assert lines[-1].startswith("completion.done")
    assert any(line.startswith("content.done") for line in lines)


def test_serve_answers_the_openai_client(tmp_path: Path) -> None:
    """serve runs the replay server standalone; the openai client streams the recording from it."""
    import socket  # noqa: PLC0415
    import time  # noqa: PLC0415

    import openai  # noqa: PLC0415

    path = require(OPENAI_FIXTURES / "parse_nothing.sse")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "deltaflow", "serve", str(path), "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", max_retries=0)
        deadline = time.monotonic() + 20
        while True:
            try:
                chunks = list(client.chat.completions.create(model="anything", messages=[], stream=True))
                break
            except openai.APIConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        text = "".join(choice.delta.content or "" for chunk in chunks for choice in chunk.choices)
        assert text.startswith("I'm unable to provide real-time weather updates.")
    finally:
        process.terminate()
        process.wait(10)


def test_unwritable_recording_path_is_one_clear_line(server: ReplayServer, tmp_path: Path) -> None:
    """record into a folder that does not exist: one line naming the path."""
    target = tmp_path / "missing" / "run.jsonl"
    result = _run(
        "record", "hi", "--base-url", server.base_url, "-o", str(target), env={"OPENAI_API_KEY": "sk-t"}
    )
    _one_line_error(result, str(target))
