"""sinks.console on a real terminal: a script run in a tmux pane, its final screen captured."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.fixtures import OPENAI_FIXTURES, require

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
from deltaflow import ChatStream, sinks
from tests.fixtures import load_openai_fixture

for name in ("parse_pydantic_model", "parse_pydantic_tool", "parse_nothing"):
    fixture = load_openai_fixture(name)
    stream = ChatStream(fixture.chunks, tools=fixture.tools, response_format=fixture.response_format)
    # a redraw for every parsed delta: the tree must still end up drawn once, in place
    stream.subscribe(sinks.console(refresh_per_second=1_000_000)).until_done()
"""


def _tmux(socket: str, *args: str, timeout: float = 30) -> str:
    result = subprocess.run(
        ["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=timeout, check=True
    )
    return result.stdout


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")
def test_final_screen_in_a_real_terminal(tmp_path: Path) -> None:
    """In a 120x40 tmux pane the JSON tree is drawn once, then the tool call line, text and closing lines."""
    require(OPENAI_FIXTURES)
    script = tmp_path / "render.py"
    script.write_text(SCRIPT, encoding="utf-8")
    # a private tmux server: the test never touches a session of the person running it
    socket, channel = f"deltaflow-test-{uuid.uuid4().hex[:8]}", "rendered"
    # the pane stays open (sleep) after signalling, so the screen can be captured as the script left it
    command = (
        f"cd {ROOT} && {sys.executable} {script} 2> {tmp_path / 'stderr'};"
        f" tmux -L {socket} wait-for -S {channel}; sleep 60"
    )
    env = {key: value for key, value in os.environ.items() if key not in {"NO_COLOR", "TMUX"}}
    subprocess.run(
        ["tmux", "-L", socket, "new-session", "-d", "-x", "120", "-y", "40", "-s", "render", command],
        check=True,
        env=env,
        timeout=30,
    )
    try:
        _tmux(socket, "wait-for", channel, timeout=60)
        screen = _tmux(socket, "capture-pane", "-p", "-J", "-t", "render")
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], check=False, timeout=30)
    assert (tmp_path / "stderr").read_text(encoding="utf-8") == ""
    lines = [line.rstrip() for line in screen.splitlines() if line.strip()]
    assert lines[:5] == ["{", '  "city": "San Francisco",', '  "temperature": 61,', '  "units": "f"', "}"]
    # redrawn in place for every parsed delta, yet on screen once
    assert screen.count('"city": "San Francisco"') == 1
    assert lines[5].startswith("── finish: stop · 93 tokens (79 prompt, 14 completion) · ")
    assert lines[6] == 'tool call GetWeatherArgs({"city":"Edinburgh","country":"UK","units":"c"})'
    assert lines[7].startswith("── finish: tool_calls · 100 tokens (76 prompt, 24 completion) · ")
    assert lines[8].startswith("I'm unable to provide real-time weather updates.")
    assert lines[9].startswith("── finish: stop · 44 tokens (14 prompt, 30 completion) · ")
    assert lines[9].endswith("33 chunks")
    assert len(lines) == 10
