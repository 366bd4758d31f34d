"""`deltaflow demo` as a new user runs it: a subprocess, no key, no network."""

from __future__ import annotations

import subprocess
import sys


def test_demo_streams_reasoning_content_and_structured_output() -> None:
    """The demo prints reasoning, streamed content, parsed paths and both final answers."""
    result = subprocess.run(
        [sys.executable, "-m", "deltaflow", "demo"], capture_output=True, text=True, timeout=60, check=True
    )
    out = result.stdout
    assert "reasoning.done         'The user asks for a capital. Easy.'" in out
    assert "final: 'Paris is the capital of France.'" in out
    assert "content.parsed.delta   append ['summary']" in out
    assert "final: Forecast(city='Oslo', celsius=-3.5, summary='Clear and cold')" in out
    assert "demo-key" not in out + result.stderr
