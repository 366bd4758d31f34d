"""`deltaflow demo` as a new user runs it: a subprocess, no key, no network."""

from __future__ import annotations

import os
import subprocess
import sys


def test_demo_shows_reasoning_a_tool_round_trip_and_structured_output() -> None:
    """The demo prints reasoning apart, runs the tool and feeds it back, and parses the structured answer."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("OPENAI_")}
    result = subprocess.run(
        [sys.executable, "-m", "deltaflow", "demo", "--fast"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=env,
    )
    out = result.stdout
    assert "reasoning: The user asks for a capital city. France's capital is Paris." in out
    assert "Paris is the capital of France." in out
    assert 'tool call get_weather({"city": "Paris"})' in out
    assert 'tool result sent back: {"city":"Paris","celsius":18.5,"sky":"sunny"}' in out
    assert "It is 18.5 °C and sunny in Paris right now." in out
    assert (
        "parsed: Forecast(city='Oslo', celsius=-3.5, sky='clear and cold', next_days=['snow', 'snow', 'sun'])"
        in out
    )
    assert "── 4. the Responses API, the same events" in out
    assert "Bonjour! The Responses API streams the same events." in out
    assert "response resp_replay_1: 13 output tokens" in out
    assert out.count("── finish: stop") == 4
    assert "demo-key" not in out + result.stderr
