"""What ``deltaflow chat`` says when a server misbehaves: one line naming the failure, never a traceback.

The CLI runs as a subprocess against the project's hostile server on loopback (or a closed port, an
unresolvable host); ``describe`` is also held to one line for every error class the library has.
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2
import openai
import pytest

import deltaflow
from deltaflow import errors
from deltaflow._cli._errors import describe
from deltaflow.pipeline import chunk_from_json
from tests.live.hostile import HostileServer, Reply, chunk_json, sse, text_body


def _chat(base_url: str, *arguments: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "NO_COLOR": "1"}
    env.pop("OPENAI_BASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "deltaflow", "chat", "hi", "--base-url", base_url, *arguments],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The one error line on stderr (after any waiting notice), the exit status being 1."""
    assert result.returncode == 1, result
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("deltaflow: error: ")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _chat_against(reply: Reply, *arguments: str, suffix: str = "") -> subprocess.CompletedProcess[str]:
    with HostileServer(reply) as server:
        return _chat(server.base_url + suffix, *arguments)


def test_a_body_cut_mid_line_names_the_cut_and_what_arrived() -> None:
    """A cut mid-stream is not 'cannot reach the API': the answer so far is on stdout, the cut on stderr."""
    result = _chat_against(Reply([*text_body("Hel", "lo", done=False)[:2], b'data: {"id'], end="cut"))
    line = _error_line(result)
    assert "cut short" in line
    assert "after 3 characters" in line
    assert "cannot reach" not in line
    assert result.stdout.startswith("Hel")


def test_an_html_page_with_status_200_says_it_is_not_a_stream() -> None:
    """A proxy's error page with status 200: named for what it is, with its text."""
    page = b"<html><body>Bad gateway</body></html>"
    line = _error_line(_chat_against(Reply([page], headers={"content-type": "text/html"})))
    assert "not a chat-completion stream" in line
    assert "text/html" in line
    assert "Bad gateway" in line


def test_a_body_ending_mid_line_without_a_request_on_its_error_is_one_line() -> None:
    """StreamInterrupted raised by the decoder carries no request: described all the same (was a traceback)."""
    result = _chat_against(Reply([b"data: {"], headers={"content-type": "text/event-stream"}))
    assert "cut short" in _error_line(result)


def test_a_refused_connection_says_refused() -> None:
    """Nothing listening: 'refused', not openai's bare 'Connection error.'."""
    with HostileServer(Reply([])) as server:
        closed = server.base_url  # the port is free again once the server stopped
    line = _error_line(_chat(closed))
    assert "refused" in line
    assert "Connection error." not in line


def test_an_unresolvable_host_says_dns() -> None:
    """A host name that does not resolve is told apart from a refused connection."""
    line = _error_line(_chat("http://deltaflow-no-such-host.invalid/v1"))
    assert "could not be resolved" in line


def test_a_server_that_never_answers_says_timed_out() -> None:
    """Connected (the kernel's backlog accepts), then no answer at all: a timeout, and which option sets it."""
    start = time.monotonic()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        result = _chat(f"http://127.0.0.1:{port}/v1", "--idle-timeout", "0.5")
    line = _error_line(result)
    assert "timed out waiting for the answer" in line
    assert "--idle-timeout" in line
    assert time.monotonic() - start < 20


def test_headers_then_silence_ends_at_the_idle_timeout() -> None:
    """The status and headers, then nothing: no chunk within --idle-timeout."""
    line = _error_line(_chat_against(Reply([], end="hang"), "--idle-timeout", "0.5"))
    assert "sent no chunk for 0.5 s" in line


def test_a_404_from_a_base_url_ending_in_the_endpoint_says_to_drop_it() -> None:
    """openai appends /chat/completions: a base URL that has it gets 404 and is told to drop the path."""
    reply = Reply([b"not found"], status=404, headers={"content-type": "text/plain"})
    line = _error_line(_chat_against(reply, suffix="/chat/completions"))
    assert "404" in line
    assert "drop" in line
    assert "no detail" not in line


def test_a_provider_rate_limit_mid_stream_keeps_its_status() -> None:
    """OpenRouter's mid-stream error {"error": {"code": 429, ...}}: the 429 is in the line."""
    error = {"error": {"code": 429, "message": "Rate limit exceeded: free-models-per-day"}}
    line = _error_line(_chat_against(Reply(sse(chunk_json("", role=True), json.dumps(error)))))
    assert "(429)" in line
    assert "Rate limit exceeded" in line


def test_an_answer_that_is_not_json_under_a_schema_says_what_it_read(tmp_path: Path) -> None:
    """The parser's "expected 'Infinity' at position 1" comes with what was asked and what was read."""
    schema = tmp_path / "answer.json"
    schema.write_text('{"type": "object"}', encoding="utf-8")
    line = _error_line(_chat_against(Reply(text_body("I can", "not do that")), "--schema", str(schema)))
    assert "not valid JSON, which the schema asks for" in line
    assert "'I can" in line


