"""``deltaflow demo``: a scripted session from the embedded replay server, no key and no network.

Four requests go through the real openai client over loopback and the full pipeline, drawn by
the console sink: an answer with reasoning streamed apart, a tool call run locally with its
result fed back to the model, a structured output filling in as it streams, and one answer from
the Responses API (``POST /v1/responses``), drawn by the same sink from the same events.
"""

from __future__ import annotations

from typing import Any

import openai
from pydantic import BaseModel

from deltaflow import responses, sinks
from deltaflow.pipeline import ChatStream, stream
from deltaflow.recipes import tool_loop
from deltaflow.replay import ReplayServer, Scenario, scripted_response

__all__ = ["run_demo"]


class Forecast(BaseModel):
    """The structured answer of the third request."""

    city: str
    celsius: float
    sky: str
    next_days: list[str]


def get_weather(city: str) -> dict[str, Any]:
    """The current weather in a city (the demo's local tool)."""
    return {"city": city, "celsius": 18.5, "sky": "sunny"}


def _router(tokens_per_second: float | None) -> Any:
    pace: dict[str, Any] = {"tokens_per_second": tokens_per_second, "chunk_size": 4}
    forecast = Forecast(city="Oslo", celsius=-3.5, sky="clear and cold", next_days=["snow", "snow", "sun"])
    scenarios = {
        "reasoning": Scenario.scripted(
            "Paris is the capital of France.",
            reasoning="The user asks for a capital city. France's capital is Paris.",
            **pace,
        ),
        "tool-call": Scenario.scripted(
            None, tool_calls=[{"name": "get_weather", "arguments": {"city": "Paris"}}], **pace
        ),
        "tool-answer": Scenario.scripted("It is 18.5 °C and sunny in Paris right now.", **pace),
        "structured": Scenario.scripted(forecast.model_dump_json(), **pace),
        "responses": scripted_response("Bonjour! The Responses API streams the same events.", **pace),
    }

    def route(request: dict[str, Any]) -> Scenario:
        if "input" in request:  # POST /v1/responses
            return scenarios["responses"]
        if request.get("model") == "demo-tools":
            answered = any(message.get("role") == "tool" for message in request.get("messages", []))
            return scenarios["tool-answer" if answered else "tool-call"]
        return scenarios["structured" if request.get("response_format") else "reasoning"]

    return route


def _title(text: str) -> None:
    print(f"\n── {text} " + "─" * max(0, 60 - len(text)))


def run_demo(*, fast: bool = False) -> int:
    """Run the four scripted requests; ``fast`` drops the pacing (for tests)."""
    with ReplayServer(_router(None if fast else 80.0)) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="demo-key-not-sent-anywhere")
        print(f"replay server on {server.base_url}: the real openai client, no key, no network")

        _title("1. reasoning apart from the answer")
        ask = [{"role": "user", "content": "What is the capital of France?"}]
        chat: ChatStream[Any] = stream(client, model="demo", messages=ask)
        with chat.subscribe(sinks.console()) as running:
            running.until_done()

        _title("2. a tool call run locally, its result fed back")
        ask = [{"role": "user", "content": "What's the weather in Paris?"}]
        result = tool_loop(
            client, ask, {"get_weather": get_weather}, model="demo-tools", observers=[sinks.console()]
        )
        print(f"steps: {result.steps}; tool result sent back: {result.messages[2]['content']}")

        _title("3. structured output filling in")
        ask = [{"role": "user", "content": "Forecast for Oslo, as JSON."}]
        structured: ChatStream[Forecast] = stream(
            client, model="demo", messages=ask, response_format=Forecast
        )
        with structured.subscribe(sinks.console()) as running:
            forecast = running.get_final_completion().choices[0].message.parsed
        print(f"parsed: {forecast!r}")

        _title("4. the Responses API, the same events")
        answer: responses.ResponseStream[None] = responses.stream(
            client, model="demo", input="Say hello in French."
        )
        with answer.subscribe(sinks.console()) as running:
            final = running.get_final_response()
        print(f"response {final.id}: {final.usage.output_tokens if final.usage else 0} output tokens")
    return 0
