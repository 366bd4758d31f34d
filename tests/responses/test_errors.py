"""How a Responses stream ends when the response does not complete: typed errors, nothing lost."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import openai
import pytest
from pydantic import BaseModel

from deltaflow import errors, responses
from deltaflow.replay import FAULT_HEADER, ReplayServer
from tests.responses.scripted import fetched, numbered, response, scripted, served

QUOTA_ERROR = {
    "type": "insufficient_quota",
    "code": "insufficient_quota",
    "message": "You exceeded your quota.",
}


def _error_then_failed() -> list[dict[str, Any]]:
    """OpenAI's shape (the AI SDK's openai-error.1 recording): an ``error`` event, then ``response.failed``."""
    return numbered(
        [
            {"type": "response.created", "response": response()},
            {"type": "error", "error": QUOTA_ERROR},
            {"type": "response.failed", "response": response("failed", error=QUOTA_ERROR)},
        ]
    )


SCENARIOS = {
    "failed": scripted("partial answ", end="failed"),
    "error-then-failed": _error_then_failed(),
    "incomplete": scripted("cut sho", end="incomplete"),
    "filtered": scripted("bad wor", end="incomplete", incomplete_reason="content_filter"),
    "cut": scripted("never finished")[:-1],
    "text": scripted("Hello there, general Kenobi."),
}


@pytest.fixture(scope="module")
def client() -> Iterator[openai.OpenAI]:
    with ReplayServer({name: served(events) for name, events in SCENARIOS.items()}) as running:
        yield openai.OpenAI(base_url=running.base_url, api_key="sk-test", max_retries=0)


def _read(stream: responses.ResponseStream[Any]) -> tuple[list[Any], BaseException | None]:
    events: list[Any] = []
    try:
        events.extend(stream)
    except Exception as error:
        return events, error
    return events, None


def test_response_failed_is_a_typed_error_after_every_event(client: openai.OpenAI) -> None:
    """``response.failed`` is handed out, then ``ResponseFailed`` with the partial response and its text."""
    stream = responses.stream(client, model="failed", input="hi")
    events, error = _read(stream)
    assert isinstance(error, responses.ResponseFailed)
    assert isinstance(error, errors.ProviderError)
    assert error.error["code"] == "server_error"  # type: ignore[index]
    assert error.response is not None
    assert error.response.output[0].content[0].text == "partial answ"  # type: ignore[union-attr]
    assert error.completion is not None
    assert error.completion.choices[0].message.content == "partial answ"
    assert [e.type for e in events if e.type.startswith("response.")][-1] == "response.failed"
    assert events[-1].type == "error"
    assert events[-1].exception is error
    with pytest.raises(responses.ResponseFailed):
        stream.get_final_response()


def test_an_error_event_is_not_swallowed(client: openai.OpenAI) -> None:
    """openai's own Stream raises a bare APIError at an ``error`` event; deltaflow hands out every event."""
    with (
        pytest.raises(openai.APIError),
        client.responses.stream(model="error-then-failed", input="hi") as theirs,
    ):
        list(theirs)
    events, error = _read(responses.stream(client, model="error-then-failed", input="hi"))
    assert [e.type for e in events] == ["response.created", "error", "response.failed", "error"]
    assert isinstance(error, responses.ResponseFailed)
    assert "You exceeded your quota." in str(error)


@pytest.mark.parametrize(
    ("model", "reason"), [("incomplete", "max_output_tokens"), ("filtered", "content_filter")]
)
def test_incomplete_ends_in_a_typed_error_where_openai_raises(
    client: openai.OpenAI, model: str, reason: str
) -> None:
    """``response.incomplete``: every event, then ``get_final_response`` raises with the partial response."""
    with client.responses.stream(model=model, input="hi") as theirs:
        list(theirs)
        with pytest.raises(RuntimeError):
            theirs.get_final_response()  # openai's helper: a bare RuntimeError
    stream = responses.stream(client, model=model, input="hi")
    events, error = _read(stream)
    assert error is None
    finish = [e.finish_reason for e in events if e.type == "choice.done"]
    assert finish == ["length" if reason == "max_output_tokens" else "content_filter"]
    with pytest.raises(responses.ResponseIncomplete) as raised:
        stream.get_final_response()
    assert raised.value.reason == reason
    assert raised.value.response is not None
    assert raised.value.response.output[0].content[0].text == SCENARIOS[model][-4]["text"]  # type: ignore[union-attr]


