"""``deltaflow relay``: a durable relay instance (page, POST/GET/stop) under uvicorn.

Instances given the same ``--redis`` URL share one log: a stream started on one is followed,
resumed or stopped from any other. Without ``--base-url`` the answers come from an embedded replay
server (a scripted answer, no key, no network), which is what the README's three commands use.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import AsyncIterator
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from deltaflow._cli._live import positive_seconds

__all__ = ["ChatRequest", "configure", "relay"]

_DEMO_MODEL = "deltaflow-demo"


class ChatMessage(BaseModel):
    """One message of a request to the relay."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["system", "user", "assistant"]
    content: str = Field(max_length=100_000)


class ResponseFormat(BaseModel):
    """Structured output, as OpenAI takes it: ``json_object``, or ``json_schema`` with its schema."""

    type: Literal["json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None


class ChatRequest(BaseModel):
    """What the relay command accepts in a POST: messages, and a model among the allowed ones."""

    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] = Field(min_length=1, max_length=100)
    model: str | None = Field(default=None, max_length=200)
    response_format: ResponseFormat | None = None


def _positive(kind: type[int] | type[float]) -> Any:
    """An argparse type: a positive number of ``kind``, or a usage error naming the value."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0 or value == float("inf"):  # also false for NaN
            whole = " whole" if kind is int else ""
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive{whole} number")
        return value

    return parse


def configure(command: argparse.ArgumentParser) -> None:
    """The ``relay`` command's options."""
    command.add_argument(
        "--redis", help="a Redis URL (redis://host:port/db) shared by instances (default: memory)"
    )
    command.add_argument("--host", default="127.0.0.1", help="interface (default: %(default)s)")
    command.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    command.add_argument(
        "--base-url", help="an OpenAI-compatible endpoint (default: a scripted demo answer, no key needed)"
    )
    command.add_argument("--model", default=None, help="the model (default: gpt-4o-mini, or the demo's)")
    command.add_argument(
        "--allow-model", action="append", default=[], help="another model a request may ask for (repeatable)"
    )
    command.add_argument(
        "--lease", type=_positive(float), default=10.0, help="producer lease, seconds (default: %(default)s)"
    )
    command.add_argument(
        "--ttl",
        type=_positive(float),
        default=600.0,
        help="retention after the end, seconds (default: %(default)s)",
    )
    command.add_argument(
        "--max-length",
        type=_positive(int),
        default=100_000,
        help="events kept per stream (default: %(default)s)",
    )
    command.add_argument(
        "--keep-alive",
        type=_positive(float),
        default=15.0,
        help="keep-alive comment interval, seconds (default: %(default)s)",
    )
    command.add_argument(
        "--upstream-idle-timeout",
        type=positive_seconds,
        default=600.0,
        help="seconds without a chunk from the provider before a stream ends with an error event and "
        "done; its keep-alive comments and pings do not count, so a reasoning model may think for "
        "minutes (default: %(default)g)",
    )


def relay(arguments: argparse.Namespace) -> int:
    """Serve a durable relay (browser page at /chat/); instances sharing --redis share streams."""
    import openai  # noqa: PLC0415
    import uvicorn  # noqa: PLC0415
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.responses import RedirectResponse  # noqa: PLC0415
    from starlette.routing import Mount, Route  # noqa: PLC0415

    import deltaflow  # noqa: PLC0415

    from ._endpoint import durable_endpoint  # noqa: PLC0415
    from ._log import EventLog  # noqa: PLC0415
    from ._memory import MemoryEventLog  # noqa: PLC0415
    from ._redis import RedisEventLog  # noqa: PLC0415

    options: dict[str, Any] = {
        "ttl": arguments.ttl,
        "lease_time": arguments.lease,
        "max_length": arguments.max_length,
    }
    log: EventLog = (
        RedisEventLog.from_url(arguments.redis, **options) if arguments.redis else MemoryEventLog(**options)
    )
    demo = None
    if arguments.base_url:
        base_url, model = arguments.base_url, arguments.model or "gpt-4o-mini"
        api_key = os.environ.get("OPENAI_API_KEY") or "unused"
    else:
        demo = _demo_server()
        demo.start()
        base_url, model, api_key = demo.base_url, _DEMO_MODEL, "unused"
    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    allowed = {model, *arguments.allow_model}

    def make_stream(body: dict[str, Any]) -> deltaflow.AsyncChatStream[Any]:
        request = ChatRequest.model_validate(body)  # a ValidationError answers 422
        chosen = request.model or model
        if chosen not in allowed:
            raise ValueError(f"model {chosen[:200]!r} is not served here")
        messages: Any = [message.model_dump() for message in request.messages]
        response_format = (
            request.response_format.model_dump(exclude_none=True) if request.response_format else None
        )
        return deltaflow.astream(
            client,
            model=chosen,
            messages=messages,
            response_format=response_format,
            stream_options={"include_usage": True},
            idle_timeout=arguments.upstream_idle_timeout,
        )

    endpoint = durable_endpoint(make_stream, log, keep_alive=arguments.keep_alive)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await endpoint.aclose()
        await log.aclose()
        await client.close()

    app = Starlette(
        routes=[Route("/", lambda _: RedirectResponse("/chat/")), Mount("/chat", app=endpoint)],
        lifespan=lifespan,
    )
    where = f"redis {arguments.redis}" if arguments.redis else "memory"
    print(f"durable relay at http://{arguments.host}:{arguments.port}/chat/ (log: {where})", file=sys.stderr)
    try:
        # a deploy stops within seconds: streams still running here end `aborted` (shutdown)
        uvicorn.run(
            app, host=arguments.host, port=arguments.port, log_level="warning", timeout_graceful_shutdown=5
        )
    finally:
        if demo is not None:
            demo.stop()
    return 0


def _demo_server() -> Any:
    from deltaflow.replay import ReplayServer, Scenario  # noqa: PLC0415

    answer = (
        "Durable streams keep every event in a log, so a reload, a flaky network or a deploy "
        "resumes the answer from the next event instead of starting a new generation."
    )
    scenario = Scenario.scripted(
        answer,
        reasoning="The user wants to see a resumable stream; answer briefly.",
        tool_calls=[{"name": "lookup", "arguments": {"topic": "durable streams", "limit": 3}}],
        chunk_size=3,
        tokens_per_second=40,
    )
    return ReplayServer({_DEMO_MODEL: scenario})
