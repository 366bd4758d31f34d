"""``deltaflow relay``: a durable relay instance (page, POST/GET/stop) under uvicorn.

Instances given the same ``--redis`` URL share one log: a stream started on one is followed,
resumed or stopped from any other. Without ``--base-url`` the answers come from an embedded replay
server (no key, no network), which is what the README's three commands use: a tool loop whose scripted
model calls ``lookup``, run here, then answers.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    from deltaflow.recipes import StreamFactory
    from deltaflow.recipes._event_sources import AsyncEventStream

    from ._endpoint import DurableEndpoint

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
        "--redis",
        help="a Redis URL shared by instances: redis://host:port/db, or redis+cluster://host:port for a Redis"
        " Cluster (default: memory)",
    )
    command.add_argument("--host", default="127.0.0.1", help="interface (default: %(default)s)")
    command.add_argument(
        "--port", type=int, default=8000, help="port; 0 picks a free one (default: %(default)s)"
    )
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
        type=_positive(float),
        default=600.0,
        help="seconds without a chunk from the provider before a stream ends with an error event and "
        "done; its keep-alive comments and pings do not count, so a reasoning model may think for "
        "minutes (default: %(default)g)",
    )


def relay(arguments: argparse.Namespace) -> int:
    """Serve a durable relay (browser page at /chat/); instances sharing --redis share streams."""
    import uvicorn  # noqa: PLC0415
    from starlette.applications import Starlette  # noqa: PLC0415
    from starlette.responses import RedirectResponse  # noqa: PLC0415
    from starlette.routing import Mount, Route  # noqa: PLC0415

    from ._endpoint import durable_endpoint  # noqa: PLC0415
    from ._log import EventLog  # noqa: PLC0415
    from ._memory import MemoryEventLog  # noqa: PLC0415
    from ._redis import RedisEventLog  # noqa: PLC0415

    if arguments.base_url:
        _check_base_url(arguments.base_url)
    if arguments.redis:
        _check_redis(arguments.redis)
    listening = _listen(arguments.host, arguments.port)
    options: dict[str, Any] = {
        "ttl": arguments.ttl,
        "lease_time": arguments.lease,
        "max_length": arguments.max_length,
    }
    log: EventLog = (
        RedisEventLog.from_url(arguments.redis, **options) if arguments.redis else MemoryEventLog(**options)
    )
    demo = None if arguments.base_url else _demo_server()
    if demo is not None:
        demo.start()
    client, make_stream = _upstream(arguments, demo)
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
    host, port = listening.getsockname()[:2]
    print(f"durable relay at http://{host}:{port}/chat/ (log: {where})", file=sys.stderr, flush=True)
    config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=_FLUSH_TIME)
    server = _draining_server(config, endpoint, grace=SHUTDOWN_GRACE)
    try:
        server.run(sockets=[listening])
    finally:
        listening.close()
        if demo is not None:
            demo.stop()
    return 0


SHUTDOWN_GRACE = 5.0
"""Seconds a stopping instance (SIGTERM, Ctrl+C) gives its running streams to finish; the rest end
``aborted`` (``shutdown``)."""
_FLUSH_TIME = 5  # then readers here have this long to receive the terminal entry


def _upstream(arguments: argparse.Namespace, demo: Any) -> tuple[Any, StreamFactory]:
    """The OpenAI client, and what builds a stream from a request's body."""
    import openai  # noqa: PLC0415

    import deltaflow  # noqa: PLC0415

    if demo is None:
        base_url, model = arguments.base_url, arguments.model or "gpt-4o-mini"
        api_key = os.environ.get("OPENAI_API_KEY") or ""
        if not api_key:
            print("OPENAI_API_KEY is not set: requests go without a key (Bearer unused)", file=sys.stderr)
            api_key = "unused"
    else:
        base_url, model, api_key = demo.base_url, _DEMO_MODEL, "unused"
    client = openai.AsyncOpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    allowed = {model, *arguments.allow_model}

    def make_stream(body: dict[str, Any]) -> AsyncEventStream:
        request = _validated(body)
        chosen = request.model or model
        if chosen not in allowed:
            raise ValueError(f"model: {chosen[:200]!r} is not served here")
        messages: Any = [message.model_dump() for message in request.messages]
        response_format = (
            request.response_format.model_dump(exclude_none=True) if request.response_format else None
        )
        if demo is not None:
            # the scripted demo calls its tool, which this relay runs: a tool loop, its results streamed
            from deltaflow.recipes import atool_loop_stream  # noqa: PLC0415

            return atool_loop_stream(
                client,
                messages,
                {"lookup": demo_lookup},
                model=chosen,
                response_format=response_format,
                stream_options={"include_usage": True},
                idle_timeout=arguments.upstream_idle_timeout,
            )
        return deltaflow.astream(
            client,
            model=chosen,
            messages=messages,
            response_format=response_format,
            stream_options={"include_usage": True},
            idle_timeout=arguments.upstream_idle_timeout,
        )

    return client, make_stream


