"""Credentials never reach a log: a real openai client against the replay server, content logging on."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest
import structlog
from openai.types.chat import ChatCompletionChunk
from structlog.testing import capture_logs

from deltaflow import ChatStream, sinks
from deltaflow.replay import ReplayServer, Scenario
from deltaflow.sinks import redact, redact_processor
from tests.chunks import chunk

SECRET = "sk-test-SECRET0123456789abcdefXYZ"
OTHER_SECRET = "tok-9f8e7d6c5b4a-ANOTHER"
# the parts of the key a leak would show even if cut or masked
FRAGMENTS = ("SECRET0123456789", "ANOTHER", "9f8e7d6c5b4a")


def _json_logger(out: io.StringIO) -> Any:
    return structlog.wrap_logger(
        structlog.PrintLogger(out),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
    )


def _assert_clean(text: str) -> None:
    for fragment in FRAGMENTS:
        assert fragment not in text


class TestReplayedRequest:
    def test_key_and_headers_never_logged(self) -> None:
        """Key, Authorization and X-Api-Key stay out of the JSON log, bound client and request included."""
        scenario = Scenario.scripted(
            f"Your key is {SECRET}.\nUse header Authorization: Bearer {SECRET}\nDone",
            tool_calls=[{"name": "login", "arguments": {"api_key": OTHER_SECRET, "user": "ada"}}],
            reasoning=f"The user pasted {SECRET} earlier",
        )
        out = io.StringIO()
        with ReplayServer(scenario) as server:
            client = openai.OpenAI(
                base_url=server.base_url,
                api_key=SECRET,
                default_headers={"X-Api-Key": OTHER_SECRET, "Proxy-Authorization": f"Basic {OTHER_SECRET}"},
            )
            request: dict[str, Any] = {
                "model": "replay-1",
                "messages": [{"role": "user", "content": f"my key is {SECRET}"}],
                "extra_headers": {"Authorization": f"Bearer {SECRET}"},
            }
            raw = client.chat.completions.with_raw_response.create(
                model=request["model"],
                messages=request["messages"],
                extra_headers=request["extra_headers"],
                stream=True,
            )
            logger = _json_logger(out).bind(
                client=client,
                request=request,
                api_key=client.api_key,
                headers=dict(client.default_headers),
                auth_headers=client.auth_headers,
                http_request=raw.http_request,
                http_headers=raw.http_request.headers,
                note=f"calling with Authorization: Bearer {SECRET}",
            )
            sink = sinks.log(logger, content_level="info", include_content=True, max_content=1000)
            ChatStream(raw.parse()).subscribe(sink).until_done()
            # the key really went over the wire: the replay server saw it
            assert server.requests[-1].headers["authorization"] == f"Bearer {SECRET}"

        text = out.getvalue()
        _assert_clean(text)
        lines = [json.loads(line) for line in text.splitlines()]
        events = [line["event"] for line in lines]
        assert {"content", "reasoning", "reasoning_done", "tool_call_done", "stream_completed"} <= set(events)
        contents = [line["text"] for line in lines if line["event"] == "content"]
        # content logging was really on: the text is there, the key replaced
        assert contents[0] == "Your key is [REDACTED]."
        assert contents[1] == "Use header Authorization: Bearer [REDACTED]"
        tool = next(line for line in lines if line["event"] == "tool_call_done")
        assert '"user": "ada"' in tool["arguments"]
        assert all(line["api_key"] == "[REDACTED]" for line in lines)
        assert all(line["headers"]["X-Api-Key"] == "[REDACTED]" for line in lines)
        assert all(line["auth_headers"] == {"Authorization": "[REDACTED]"} for line in lines)
        assert all(line["request"]["extra_headers"]["Authorization"] == "[REDACTED]" for line in lines)
        assert all(line["http_headers"]["authorization"] == "[REDACTED]" for line in lines)

    def test_failure_message_scrubbed(self) -> None:
        """An exception whose message quotes the key is logged without it."""

        def failing() -> Iterator[ChatCompletionChunk]:
            yield chunk({"delta": {"role": "assistant", "content": "hi"}})
            raise PermissionError(
                f"Incorrect API key provided: {SECRET}; header Authorization: Bearer {SECRET}"
            )

        out = io.StringIO()
        with pytest.raises(PermissionError):
            ChatStream(failing()).subscribe(sinks.log(_json_logger(out), content_level="info")).until_done()
        text = out.getvalue()
        _assert_clean(text)
        assert '"event": "stream_failed"' in text
        assert "Incorrect API key provided: [REDACTED]" in text


class TestRedact:
    def test_values_keys_and_nesting(self) -> None:
        """Secret-named keys at any depth, sk- keys and bearer tokens in any string are replaced."""
        value = {
            "Authorization": "anything",
            "nested": {"x-api-key": "anything", "list": [f"key {SECRET}", ("Bearer abc.def", 3)]},
            "url": "https://example.test/v1?api_key=abc123&model=m",
            "safe": "task-abcdefghij and a skeleton-key",
        }
        assert redact(value) == {
            "Authorization": "[REDACTED]",
            "nested": {"x-api-key": "[REDACTED]", "list": ["key [REDACTED]", ("Bearer [REDACTED]", 3)]},
            "url": "https://example.test/v1?api_key=[REDACTED]&model=m",
            "safe": "task-abcdefghij and a skeleton-key",
        }

    def test_objects_kept_unless_their_repr_leaks(self) -> None:
        """An object is kept as it is; one whose repr shows a key becomes its scrubbed repr."""

        class Leaky:
            def __repr__(self) -> str:
                return f"Leaky(key={SECRET!r})"

        client = openai.OpenAI(api_key=SECRET, base_url="http://127.0.0.1:9")
        assert redact(client) is client
        assert redact(Leaky()) == "Leaky(key='[REDACTED]')"

    def test_processor_for_context_the_sink_cannot_see(self) -> None:
        """redact_processor scrubs contextvars merged by the user's own configuration."""
        out = io.StringIO()
        logger = structlog.wrap_logger(
            structlog.PrintLogger(out),
            processors=[
                structlog.contextvars.merge_contextvars,
                redact_processor,
                structlog.processors.JSONRenderer(),
            ],
        )
        with structlog.contextvars.bound_contextvars(openai_api_key=SECRET, trace="t-1"):
            logger.info("called", error=ValueError(SECRET))
        line = json.loads(out.getvalue())
        assert line["openai_api_key"] == "[REDACTED]"
        assert line["trace"] == "t-1"
        _assert_clean(out.getvalue())

    def test_capture_logs_sees_scrubbed_bound_context(self) -> None:
        """The sink rebinds a logger whose bound context holds a secret, leaving other values as they are."""
        logger = structlog.get_logger("deltaflow.test").bind(api_key=SECRET, request_id="r-1")
        with capture_logs() as records:
            sink = sinks.log(logger)
            sink.on_completed()
        assert records[0]["api_key"] == "[REDACTED]"
        assert records[0]["request_id"] == "r-1"


def test_a_failing_sinks_traceback_is_scrubbed() -> None:
    """A sink failing with a token in its message: the reported traceback holds no token."""
    from structlog.testing import capture_logs  # noqa: PLC0415

    from deltaflow import ChatStream, sinks  # noqa: PLC0415
    from tests.chunks import text_stream  # noqa: PLC0415

    def leaky(event) -> None:
        raise RuntimeError("POST failed; headers={'Authorization': 'Bearer gsk_SECRETSECRET1234'}")

    with capture_logs() as records:
        ChatStream(text_stream("a")).subscribe(sinks.fan_out(leaky)).until_done()
    [report] = [record for record in records if record["event"] == "sink_failed"]
    assert "SECRETSECRET" not in repr(report)
    assert "RuntimeError" in report["traceback"]
