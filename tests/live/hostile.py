"""A hostile HTTP server on loopback: answers with exactly the bytes a test scripts, and watches the client.

The replay server speaks well-formed SSE; this one sends what no well-behaved server would (invalid
UTF-8, a gzip header over garbage, a body cut mid-line, a trickle, a stall), counts TCP connections
and notices when a client leaves, so tests can prove what the client did on the wire. ``run_sync`` and
``run_async`` run one ``deltaflow.stream``/``astream`` against it as a user would, and say how it ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Literal, Self

import openai

import deltaflow
from deltaflow import operators as ops

Pause = float
"""A number in a reply's body: seconds to wait (watching for the client leaving) before going on."""


@dataclass
class Reply:
    """What the server sends for one request.

    Attributes:
        body: pieces sent in order, each as one HTTP chunk (or raw write); a number is a pause.
        status: the HTTP status.
        headers: response headers (``content-type`` defaults to ``text/event-stream``).
        end: ``complete`` finishes the body; ``cut`` closes the connection without finishing it;
            ``hang`` keeps the connection open, sending nothing, until the client leaves.
        chunked: send the body with chunked transfer encoding; else with ``content-length``.
    """

    body: Iterable[bytes | Pause]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    end: Literal["complete", "cut", "hang"] = "complete"
    chunked: bool = True


@dataclass
class Exchange:
    """One request as the server saw it."""

    path: str
    body: bytes
    left: threading.Event = field(default_factory=threading.Event)
    """Set when the client closed its side before the reply was over."""
    finished: threading.Event = field(default_factory=threading.Event)
    """Set when the server is done with this request, however it ended."""


class HostileServer:
    """A threaded HTTP/1.1 server on 127.0.0.1 answering every request with ``reply(exchange)``.

    Keep-alive is honoured, so ``connections`` counts the TCP connections clients really opened.
    """

    def __init__(self, reply: Callable[[Exchange], Reply] | Reply) -> None:
        self._reply = reply if callable(reply) else (lambda _exchange: reply)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # closing a listener does not wake accept(): poll instead
        self.port = self._listener.getsockname()[1]
        self.connections = 0
        self.exchanges: list[Exchange] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []

    @property
    def base_url(self) -> str:
        """What to pass as an OpenAI client's ``base_url``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> Self:
        thread = threading.Thread(target=self._accept, name=f"hostile-{self.port}", daemon=True)
        thread.start()
        self._threads.append(thread)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._closing.set()
        self._threads[0].join(5)
        self._listener.close()
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for thread in self._threads:
            thread.join(5)

    def latest(self, timeout: float = 5.0) -> Exchange:
        """The latest request, waiting up to ``timeout`` seconds for one to arrive."""
        deadline = time.monotonic() + timeout
        while not self.exchanges:
            if time.monotonic() > deadline:
                raise TimeoutError("no request arrived")
            time.sleep(0.01)
        return self.exchanges[-1]

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                sock, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            sock.settimeout(None)
            with self._lock:
                self.connections += 1
                self._sockets.append(sock)
            thread = threading.Thread(target=self._serve, args=(sock,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _serve(self, sock: socket.socket) -> None:
        with sock:
            pending = b""
            while not self._closing.is_set():
                request = _read_request(sock, pending)
                if request is None:
                    return
                exchange, pending = request
                self.exchanges.append(exchange)
                try:
                    keep = self._answer(sock, exchange)
                except OSError:
                    exchange.left.set()
                    keep = False
                finally:
                    exchange.finished.set()
                if not keep:
                    return

    def _answer(self, sock: socket.socket, exchange: Exchange) -> bool:
        """Send the reply; whether the connection can serve another request."""
        reply = self._reply(exchange)
        pieces = list(reply.body)
        headers = {"content-type": "text/event-stream", **reply.headers}
        if reply.chunked:
            headers["transfer-encoding"] = "chunked"
        else:
            # a reply may lie about its length (a body shorter than it says)
            headers.setdefault("content-length", str(sum(len(p) for p in pieces if isinstance(p, bytes))))
        head = f"HTTP/1.1 {reply.status} Hostile\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        sock.sendall(head.encode("latin-1") + b"\r\n")
        for piece in pieces:
            if isinstance(piece, bytes):
                sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if reply.chunked else piece)
            elif _client_left(sock, piece, self._closing):
                exchange.left.set()
                return False
        if reply.end == "cut":
            return False
        if reply.end == "hang":
            while not self._closing.is_set():
                if _client_left(sock, 0.05, self._closing):
                    exchange.left.set()
                    return False
            return False
        if reply.chunked:
            sock.sendall(b"0\r\n\r\n")
        return True


def _client_left(sock: socket.socket, seconds: float, closing: threading.Event) -> bool:
    """Wait ``seconds``; whether the client closed its side meanwhile (a request it sends is not leaving)."""
    deadline = time.monotonic() + seconds
    while not closing.is_set():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return False
        readable, _, _ = select.select([sock], [], [], min(remaining, 0.05))
        if readable:
            try:
                if not sock.recv(1, socket.MSG_PEEK):
                    return True
            except OSError:
                return True
            time.sleep(min(remaining, 0.01))
    return False


def _read_request(sock: socket.socket, pending: bytes) -> tuple[Exchange, bytes] | None:
    """Read one request (head and content-length body); None when the client closed the connection."""
    data = pending
    while b"\r\n\r\n" not in data:
        try:
            more = sock.recv(65536)
        except OSError:
            return None
        if not more:
            return None
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    path = lines[0].split(" ")[1]
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    while len(rest) < length:
        more = sock.recv(65536)
        if not more:
            return None
        rest += more
    return Exchange(path=path, body=rest[:length]), rest[length:]


def sse(*payloads: str | bytes, done: bool = True) -> list[bytes]:
    """SSE events, one piece each, for ``data:`` payloads (bytes are sent as they are)."""
    pieces = [b"data: " + (p if isinstance(p, bytes) else p.encode()) + b"\n\n" for p in payloads]
    if done:
        pieces.append(b"data: [DONE]\n\n")
    return pieces


def chunk_json(content: str | None = None, *, finish_reason: str | None = None, role: bool = False) -> str:
    """One chat-completion chunk as compact JSON."""
    delta: dict[str, object] = {}
    if role:
        delta["role"] = "assistant"
    if content is not None:
        delta["content"] = content
    choice = {"index": 0, "delta": delta, "finish_reason": finish_reason, "logprobs": None}
    chunk = {
        "id": "chatcmpl-h",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [choice],
    }
    return json.dumps(chunk, separators=(",", ":"))


def text_body(*parts: str, finish: bool = True, done: bool = True) -> list[bytes]:
    """A well-formed answer: a role chunk, one chunk per part, a stop chunk, ``[DONE]``."""
    payloads = [chunk_json("", role=True), *(chunk_json(part) for part in parts)]
    if finish:
        payloads.append(chunk_json(finish_reason="stop"))
    return sse(*payloads, done=done)


@contextlib.contextmanager
def serving(reply: Callable[[Exchange], Reply] | Reply) -> Iterator[HostileServer]:
    """A running ``HostileServer``."""
    with HostileServer(reply) as server:
        yield server


MESSAGES = [{"role": "user", "content": "hostile"}]


@dataclass
class Outcome:
    """How one stream ended, as a user sees it."""

    events: list[Any]
    error: BaseException | None
    final: Any = None
    elapsed: float = 0.0
    """Seconds from the request to the end of the stream."""

    @property
    def types(self) -> list[str]:
        return [event.type for event in self.events]

    @property
    def content(self) -> str | None:
        """The content the error's completion (or the final completion) holds."""
        completion = self.final if self.error is None else getattr(self.error, "completion", None)
        return None if completion is None else completion.choices[0].message.content


