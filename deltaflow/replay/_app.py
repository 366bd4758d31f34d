"""The ASGI app: OpenAI's chat-completions endpoint, answered from scenarios."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from ._completion import assemble_completion
from ._fault import FAULT_HEADER, Fault
from ._journal import RecordedRequest, RequestJournal
from ._responses import RESPONSES_PATHS, completed_response, retrieve_body
from ._scenario import Scenario
from ._stream import ReplayStream, StreamRegistry, error_chunk

__all__ = ["ReplayApp", "ScenarioSource"]

ScenarioSource: TypeAlias = Scenario | Mapping[str, Scenario] | Callable[[dict[str, Any]], Scenario | None]
"""One scenario for every request, scenarios keyed by the request's ``model``, or a function of the
request body (returning None for an unknown model)."""


def _served_models(source: ScenarioSource) -> tuple[str, ...]:
    """The model names a source answers to by name: a mapping's keys, or a source's ``models``."""
    if isinstance(source, Mapping):
        return tuple(source)
    models = getattr(source, "models", ())
    return tuple(model for model in models if isinstance(model, str))


def _resolver(source: ScenarioSource) -> Callable[[dict[str, Any]], Scenario | None]:
    if isinstance(source, Scenario):
        return lambda _body: source
    if isinstance(source, Mapping):
        by_model = source
        return lambda body: by_model.get(body["model"]) if isinstance(body.get("model"), str) else None
    return source


def _error(status: int, message: str, kind: str, code: str | int | None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status)


def _error_status(error: Mapping[str, Any]) -> int:
    code = error.get("code")
    return code if isinstance(code, int) and 400 <= code < 600 else 500


class ReplayApp:
    """Answers ``POST /v1/chat/completions`` and ``/v1/responses`` (also without ``/v1``) from scenarios.

    Args:
        scenarios: what to answer; see ``ScenarioSource``. The models it serves by name (a mapping's keys,
            or a callable source's ``models`` attribute) are listed by ``GET /v1/models`` and in the 404
            for an unknown model.
        journal: where to record requests; a new one by default.
        api_key: when given, a request without ``Authorization: Bearer <api_key>`` gets OpenAI's 401
            ``invalid_api_key``; by default any key (or none) is accepted.

    Attributes:
        journal: every request received and how it was answered.
        streams: the streams in flight.
    """

    def __init__(
        self, scenarios: ScenarioSource, journal: RequestJournal | None = None, *, api_key: str | None = None
    ) -> None:
        self.journal = journal or RequestJournal()
        self._api_key = api_key
        self.streams = StreamRegistry()
        self._resolve = _resolver(scenarios)
        self._ids = itertools.count(1)
        self._models = _served_models(scenarios)
        paths = ("/v1/chat/completions", "/chat/completions")
        routes = [Route(path, self._chat, methods=["POST"]) for path in (*paths, *RESPONSES_PATHS)]
        routes += [Route(f"{path}/{{response_id}}", self._chat, methods=["GET"]) for path in RESPONSES_PATHS]
        routes += [Route(path, self._list_models, methods=["GET"]) for path in ("/v1/models", "/models")]
        self._app = Starlette(routes=routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    def _unauthorized(self, request: Request) -> Response | None:
        if self._api_key is not None and request.headers.get("authorization") != f"Bearer {self._api_key}":
            return _error(401, "Incorrect API key provided.", "invalid_request_error", "invalid_api_key")
        return None

    async def _list_models(self, request: Request) -> Response:
        """OpenAI's model list: the models served by name."""
        if (refused := self._unauthorized(request)) is not None:
            return refused
        data = [
            {"id": model, "object": "model", "created": 0, "owned_by": "deltaflow-replay"}
            for model in self._models
        ]
        return JSONResponse({"object": "list", "data": data})

    async def _chat(self, request: Request) -> Response:
        record = self.journal.add(
            RecordedRequest(
                method=request.method,
                path=request.url.path,
                headers=dict(request.headers),
                body=None,
                started_at=time.monotonic(),
            )
        )
        try:
            response = await self._answer(request, record)
        except BaseException:
            self.journal.finish(record)
            raise
        record.status = response.status_code
        if not isinstance(response, ReplayStream):
            self.journal.finish(record)
        return response

    async def _answer(self, request: Request, record: RecordedRequest) -> Response:
        if (refused := self._unauthorized(request)) is not None:
            return refused
        if request.method == "GET":
            # a stored response streamed again (GET /v1/responses/{id}?stream=true): the id names the scenario
            body: Any = retrieve_body(request.path_params["response_id"], request.query_params)
        else:
            try:
                body = await request.json()
            except ValueError:
                return _error(400, "the request body is not JSON", "invalid_request_error", None)
        if not isinstance(body, dict):
            return _error(400, "the request body is not a JSON object", "invalid_request_error", None)
        record.body = body
        scenario = self._resolve(body)
        if scenario is None:
            message = f"The model `{body.get('model')}` does not exist or you do not have access to it."
            if self._models:
                message += f" Served here: {', '.join(self._models)}."
            return _error(404, message, "invalid_request_error", "model_not_found")
        fault = scenario.fault
        if (header := request.headers.get(FAULT_HEADER)) is not None:
            try:
                fault = Fault.parse(header)
            except ValueError as exc:
                return _error(400, f"bad {FAULT_HEADER} header: {exc}", "invalid_request_error", None)
        record.fault = fault
        request_id = {"x-request-id": f"req_replay_{next(self._ids)}"}
        responses_api = request.url.path.startswith(RESPONSES_PATHS)
        if body.get("stream"):
            return ReplayStream(
                scenario,
                fault=fault,
                record=record,
                journal=self.journal,
                registry=self.streams,
                headers=request_id,
                responses_api=responses_api,
            )
        if responses_api:
            response = completed_response(scenario.events)
            if response is None:
                return _error(500, "replay: this scenario has no response", "server_error", None)
            return JSONResponse(response, headers=request_id)
        return await self._complete(scenario, fault, request_id)

    @staticmethod
    async def _complete(scenario: Scenario, fault: Fault | None, headers: dict[str, str]) -> Response:
        """A non-streaming answer: ttft and stalls delay it, an error fault or error chunk fails it.

        ``drop`` and ``malformed`` faults concern streams only and are ignored here.
        """
        stall = fault.seconds if fault is not None and fault.kind == "stall" else 0.0
        await anyio.sleep(scenario.ttft + stall)
        chunks = scenario.chunks()
        if fault is not None and fault.kind == "error":
            chunks.append(error_chunk(fault.error, scenario.events))
        error = next((chunk["error"] for chunk in chunks if isinstance(chunk.get("error"), Mapping)), None)
        if error is not None:
            return JSONResponse({"error": error}, _error_status(error), headers)
        try:
            completion = assemble_completion(chunks)
        except ValueError as exc:
            message = f"replay: no non-streaming answer for this scenario: {exc}"
            return _error(500, message, "server_error", None)
        return JSONResponse(completion, headers=headers)
