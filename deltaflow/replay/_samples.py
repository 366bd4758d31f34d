"""The recordings packaged with deltaflow, which ``deltaflow serve`` serves when given none.

Each one was made by ``scripted_chunks`` from the script in ``SAMPLE_SCRIPTS`` (no provider's data, so no
licence of anyone else's applies); ``tests/replay/test_samples.py`` makes them again and compares them
byte for byte. Their answers are those the README's examples expect, so that every example runs against
``deltaflow serve`` without a key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from importlib import resources
from typing import Any, Unpack

from ._recordings import parse_jsonl
from ._responses import scripted_response
from ._scenario import Scenario, ScenarioOptions
from ._scripted import scripted_chunks
from ._wire import encode_chunk

__all__ = ["SAMPLE_SCRIPTS", "Samples", "sample_text"]

SAMPLE_SCRIPTS: Mapping[str, Mapping[str, Any]] = {
    "text": {"content": "Paris is the capital of France."},
    "reasoning": {"content": "Paris is the capital of France.", "reasoning": "A capital: Paris."},
    "tool-call": {"content": None, "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
    "tool-answer": {"content": "It is 18.5 °C in Paris."},
    "structured": {"content": json.dumps({"city": "Paris", "celsius": 18.5})},
    "refusal": {"content": None, "refusal": "I can't help with that."},
    "length": {"content": "Paris is the capital of France, and its", "finish_reason": "length"},
}
"""Each sample's name (the model that asks for it) and the ``scripted_chunks`` keywords that made it."""


def sample_text(name: str) -> str:
    """The packaged JSONL recording ``name`` (one chunk per line).

    Raises:
        KeyError: there is no sample of that name.
    """
    if name not in SAMPLE_SCRIPTS:
        raise KeyError(f"no sample recording {name!r}; there are {', '.join(SAMPLE_SCRIPTS)}")
    return resources.files(__package__).joinpath("samples", f"{name}.jsonl").read_text(encoding="utf-8")


def scripted_sample(name: str) -> str:
    """What ``sample_text(name)`` holds, made again from its script (how the files were written)."""
    chunks = scripted_chunks(**SAMPLE_SCRIPTS[name], model=name)
    return "".join(encode_chunk(chunk) + "\n" for chunk in chunks)


class Samples:
    """A ``ScenarioSource`` of the packaged recordings: a sample's name as the model picks it.

    Any other model gets the sample that fits the request, as a provider's answer would: a tool call when
    the request offers tools (the tool's answer once a ``tool`` message carries its result), the structured
    sample for a ``response_format``, else the reasoning sample. So code written for a real model runs
    against it unchanged.

    Args:
        options: pacing and fault keywords for every sample (see ``ScenarioOptions``).

    Attributes:
        models: the samples' names, as ``/v1/models`` lists them.
    """

    def __init__(self, **options: Unpack[ScenarioOptions]) -> None:
        self._scenarios = {
            name: Scenario(parse_jsonl(sample_text(name)), **options) for name in SAMPLE_SCRIPTS
        }
        # the Responses API (POST /v1/responses) gets the samples' text answers as its own events (tool
        # calls and refusals are sampled for Chat Completions only)
        self._responses = {
            name: scripted_response(script["content"], model=name, **options)
            for name, script in SAMPLE_SCRIPTS.items()
            if script["content"]
        }
        self.models: tuple[str, ...] = tuple(self._scenarios)

    def __call__(self, request: dict[str, Any]) -> Scenario:
        """The sample the request's model names, or the one its shape asks for."""
        scenarios = self._responses if "input" in request else self._scenarios
        model = request.get("model")
        if isinstance(model, str) and model in scenarios:
            return scenarios[model]
        return scenarios.get(self.fitting(request)) or scenarios["text"]

    @staticmethod
    def fitting(request: Mapping[str, Any]) -> str:
        """The name of the sample that answers ``request`` when its model is not a sample's name."""
        if request.get("tools"):
            messages = request.get("messages")
            answered = isinstance(messages, list) and any(
                isinstance(message, dict) and message.get("role") == "tool" for message in messages
            )
            return "tool-answer" if answered else "tool-call"
        text_format = request.get("text")
        if request.get("response_format") or (isinstance(text_format, dict) and text_format.get("format")):
            return "structured"  # Chat Completions' response_format, or the Responses API's text.format
        return "reasoning"
