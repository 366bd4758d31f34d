"""The recorded stream the front-end tests read: reasoning, structured output and two tool calls."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel

from deltaflow.replay import Fault, Scenario

REASONING = "The user wants a summary; look up two facts first."
STRUCTURED = {"title": "Front-ends", "points": ["useChat", "AG-UI", "resume"], "meta": {"formats": 3}}
TOOL_CALLS = [
    {"name": "lookup", "arguments": {"topic": "useChat", "limit": 2}},
    {"name": "weather", "arguments": {"city": "Paris"}},
]
TOOLS: list[dict[str, Any]] = [
    {"type": "function", "function": {"name": name, "parameters": {"type": "object"}}}
    for name in ("lookup", "weather")
]


class Summary(BaseModel):
    """The structured output's model."""

    title: str
    points: list[str]
    meta: dict[str, int]


def scenarios(tokens_per_second: float | None = None) -> dict[str, Scenario]:
    """The full recording, by model name; paced when ``tokens_per_second`` is given."""
    pacing = {"tokens_per_second": tokens_per_second} if tokens_per_second else {}
    return {
        "full": Scenario.scripted(
            json.dumps(STRUCTURED), reasoning=REASONING, tool_calls=TOOL_CALLS, **pacing
        ),
        "failing": Scenario.scripted(
            json.dumps(STRUCTURED), reasoning=REASONING, fault=Fault.error_after(6, message="overloaded")
        ),
    }
