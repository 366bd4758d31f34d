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


LOOP_ANSWER = "useChat has two facts; the weather in Paris is unknown."
FACTS = ["it streams UI message chunks", "it resumes a running answer", "it renders tool parts"]


def lookup(topic: str, limit: int) -> dict[str, Any]:
    """Facts about a topic."""
    return {"topic": topic, "facts": FACTS[:limit]}


def weather(city: str) -> str:
    """The weather in a city: this station is down."""
    raise LookupError(f"no station in {city}")


LOOP_TOOLS = {"lookup": lookup, "weather": weather}
"""The tool loop's tools for ``TOOL_CALLS``: the first returns JSON, the second raises."""
LOOP_RESULTS = [
    json.dumps(lookup("useChat", 2), separators=(",", ":")),
    "Error: LookupError: no station in Paris",
]
"""The tool messages the model gets, in order."""


def tool_loop_route(tokens_per_second: float | None = None) -> Any:
    """The replay server's router for a tool loop: ``TOOL_CALLS`` first, the answer once results came."""
    pacing = {"tokens_per_second": tokens_per_second} if tokens_per_second else {}

    def route(body: dict[str, Any]) -> Scenario:
        if any(message.get("role") == "tool" for message in body["messages"]):
            return Scenario.scripted(LOOP_ANSWER, **pacing)
        return Scenario.scripted(None, tool_calls=TOOL_CALLS, **pacing)

    return route
