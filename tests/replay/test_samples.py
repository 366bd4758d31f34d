"""The recordings packaged with deltaflow: their provenance, what each answers, and how they are served."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

import deltaflow
from deltaflow.replay import SAMPLE_SCRIPTS, ReplayServer, Samples, Scenario, sample_text
from deltaflow.replay._samples import scripted_sample

from ..oracle import assert_same, run_deltaflow, run_openai


class Weather(BaseModel):
    city: str
    celsius: float


TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
ASK: Any = [{"role": "user", "content": "What is the capital of France?"}]


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    with ReplayServer(Samples()) as running:
        yield running


@pytest.fixture
def client(server: ReplayServer) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=server.base_url, api_key="sk-samples", max_retries=0) as made:
        yield made


@pytest.mark.parametrize("name", sorted(SAMPLE_SCRIPTS))
def test_each_packaged_file_is_what_its_script_makes(name: str) -> None:
    """Provenance: the file shipped in the package is, byte for byte, ``scripted_chunks`` of its script."""
    assert sample_text(name) == scripted_sample(name)


def test_the_six_kinds_of_answer_are_there() -> None:
    """Text, reasoning, a tool call (and its answer), structured output, a refusal and a length cut."""
    assert set(SAMPLE_SCRIPTS) == {
        "text", "reasoning", "tool-call", "tool-answer", "structured", "refusal", "length",
    }  # fmt: skip
    with pytest.raises(KeyError, match="no sample recording 'nope'; there are text, reasoning"):
        sample_text("nope")


@pytest.mark.parametrize("name", sorted(SAMPLE_SCRIPTS))
def test_each_sample_reads_as_openai_reads_it(client: openai.OpenAI, name: str) -> None:
    """Asked by name over HTTP, each sample's final completion equals openai's own accumulation of it."""
    chunks = list(client.chat.completions.create(model=name, messages=ASK, stream=True))
    assert chunks[0].model == name
    assert_same(run_openai(chunks), run_deltaflow(chunks))


def test_what_each_sample_says(client: openai.OpenAI) -> None:
    """The answers the README's examples expect, each of its kind."""

    def final(model: str) -> Any:
        with deltaflow.stream(client, model=model, messages=ASK) as running:
            return running.get_final_completion().choices[0]

    assert final("text").message.content == "Paris is the capital of France."
    reasoning = final("reasoning")
    assert reasoning.message.content == "Paris is the capital of France."
    assert reasoning.message.model_extra["reasoning_content"] == "A capital: Paris."
    (call,) = final("tool-call").message.tool_calls
    assert (call.function.name, call.function.arguments) == ("get_weather", '{"city": "Paris"}')
    assert final("refusal").message.refusal == "I can't help with that."
    with pytest.raises(openai.LengthFinishReasonError) as cut:
        final("length")  # as openai's helper: the cut answer travels with the error
    assert cut.value.completion.choices[0].message.content == "Paris is the capital of France, and its"


def test_any_other_model_gets_the_sample_its_request_asks_for(client: openai.OpenAI) -> None:
    """Code written for a real model runs unchanged: tools, then their answer; a response format; else text."""
    assert client.chat.completions.create(model="gpt-4o-mini", messages=ASK).choices[0].message.content == (
        "Paris is the capital of France."
    )
    asked = client.chat.completions.create(model="gpt-4o-mini", messages=ASK, tools=TOOLS)
    (call,) = asked.choices[0].message.tool_calls or []
    answered = [
        *ASK,
        {"role": "assistant", "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": '{"celsius": 18.5}'},
    ]
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=answered, tools=TOOLS)
    assert reply.choices[0].message.content == "It is 18.5 °C in Paris."
    with deltaflow.stream(client, model="gpt-4o-mini", messages=ASK, response_format=Weather) as running:
        assert running.get_final_completion().choices[0].message.parsed == Weather(city="Paris", celsius=18.5)


def test_models_lists_the_samples(client: openai.OpenAI) -> None:
    """``GET /v1/models`` (openai's ``client.models.list()``) names every sample."""
    assert [model.id for model in client.models.list()] == list(SAMPLE_SCRIPTS)


def test_models_lists_a_mapping_and_needs_the_key() -> None:
    """Scenarios keyed by model are listed; with ``api_key`` set, the list needs it like a chat does."""
    scenarios = {"alpha": Scenario.scripted("a"), "beta": Scenario.scripted("b")}
    with ReplayServer(scenarios, api_key="sk-right") as server:
        right = openai.OpenAI(base_url=server.base_url, api_key="sk-right", max_retries=0)
        assert [model.id for model in right.models.list()] == ["alpha", "beta"]
        wrong = openai.OpenAI(base_url=server.base_url, api_key="sk-wrong", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()


def test_an_unknown_model_is_a_404_that_lists_the_served_ones() -> None:
    """A typo in ``model`` says which models there are instead of leaving the user to guess."""
    scenarios = {"greeting": Scenario.scripted("hi"), "weather": Scenario.scripted("{}")}
    with (
        ReplayServer(scenarios) as server,
        openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0) as client,
        pytest.raises(openai.NotFoundError) as raised,
    ):
        client.chat.completions.create(model="greting", messages=ASK, stream=True)
    assert "The model `greting` does not exist" in raised.value.message
    assert "Served here: greeting, weather." in raised.value.message


def test_the_responses_api_gets_the_samples_too(client: openai.OpenAI) -> None:
    """``deltaflow serve`` without a file answers POST /v1/responses: the text sample by default, the
    structured one for a ``text_format``, each read by openai's own Responses helper."""
    from deltaflow import responses  # noqa: PLC0415

    with client.responses.stream(model="gpt-4o-mini", input="Hi") as theirs:
        assert theirs.get_final_response().output_text == SAMPLE_SCRIPTS["reasoning"]["content"]
    with client.responses.stream(model="text", input="Hi") as theirs:
        assert theirs.get_final_response().output_text == SAMPLE_SCRIPTS["text"]["content"]
    with responses.stream(client, model="gpt-4o-mini", input="Weather?", text_format=Weather) as ours:
        assert ours.get_final_response().output_parsed == Weather(city="Paris", celsius=18.5)
    with client.responses.stream(model="refusal", input="Hi") as theirs:  # no text sample: the text one
        assert theirs.get_final_response().output_text == SAMPLE_SCRIPTS["text"]["content"]
