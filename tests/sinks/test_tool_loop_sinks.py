"""sinks.log and sinks.console as a tool loop's observers: every step shown, and each tool's result.

Three steps over the real openai client and the replay server: a call to ``get_weather`` (Paris, which
answers), then another (Oslo, whose tool raises), both at index 0 of their completion, then the answer.
"""

from __future__ import annotations

import io
from collections.abc import MutableMapping
from typing import Any

from rich.console import Console
from structlog.testing import capture_logs

from deltaflow import sinks
from deltaflow.recipes import tool_loop
from deltaflow.replay import ReplayServer, Scenario
from tests.recipes import MESSAGES, client

ANSWER = "Sunny in Paris; Oslo has no station."
LONG_SKY = "clear " * 100


def _three_steps(body: dict[str, Any]) -> Scenario:
    results = sum(message.get("role") == "tool" for message in body["messages"])
    if results == 0:
        return Scenario.scripted(None, tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}])
    if results == 1:
        return Scenario.scripted(None, tool_calls=[{"name": "get_weather", "arguments": {"city": "Oslo"}}])
    return Scenario.scripted(ANSWER)


def get_weather(city: str) -> dict[str, str]:
    """The sky over a city."""
    if city == "Oslo":
        raise LookupError("no station in Oslo")
    return {"city": city, "sky": LONG_SKY}


def _loop(observer: Any) -> None:
    with ReplayServer(_three_steps) as server:
        result = tool_loop(
            client(server), MESSAGES, {"get_weather": get_weather}, model="m", observers=[observer]
        )
    assert result.content == ANSWER


def test_the_log_has_a_tool_result_record_per_call_failures_at_warning() -> None:
    with capture_logs() as records:
        _loop(sinks.log(include_content=True, max_content=40))
    results: list[MutableMapping[str, Any]] = [r for r in records if r["event"] == "tool_result"]
    assert [(r["name"], r["index"], r["is_error"], r["log_level"]) for r in results] == [
        ("get_weather", 0, False, "info"),
        ("get_weather", 0, True, "warning"),
    ]
    ok, failed = results
    assert ok["call_id"] != failed["call_id"]
    assert (ok["error_code"], ok["error_type"]) == (None, None)
    assert ok["content_length"] > 500
    assert ok["content"].startswith('{"city":"Paris","sky":"clear ')
    assert ok["content"].endswith("…")
    assert len(ok["content"]) == 41
    assert (failed["error_code"], failed["error_type"]) == ("tool_failed", "LookupError")
    assert failed["content"] == "Error: LookupError: no station in Oslo"
    assert [r["event"] for r in records].count("tool_call_done") == 2


def test_the_log_leaves_tool_results_out_without_include_content() -> None:
    with capture_logs() as records:
        _loop(sinks.log())
    results = [r for r in records if r["event"] == "tool_result"]
    assert len(results) == 2
    assert not any("content" in r for r in results)


def test_the_console_shows_every_step_s_call_and_each_result_on_a_line() -> None:
    out = io.StringIO()
    _loop(sinks.console(Console(file=out, force_terminal=False, width=400)))
    lines = out.getvalue().splitlines()
    calls = [line for line in lines if line.startswith("tool call ")]
    assert calls == ['tool call get_weather({"city": "Paris"})', 'tool call get_weather({"city": "Oslo"})']
    (shown,) = [line for line in lines if line.startswith("tool result ")]
    assert shown.startswith('tool result get_weather: {"city":"Paris","sky":"clear ')
    assert shown.endswith("…")
    assert len(shown) == len("tool result get_weather: ") + 201
    assert "tool error get_weather: Error: LookupError: no station in Oslo" in lines
    assert ANSWER in lines
    order = [lines.index(calls[0]), lines.index(shown), lines.index(calls[1]), lines.index(ANSWER)]
    assert order == sorted(order)
