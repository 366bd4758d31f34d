"""The README's examples run, in order, against the replay server: they never rot."""

from __future__ import annotations

import contextlib
import io
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deltaflow.replay import ReplayServer, Samples, Scenario
from tests.responses.scripted import scripted, served

README = Path(__file__).resolve().parents[1] / "README.md"


def _examples() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.DOTALL)


def _route(request: dict[str, Any]) -> Scenario:
    """Answer like a provider would: a tool call, then text; JSON for a response format; else reasoning + text."""
    if "input" in request:  # the Responses API
        return served(scripted(json.dumps({"city": "Paris", "celsius": 18.5}), chunk_size=6))
    messages = request.get("messages", [])
    if request.get("tools") and not any(message.get("role") == "tool" for message in messages):
        name = request["tools"][0]["function"]["name"]
        return Scenario.scripted(None, tool_calls=[{"name": name, "arguments": {"city": "Paris"}}])
    if request.get("tools"):
        return Scenario.scripted("It is 18.5 °C in Paris.")
    if request.get("response_format"):
        return Scenario.scripted(json.dumps({"city": "Paris", "celsius": 18.5}))
    return Scenario.scripted("Paris is the capital of France.", reasoning="A capital: Paris.")


@pytest.fixture(scope="module", params=["routed", "samples"])
def server(request: pytest.FixtureRequest) -> Iterator[ReplayServer]:
    """The provider the examples talk to: the route above, and what ``deltaflow serve`` serves given no file
    (the packaged samples), which the README tells a reader without a key to point the examples at."""
    with ReplayServer(_route if request.param == "routed" else Samples()) as running:
        yield running


def test_readme_has_an_example_per_use() -> None:
    """Drop-in, structured output, Rx, sinks, a recipe, another provider and async are all shown."""
    text = "\n".join(_examples())
    for needle in (
        "deltaflow.stream(",
        "response_format=",
        ".pipe(",
        "sinks.fan_out(",
        "tool_loop(",
        "dialect=",
        "astream(",
        "responses.stream(",
    ):
        assert needle in text


def test_readme_examples_run(server: ReplayServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Every python block of the README runs, sharing one namespace as a reader's session would."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-readme")
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("DEEPSEEK_API_KEY", "sk-readme")
    monkeypatch.setenv("DEEPSEEK_BASE_URL", server.base_url)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, Any] = {"__name__": "readme"}
    outputs = []
    for number, source in enumerate(_examples()):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(source, f"README example {number}", "exec"), namespace)
        outputs.append(out.getvalue())
    assert "Paris is the capital of France." in outputs[0]
    assert "city='Paris' celsius=18.5" in outputs[1]
    assert "add ('city',) 'Pa'\nappend ('city',) 'ris'" in outputs[1]
    assert "reasoning.done" in outputs[2]
    assert "Paris is the capital of France." in outputs[3]
    assert "It is 18.5 °C in Paris. (2 requests)" in outputs[4]
    assert 'get_weather -> {"city":' in outputs[4]  # the tool's result, as an event
    assert "thought: A capital: Paris." in outputs[5]
    assert "Paris is the capital of France." in outputs[6]
    assert "city='Paris' celsius=18.5" in outputs[7]
    # the Responses API example: its field paths as they fill in, then the parsed model
    assert any("add ('celsius',)" in output and "city='Paris' celsius=18.5" in output for output in outputs)
    assert any(output == "chat gpt-4o-mini closed\n" for output in outputs)  # the sinks.otel example
    assert any("DurableEndpoint 10.0" in output for output in outputs)  # the durable streams example
    # the front-ends example: the AI SDK chunks of a reasoning answer, in order
    front_ends = "start start-step reasoning-start reasoning-end text-start text-end finish-step finish\n"
    assert front_ends in outputs


def test_readme_first_example_passes_mypy_strict(tmp_path: Path) -> None:
    """Typed events: the first example type-checks as written, as it would in a user's project."""
    example = tmp_path / "first_example.py"
    example.write_text(_examples()[0], encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(example)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