def test_a_stall_mid_answer_ends_at_the_idle_timeout() -> None:
    """Keep-alive comments forever after some text: ended by --idle-timeout, the text kept."""
    comments = [b": OPENROUTER PROCESSING\n\n", 0.1] * 100
    start = time.monotonic()
    result = _chat_against(Reply([*text_body("Hel")[:2], *comments]), "--idle-timeout", "1")
    elapsed = time.monotonic() - start
    line = _error_line(result)
    assert "sent no chunk for 1 s" in line
    assert result.stdout.startswith("Hel")
    assert elapsed < 8


@pytest.mark.once
def test_a_long_wait_is_told_on_stderr_before_the_timeout() -> None:
    """After 5 s without a chunk, stderr says what is awaited and when the command gives up."""
    comments = [b": OPENROUTER PROCESSING\n\n", 0.2] * 60
    result = _chat_against(Reply([*text_body("Hel")[:2], *comments]), "--idle-timeout", "6.5")
    waiting = [line for line in result.stderr.splitlines() if line.startswith("deltaflow: waiting")]
    assert len(waiting) == 1, result.stderr
    assert "the next chunk" in waiting[0]
    assert "6.5 s" in waiting[0]
    assert "sent no chunk for 6.5 s" in _error_line(result)


def test_the_timeout_options_refuse_what_is_not_a_positive_number() -> None:
    """--timeout 0, -1, nan, inf, abc: a usage error, one line."""
    for value in ("0", "-1", "nan", "inf", "abc"):
        result = _chat("http://127.0.0.1:9/v1", "--idle-timeout", value)
        assert result.returncode == 2
        assert "positive number of seconds" in result.stderr
        assert "Traceback" not in result.stderr


def _instances() -> list[BaseException]:
    """One instance of every error class deltaflow defines, built with its required arguments only."""
    values: dict[str, object] = {
        "message": "m", "timeout": 1.0, "error": {"code": 429}, "position": 1, "text": "x", "errors": [],
        "choice_index": 0, "refusal": "no", "name": "f", "index": 0, "arguments": "{", "max_steps": 2,
        "messages": [], "reason": "stopped", "stream_id": "s", "after": "1", "next_id": "2", "missing": 1,
    }  # fmt: skip
    made: list[BaseException] = []
    for name in errors.__all__:
        cls = getattr(errors, name)
        if not issubclass(cls, errors.DeltaflowError):
            continue
        parameters = inspect.signature(cls).parameters.values()
        required = {
            p.name: values[p.name]
            for p in parameters
            if p.default is inspect.Parameter.empty and p.kind != p.VAR_KEYWORD
        }
        made.append(cls(**required))
    return made


@pytest.mark.parametrize("error", _instances(), ids=lambda error: type(error).__name__)
def test_every_library_error_is_described_in_one_line(error: BaseException) -> None:
    """With no request, no response, no completion: one line, no exception from describe itself."""
    line = describe(error, "chat")
    assert line
    assert "\n" not in line


def test_an_error_whose_str_fails_is_still_one_line() -> None:
    """describe never raises, whatever the error holds."""

    class BrokenError(Exception):
        def __str__(self) -> str:
            raise RuntimeError("no")

    assert describe(BrokenError(), "chat") == "BrokenError"


def test_a_length_error_reads_without_openais_usage_repr() -> None:
    """openai's LengthFinishReasonError message carries a CompletionUsage(...) repr: the line does not."""
    chunks = [
        chunk_from_json(payload)
        for payload in (chunk_json('{"a": "lo', role=True), chunk_json(finish_reason="length"))
    ]
    from pydantic import BaseModel  # noqa: PLC0415

    class Answer(BaseModel):
        a: str

    with pytest.raises(openai.LengthFinishReasonError) as raised:
        deltaflow.ChatStream(chunks, response_format=Answer).until_done()
    line = describe(raised.value, "chat")
    assert "CompletionUsage(" not in line
    assert "max_tokens" in line


def test_a_connect_timeout_is_told_from_a_read_timeout() -> None:
    """openai's 'Request timed out.' either way: the line says which, and which option sets it."""
    request = httpx2.Request("POST", "http://10.255.255.1/v1/chat/completions")
    lines = {}
    for cause in (httpx2.ConnectTimeout("timed out"), httpx2.ReadTimeout("timed out")):
        error = openai.APITimeoutError(request=request)
        error.__cause__ = cause
        lines[type(cause).__name__] = describe(error, "chat")
    assert "timed out connecting (see --timeout)" in lines["ConnectTimeout"]
    assert "timed out waiting for the answer (see --idle-timeout)" in lines["ReadTimeout"]
    assert all("Request timed out." not in line for line in lines.values())