def test_incomplete_structured_output_raises_openai_length_error(client: openai.OpenAI) -> None:
    """With ``text_format``, a response cut by ``max_output_tokens`` is openai's ``LengthFinishReasonError``."""

    class Answer(BaseModel):
        text: str

    stream = responses.stream(client, model="incomplete", input="hi", text_format=Answer)
    _, error = _read(stream)
    assert isinstance(error, openai.LengthFinishReasonError)


def test_a_stream_cut_before_its_end_keeps_what_arrived(client: openai.OpenAI) -> None:
    """No ``response.completed``: deltaflow says the answer is unfinished and raises at the final response."""
    stream = responses.stream(client, model="cut", input="hi")
    events, error = _read(stream)
    assert error is None
    (done,) = [e for e in events if e.type == "completion.done"]
    assert done.unfinished
    assert done.completion.choices[0].message.content == "never finished"
    with pytest.raises(responses.ResponseIncomplete) as raised:
        stream.get_final_response()
    assert raised.value.reason is None


def test_an_injected_error_fault_over_http(client: openai.OpenAI) -> None:
    """The replay server's error fault on ``/v1/responses`` is a Responses ``error`` event: ResponseFailed."""
    headers = {FAULT_HEADER: "error-after=5;error-code=rate_limit_exceeded;error-message=slow down"}
    events, error = _read(responses.stream(client, model="text", input="hi", extra_headers=headers))
    assert isinstance(error, responses.ResponseFailed)
    assert "slow down" in str(error)
    assert error.completion is not None
    assert error.completion.choices[0].message.content  # the text that arrived before the fault
    assert sum(e.type.startswith("response.") for e in events) == 5


def test_a_dropped_connection_is_stream_interrupted(client: openai.OpenAI) -> None:
    """The connection dropped mid-stream: ``StreamInterrupted`` (also openai's APIConnectionError)."""
    headers = {FAULT_HEADER: "drop-after=6"}
    events, error = _read(responses.stream(client, model="text", input="hi", extra_headers=headers))
    assert isinstance(error, errors.StreamInterrupted)
    assert isinstance(error, openai.APIConnectionError)
    assert error.completion is not None
    assert getattr(error, "response", None) is not None


def test_a_malformed_line_is_a_typed_contract_error(client: openai.OpenAI) -> None:
    """A line that is not JSON: ``ResponseContractError`` (a ``StreamContractError``) with the response so far."""
    headers = {FAULT_HEADER: "malformed-after=4"}
    _, error = _read(responses.stream(client, model="text", input="hi", extra_headers=headers))
    assert isinstance(error, errors.StreamContractError)
    assert getattr(error, "response", None) is not None


@pytest.mark.skipif(
    "openai-error.1" not in {n.removeprefix("aisdk-") for n in fetched()}, reason="no fetched recordings"
)
def test_the_recorded_error_stream() -> None:
    """The AI SDK's recording of OpenAI's quota error ends in ``ResponseFailed`` carrying OpenAI's code."""
    events = fetched()["aisdk-openai-error.1"]
    stream = responses.ResponseStream([responses.event_from_dict(event) for event in events])
    got, error = _read(stream)
    assert isinstance(error, responses.ResponseFailed)
    assert error.error["code"] == "insufficient_quota"  # type: ignore[index]
    assert len([e for e in got if e.type.startswith("response.") or hasattr(e, "param")]) == len(events)


def test_openai_events_only_still_end_typed(client: openai.OpenAI) -> None:
    """``deltaflow_events=False`` (no operators run): a failure and an unparsable text still end typed."""

    class Answer(BaseModel):
        text: str

    _, error = _read(responses.stream(client, model="failed", input="hi", deltaflow_events=False))
    assert isinstance(error, responses.ResponseFailed)
    assert error.response is not None
    _, error = _read(
        responses.stream(client, model="text", input="hi", text_format=Answer, deltaflow_events=False)
    )
    assert isinstance(error, errors.ContentInvalidError)
    assert isinstance(error, ValueError)  # as openai's pydantic ValidationError
    assert error.text == "Hello there, general Kenobi."