def _validated(body: dict[str, Any]) -> ChatRequest:
    """The request, or a ``ValueError`` of one line naming the first wrong field (answered 422)."""
    from pydantic import ValidationError  # noqa: PLC0415

    try:
        return ChatRequest.model_validate(body)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        more = error.error_count() - 1
        also = f" (and {more} more)" if more else ""
        raise ValueError(f"{where}: {first['msg']}{also}") from None


def _check_base_url(base_url: str) -> None:
    from urllib.parse import urlsplit  # noqa: PLC0415

    from deltaflow._cli._errors import CommandError  # noqa: PLC0415

    try:
        parts = urlsplit(base_url)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError as error:
        raise CommandError(f"--base-url {base_url!r} is not a URL: {error}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise CommandError(f"--base-url {base_url!r} is not an http(s) URL with a host")


def _check_redis(url: str) -> None:
    import redis  # noqa: PLC0415

    from deltaflow._cli._errors import CommandError  # noqa: PLC0415

    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3)
    except ValueError as error:
        raise CommandError(f"--redis {url!r}: {error}") from None
    try:
        client.ping()
    except (redis.exceptions.RedisError, OSError) as error:
        raise CommandError(f"cannot reach Redis at {url}: {error}") from None
    finally:
        client.close()


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0 picks a free port), or one line saying why not."""
    import errno  # noqa: PLC0415

    from deltaflow._cli._errors import CommandError  # noqa: PLC0415

    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        listening = socket.socket(family, socket.SOCK_STREAM)
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind((host, port))
        listening.listen(2048)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise CommandError(f"port {port} on {host} is already in use") from None
        raise CommandError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    listening.set_inheritable(True)
    return listening


def _draining_server(config: Any, endpoint: DurableEndpoint, *, grace: float) -> Any:
    """The uvicorn server, whose shutdown first gives the running streams ``grace`` seconds to finish."""
    import uvicorn  # noqa: PLC0415

    class DrainingServer(uvicorn.Server):
        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            for server in self.servers:
                server.close()  # no new request meanwhile
            # readers here then get each stream's end (done, or aborted: shutdown) before they go
            await endpoint.aclose(grace)
            await super().shutdown(sockets)

    return DrainingServer(config)


DEMO_NOTES = (
    "every event is kept in a log",
    "a reader resumes by Last-Event-ID",
    "any instance serves any stream",
)
"""What the demo's ``lookup`` tool finds."""


def demo_lookup(topic: str, limit: int) -> dict[str, Any]:
    """Notes on a topic (the demo's tool, run by the relay)."""
    return {"topic": topic, "notes": list(DEMO_NOTES[: max(limit, 0)])}


DEMO_ANSWER = (
    "Durable streams keep every event in a log, so a reload, a flaky network or a deploy "
    "resumes the answer from the next event instead of starting a new generation."
)


def _demo_server() -> Any:
    """The scripted provider: reasoning and a ``lookup`` call first, then, given its result, the answer."""
    from deltaflow.replay import ReplayServer, Scenario  # noqa: PLC0415

    call = Scenario.scripted(
        None,
        reasoning="The user wants to see a resumable stream; look up the notes first.",
        tool_calls=[{"name": "lookup", "arguments": {"topic": "durable streams", "limit": 3}}],
        chunk_size=3,
        tokens_per_second=40,
    )
    answer = Scenario.scripted(
        DEMO_ANSWER,
        reasoning="The notes say how: answer briefly.",
        chunk_size=3,
        tokens_per_second=40,
    )

    def route(body: dict[str, Any]) -> Scenario | None:
        if body.get("model") != _DEMO_MODEL:
            return None  # an unknown model, a 404 as from any replay server
        messages = body.get("messages") or []
        return answer if messages and messages[-1].get("role") == "tool" else call

    return ReplayServer(route)
