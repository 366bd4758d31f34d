"""A round-robin TCP load balancer on loopback that can cut a response after its k-th SSE event.

It runs its own event loop in a thread. Each new connection goes to the next backend in turn; the
next planned cut (``cut_next``) applies to the next connection that carries events: the response is forwarded up to
the start of event k + 1 (plus ``into`` bytes of it, to cut inside a frame), then both sides are
closed, as a dropped mobile connection or a deploy would.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque

# every relayed event starts with its id line: the body is chunked, so a frame follows "\r\n"
EVENT_START = b"\nid: "


class CuttingBalancer:
    def __init__(self, backends: list[int]) -> None:
        self._backends = backends
        self._turn = 0
        self._plans: deque[tuple[int, int]] = deque()
        self.connections: list[int] = []  # the backend port of each connection, in order
        self.event_backends: list[int] = []  # the backend of each connection that carried events, in order
        self.cuts = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def __enter__(self) -> CuttingBalancer:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def cut_next(self, events: int, into: int = 0) -> None:
        """Cut the next connection's response after ``events`` events (and ``into`` bytes of the next)."""
        self._plans.append((events, into))

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        self._loop.close()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        backend = self._backends[self._turn % len(self._backends)]
        self._turn += 1
        self.connections.append(backend)
        try:
            backend_reader, backend_writer = await asyncio.open_connection("127.0.0.1", backend)
        except OSError:
            client_writer.close()
            return
        upstream = asyncio.ensure_future(self._pipe(client_reader, backend_writer))
        try:
            await self._respond(backend_reader, client_writer, backend)
        finally:
            upstream.cancel()
            for writer in (client_writer, backend_writer):
                with contextlib.suppress(Exception):
                    writer.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(Exception):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()

    async def _respond(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, backend: int
    ) -> None:
        # a planned cut goes to the next connection that carries events (a browser may open others)
        plan: tuple[int, int] | None = None
        seen = 0  # event starts forwarded so far
        # the last bytes of the previous read: a marker split across two reads is still found once
        keep = len(EVENT_START) - 1
        tail = b""
        carried = False
        while data := await reader.read(65536):
            if not carried and EVENT_START in tail + data:
                carried = True
                self.event_backends.append(backend)
            if plan is None and self._plans and EVENT_START in tail + data:
                plan = self._plans.popleft()
            if plan is not None:
                events, into = plan
                window = tail + data
                start = 0
                while (found := window.find(EVENT_START, start)) != -1:
                    if seen == events:
                        writer.write(data[: max(0, found + 1 + into - len(tail))])
                        await writer.drain()
                        self.cuts += 1
                        writer.transport.abort()
                        return
                    seen += 1
                    start = found + 1
                tail = window[-keep:]
            writer.write(data)
            await writer.drain()