def run_sync(
    base_url: str, transport: str, dialect: str, *, client_timeout: float = 30, **options: Any
) -> Outcome:
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=client_timeout)
    events: list[Any] = []
    start = time.monotonic()
    with deltaflow.stream(
        client, model="m", messages=MESSAGES, transport=transport, dialect=dialect, **options
    ) as stream:
        try:
            events.extend(stream)
            return Outcome(events, None, stream.get_final_completion(), time.monotonic() - start)
        except Exception as error:  # the error is what the test looks at
            return Outcome(events, error, elapsed=time.monotonic() - start)


def run_async(
    base_url: str, transport: str, dialect: str, *, client_timeout: float = 30, **options: Any
) -> Outcome:
    async def go() -> Outcome:
        async with openai.AsyncOpenAI(
            base_url=base_url, api_key="sk-test", max_retries=0, timeout=client_timeout
        ) as client:
            events: list[Any] = []
            start = time.monotonic()
            async with deltaflow.astream(
                client, model="m", messages=MESSAGES, transport=transport, dialect=dialect, **options
            ) as stream:
                try:
                    async for event in stream:
                        events.append(event)
                    final = await stream.get_final_completion()
                    return Outcome(events, None, final, time.monotonic() - start)
                except Exception as error:  # the error is what the test looks at
                    return Outcome(events, error, elapsed=time.monotonic() - start)

    return asyncio.run(go())


RUNNERS = {"sync": run_sync, "async": run_async}


def run_rx(base_url: str, *, client_timeout: float = 30, **options: Any) -> Outcome:
    """The README's Rx chain: ``from_chunks(client.chat.completions.create(stream=True))``, to_events."""
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0, timeout=client_timeout)
    events: list[Any] = []
    failures: list[BaseException] = []
    start = time.monotonic()
    try:
        chunks = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
    except openai.APIError as error:  # before the stream: openai's own, the README says
        return Outcome(events, error, elapsed=time.monotonic() - start)
    deltaflow.from_chunks(chunks, **options).pipe(ops.to_events()).subscribe(
        on_next=events.append, on_error=failures.append
    )
    return Outcome(events, failures[0] if failures else None, elapsed=time.monotonic() - start)


def run_arx(base_url: str, *, client_timeout: float = 30, **options: Any) -> Outcome:
    """The async Rx chain, from an ``AsyncStream``."""

    async def go() -> Outcome:
        events: list[Any] = []
        async with openai.AsyncOpenAI(
            base_url=base_url, api_key="sk-test", max_retries=0, timeout=client_timeout
        ) as client:
            ended: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
            start = time.monotonic()
            try:
                chunks = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
            except openai.APIError as error:
                return Outcome(events, error, elapsed=time.monotonic() - start)
            deltaflow.from_chunks(chunks, **options).pipe(ops.to_events()).subscribe(
                on_next=events.append,
                on_error=ended.set_result,
                on_completed=lambda: ended.set_result(None),
            )
            error = await asyncio.wait_for(ended, 60)
            return Outcome(events, error, elapsed=time.monotonic() - start)

    return asyncio.run(go())
