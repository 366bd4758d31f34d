"""Running the replay app under uvicorn: in a background thread on loopback, or blocking for a CLI."""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from types import TracebackType
from typing import NamedTuple, Self

import uvicorn

from ._app import ReplayApp, ScenarioSource
from ._journal import RecordedRequest, RequestJournal

__all__ = ["ReplayServer", "serve"]

_UVICORN_LOGGER = "uvicorn.error"


class _DeliberateDropFilter(logging.Filter):
    """Hides uvicorn's complaint about the unfinished body that a ``drop`` fault leaves on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing response."


class _Uvicorn(uvicorn.Server):
    """A uvicorn server that signals the thread which started it once it is listening."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        self.ready.set()


class _Running(NamedTuple):
    app: ReplayApp
    server: _Uvicorn
    thread: threading.Thread


class ReplayServer:
    """An OpenAI-compatible endpoint on loopback that answers from scenarios, run in a background thread.

    Use it as a context manager, sync or async::

        with ReplayServer(Scenario.scripted("Hi there")) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="sk-test")

    Args:
        scenarios: one scenario for every request, scenarios keyed by the request's ``model`` (an unknown
            model gets a 404 ``model_not_found``), or a function of the request body returning a scenario
            (or None for a 404).
        host: the interface to listen on.
        port: the port; 0 picks a free one, anew at each start.
        api_key: when given, requests must carry it as ``Authorization: Bearer <api_key>`` (else a 401).
        startup_timeout: seconds to wait for uvicorn to start listening.
    """

    def __init__(
        self,
        scenarios: ScenarioSource,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self._scenarios = scenarios
        self._api_key = api_key
        self._journal = RequestJournal()
        self._requested = (host, port)
        self._address = (host, port)
        self._startup_timeout = startup_timeout
        self._running: _Running | None = None
        self._log_filter = _DeliberateDropFilter()

    @property
    def url(self) -> str:
        """The server's root, e.g. ``http://127.0.0.1:54321``."""
        return f"http://{self._address[0]}:{self._address[1]}"

    @property
    def base_url(self) -> str:
        """What to pass as an OpenAI client's ``base_url``: the root plus ``/v1``."""
        return f"{self.url}/v1"

    @property
    def port(self) -> int:
        """The bound port (known once started)."""
        return self._address[1]

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first."""
        return self._journal.records

    def wait_for_disconnect(self, timeout: float = 5.0) -> RecordedRequest:
        """Block until the server notices the client of the latest request leave mid-stream; return it.

        Raises:
            TimeoutError: that did not happen within ``timeout`` seconds.
        """
        if not self._journal.wait_until(lambda records: bool(records) and records[-1].disconnected, timeout):
            raise TimeoutError(f"the latest request's client did not disconnect within {timeout:g} s")
        return self.requests[-1]

    def start(self) -> None:
        """Start listening; returns once connections are accepted.

        Raises:
            RuntimeError: the server is already running or did not start in time.
        """
        if self._running is not None:
            raise RuntimeError("the replay server is already running")
        # bind here rather than in uvicorn: the port is known up front and port=0 cannot race
        sock = socket.create_server(self._requested)
        self._address = (self._requested[0], sock.getsockname()[1])
        # a fresh app per run: the previous run's stream registry was closed for good by stop()
        app = ReplayApp(self._scenarios, self._journal, api_key=self._api_key)
        config = uvicorn.Config(
            app,
            log_config=None,  # a library must not reconfigure the host application's logging
            log_level="warning",
            access_log=False,
            lifespan="off",
            http="h11",
            loop="asyncio",
            timeout_graceful_shutdown=2,
        )
        server = _Uvicorn(config)

        def run() -> None:
            try:
                server.run(sockets=[sock])
            finally:
                sock.close()
                server.ready.set()

        logging.getLogger(_UVICORN_LOGGER).addFilter(self._log_filter)
        thread = threading.Thread(target=run, name=f"deltaflow-replay-{self.port}", daemon=True)
        self._running = _Running(app, server, thread)
        thread.start()
        if not server.ready.wait(self._startup_timeout) or not server.started:
            self.stop()
            raise RuntimeError(f"the replay server did not start on {self.url}")

    def stop(self) -> None:
        """End streams in flight, shut uvicorn down and join its thread; a no-op when not running."""
        if self._running is None:
            return
        app, server, thread = self._running
        app.streams.close()
        server.should_exit = True
        thread.join()
        logging.getLogger(_UVICORN_LOGGER).removeFilter(self._log_filter)
        self._running = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    async def __aenter__(self) -> Self:
        await asyncio.to_thread(self.start)
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await asyncio.to_thread(self.stop)


def serve(
    scenarios: ScenarioSource, host: str = "127.0.0.1", port: int = 8000, log_level: str = "info"
) -> None:
    """Serve scenarios in the calling thread until interrupted (Ctrl+C); for ``deltaflow serve``."""
    config = uvicorn.Config(ReplayApp(scenarios), host=host, port=port, log_level=log_level, lifespan="off")
    log_filter = _DeliberateDropFilter()
    logging.getLogger(_UVICORN_LOGGER).addFilter(log_filter)
    try:
        uvicorn.Server(config).run()
    finally:
        logging.getLogger(_UVICORN_LOGGER).removeFilter(log_filter)
