"""Hostile servers and early exits over real HTTP, through the real openai client, on every path.

Each path is a transport (``fast``, ``openai``), a dialect (``generic``, ``openai``) and a client (sync,
async). Whatever the server sends, the user gets chunks, a typed deltaflow error carrying what arrived
(``.completion``), or an ``error`` event and a stream that goes on; and the connection is let go.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from typing import Any

import openai
import pytest
from reactivex import operators as rx

import deltaflow
from deltaflow.errors import (
    DeltaflowError,
    ProviderError,
    StreamContractError,
    StreamInterrupted,
    StreamTimeout,
)
from deltaflow.replay import FAULT_HEADER, ReplayServer, Scenario
from tests.fixtures import FIXTURES, require
from tests.live.hostile import (
    MESSAGES,
    RUNNERS,
    HostileServer,
    Reply,
    chunk_json,
    run_sync,
    serving,
    text_body,
)

TRANSPORTS = ["fast", "openai"]
DIALECTS = ["generic", "openai"]


PATHS = [
    pytest.param(client, transport, dialect, id=f"{client}-{transport}-{dialect}")
    for client in RUNNERS
    for transport in TRANSPORTS
    for dialect in DIALECTS
]

HELLO = text_body("Hel", "lo")
"""A role chunk, "Hel", "lo", a stop chunk and [DONE]: pieces 0 to 4, then [DONE]."""


def _with(insert: bytes) -> list[bytes | float]:
    """HELLO with ``insert`` sent after "Hel" (so what arrived before it is "Hel")."""
    return [*HELLO[:2], insert, *HELLO[2:]]


BAD_UTF8_DATA = chunk_json("lo").encode().replace(b'"lo"', b'"l\xff\xfeo"')
DEEP = ("[" * 1000 + "]" * 1000).encode()


class TestHostileBytes:
    """Invalid UTF-8, deep nesting, gzip garbage, ping frames: typed errors or a stream that goes on."""

    @pytest.mark.parametrize(("client", "transport", "dialect"), PATHS)
    def test_invalid_utf8_in_a_data_line_is_a_contract_error(
        self, client: str, transport: str, dialect: str
    ) -> None:
        """A data line that is not UTF-8 ends the stream with StreamContractError and the text before it."""
        with serving(Reply(_with(b"data: " + BAD_UTF8_DATA + b"\n\n"))) as server:
            outcome = RUNNERS[client](server.base_url, transport, dialect)
        assert isinstance(outcome.error, StreamContractError)
        assert "UTF-8" in str(outcome.error)
        assert outcome.content == "Hel"
        assert outcome.types[-1] == "error"

    @pytest.mark.parametrize(("client", "transport", "dialect"), PATHS)
    def test_invalid_utf8_in_a_comment(self, client: str, transport: str, dialect: str) -> None:
        """The fast transport never decodes comments, so the stream goes on; openai's decodes it: a typed error."""
        with serving(Reply(_with(b": \xff\xfe keep-alive\n\n"))) as server:
            outcome = RUNNERS[client](server.base_url, transport, dialect)
        if transport == "fast":
            assert outcome.error is None
            assert outcome.content == "Hello"
        else:
            assert isinstance(outcome.error, StreamContractError)
            assert outcome.content == "Hel"

    @pytest.mark.parametrize(("client", "transport", "dialect"), PATHS)
    def test_json_nested_a_thousand_deep_is_a_contract_error(
        self, client: str, transport: str, dialect: str
    ) -> None:
        """A chunk nested 1,000 deep is StreamContractError, never a RecursionError."""
        payload = chunk_json("lo").encode()[:-1] + b',"x":' + DEEP + b"}"
        with serving(Reply(_with(b"data: " + payload + b"\n\n"))) as server:
            outcome = RUNNERS[client](server.base_url, transport, dialect)
        assert isinstance(outcome.error, StreamContractError)
        assert outcome.content == "Hel"

    @pytest.mark.parametrize("payload", [b"[1,2]", b"null", b'"text"', b'{"choices":[[1]]}'])
    @pytest.mark.parametrize(("client", "transport", "dialect"), PATHS)
    def test_json_that_is_not_a_chunk_is_a_contract_error(
        self, client: str, transport: str, dialect: str, payload: bytes
    ) -> None:
        """JSON that is not an object with a list of choice objects: StreamContractError, not AttributeError."""
        with serving(Reply(_with(b"data: " + payload + b"\n\n"))) as server:
            outcome = RUNNERS[client](server.base_url, transport, dialect)
        assert isinstance(outcome.error, StreamContractError)
        assert outcome.content == "Hel"

    @pytest.mark.parametrize(("client", "transport", "dialect"), PATHS)
    def test_gzip_garbage_is_a_contract_error(self, client: str, transport: str, dialect: str) -> None:
        """Content-Encoding: gzip over a corrupt body is StreamContractError, not httpx's DecodingError."""
        body = gzip.compress(b"".join(piece for piece in HELLO if isinstance(piece, bytes)))
        corrupt = body[:12] + bytes(byte ^ 0x5A for byte in body[12:40]) + body[40:]
        with serving(Reply([corrupt], headers={"content-encoding": "gzip"})) as server:
            outcome = RUNNERS[client](server.base_url, transport, dialect)
        assert isinstance(outcome.error, StreamContractError)
        assert "decoded" in str(outcome.error)

    @pytest.mark.parametrize(("client", "transport", "dialect"), PATHS)
    def test_a_ping_event_is_skipped(self, client: str, transport: str, dialect: str) -> None:
        """``event: ping`` is a keep-alive: the stream goes on to its end."""
        with serving(Reply(_with(b'event: ping\ndata: {"type":"ping"}\n\n'))) as server:
            outcome = RUNNERS[client](server.base_url, transport, dialect)
        assert outcome.error is None
        assert outcome.content == "Hello"
        assert "error" not in outcome.types


class TestBodyEnds:
    """A body cut mid-line is an interruption; a body that just stops says so and still succeeds."""

    @pytest.mark.parametrize(("client", "transport", "dialect"), PATHS)
    def test_a_body_cut_mid_line_is_interrupted(self, client: str, transport: str, dialect: str) -> None:
        """The last line has no end: StreamInterrupted with what arrived, on openai's transport too."""
        with serving(Reply([*HELLO[:2], b'data: {"id":"chatcmpl-h","obj'])) as server:
            outcome = RUNNERS[client](server.base_url, transport, dialect)
        assert isinstance(outcome.error, StreamInterrupted)
        assert outcome.content == "Hel"

    @pytest.mark.parametrize(("client", "transport", "dialect"), PATHS)
    def test_no_done_and_no_finish_reason_is_flagged(self, client: str, transport: str, dialect: str) -> None:
        """Neither [DONE] nor a finish reason: success, a finish_reason_missing event and an unfinished flag."""
        with serving(Reply(text_body("Hel", "lo", finish=False, done=False))) as server:
            outcome = RUNNERS[client](server.base_url, transport, dialect)
        assert outcome.error is None
        assert outcome.content == "Hello"
        missing = [event for event in outcome.events if event.type == "error"]
        assert [(event.code, event.choice_index) for event in missing] == [("finish_reason_missing", 0)]
        assert outcome.events[-1].type == "completion.done"
        assert outcome.events[-1].unfinished is True

    @pytest.mark.parametrize(("client", "transport", "dialect"), PATHS)
    def test_a_finished_stream_is_not_flagged(self, client: str, transport: str, dialect: str) -> None:
        """A stream with its finish reason has no such event and ``unfinished`` is False."""
        with serving(Reply(HELLO)) as server:
            outcome = RUNNERS[client](server.base_url, transport, dialect)
        assert outcome.events[-1].unfinished is False
        assert "error" not in outcome.types

    @pytest.mark.parametrize("transport", TRANSPORTS)
    def test_evrocs_clean_eof_still_succeeds_with_the_flag(self, transport: str) -> None:
        """evroc's vLLM ends 549 chunks in with no finish reason and no [DONE]: a completion, flagged."""
        path = require(FIXTURES / "providers-more" / "evroc" / "kimi-k2.6-clean-eof-no-finish.sse")
        with ReplayServer(Scenario.from_file(path)) as server:
            outcome = run_sync(server.base_url, transport, "generic")
        assert outcome.error is None
        assert outcome.final.choices[0].message.content
        assert outcome.events[-1].unfinished is True


class TestTimeoutsAndBounds:
    @pytest.mark.parametrize(("client", "transport", "dialect"), PATHS)
    def test_idle_timeout_stops_a_trickle(self, client: str, transport: str, dialect: str) -> None:
        """One byte every 50 ms never trips a read timeout; idle_timeout (counting chunks) stops it."""
        trickle: list[bytes | float] = [*HELLO[:2]]
        for byte in b"data: " + chunk_json("lo" * 200).encode():
            trickle += [bytes([byte]), 0.05]
        with serving(Reply(trickle)) as server:
            outcome = RUNNERS[client](server.base_url, transport, dialect, idle_timeout=1)
            assert server.latest().left.wait(10)
        assert isinstance(outcome.error, StreamTimeout)
        assert outcome.content == "Hel"

    @pytest.mark.parametrize(("client", "transport", "dialect"), PATHS)
    def test_a_json_error_body_with_status_200_is_the_providers_error(
        self, client: str, transport: str, dialect: str
    ) -> None:
        """HTTP 200 with a JSON error instead of SSE: ProviderError with the provider's own message."""
        body = b'{"error":{"message":"Quota exceeded for model m","code":429}}'
        reply = Reply([body], headers={"content-type": "application/json"}, chunked=False)
        with serving(reply) as server:
            outcome = RUNNERS[client](server.base_url, transport, dialect)
        assert isinstance(outcome.error, ProviderError)
        assert str(outcome.error) == "Quota exceeded for model m"
        assert outcome.error.error["error"]["code"] == 429

    @pytest.mark.parametrize("transport", TRANSPORTS)
    def test_a_json_completion_instead_of_a_stream_is_a_contract_error(self, transport: str) -> None:
        """A 200 JSON body that is no error (a non-streamed answer): StreamContractError quoting it."""
        body = b'{"id":"chatcmpl-1","object":"chat.completion","choices":[]}'
        reply = Reply([body], headers={"content-type": "application/json; charset=utf-8"}, chunked=False)
        with serving(reply) as server:
            outcome = run_sync(server.base_url, transport, "openai")
        assert isinstance(outcome.error, StreamContractError)
        assert "not an event stream" in str(outcome.error)
        assert "chat.completion" in str(outcome.error)

    @pytest.mark.parametrize(("client", "transport", "dialect"), PATHS)
    def test_max_line_bounds_a_line_on_both_transports(
        self, client: str, transport: str, dialect: str
    ) -> None:
        """``max_line`` passed to stream()/astream() bounds a line, on openai's transport too."""
        long_line = b"data: " + chunk_json("x" * 5000).encode() + b"\n\n"
        pieces = [long_line[start : start + 512] for start in range(0, len(long_line), 512)]
        with serving(Reply([*HELLO[:2], *pieces, *HELLO[2:]])) as server:
            outcome = RUNNERS[client](server.base_url, transport, dialect, max_line=2000)
        assert isinstance(outcome.error, StreamContractError)
        assert "longer than 2000 bytes" in str(outcome.error)
        assert outcome.content == "Hel"


class TestLettingGo:
    """Early exits and failures close the connection, promptly, and reuse it when the body ended."""

    def test_disposing_an_rx_chain_over_a_sync_openai_stream_closes_the_response(self) -> None:
        """``from_chunks(openai Stream)`` with ``take(3)``: the server sees the client leave."""
        scenario = Scenario.scripted("one two three four five six seven eight nine ten", chunk_size=3)
        with ReplayServer(Scenario(scenario.events, tokens_per_second=10)) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
            chunks = client.chat.completions.create(model="replay-1", messages=MESSAGES, stream=True)
            taken: list[Any] = []
            deltaflow.from_chunks(chunks).pipe(rx.take(3)).subscribe(taken.append, pytest.fail)
            assert len(taken) == 3
            assert server.wait_for_disconnect(10).disconnected

    @pytest.mark.parametrize("transport", TRANSPORTS)
    def test_close_from_another_thread_releases_a_stalled_stream(self, transport: str) -> None:
        """A stream stalled mid-body: close() from another thread ends the iteration and the connection."""
        with serving(Reply(HELLO[:2], end="hang")) as server:
            client = openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0, timeout=60)
            stream = deltaflow.stream(client, model="m", messages=MESSAGES, transport=transport)
            started, ended = threading.Event(), threading.Event()
            seen: list[str] = []

            def consume() -> None:
                for event in stream:
                    seen.append(event.type)
                    if event.type == "content.delta" and event.delta == "Hel":
                        started.set()  # the last chunk sent: the next read blocks
                ended.set()

            worker = threading.Thread(target=consume, daemon=True)
            worker.start()
            assert started.wait(10)
            time.sleep(0.3)  # setup, not a measure: let the consumer get into its blocked read
            stream.close()
            assert ended.wait(10), "the consumer stayed blocked in the read"
            assert server.latest().left.wait(10)
        assert seen == ["chunk", "content.delta", "chunk", "content.delta"]  # no end: it was closed

    @pytest.mark.parametrize("transport", TRANSPORTS)
    def test_sequential_async_streams_share_one_connection(self, transport: str) -> None:
        """20 streams in a row over one AsyncOpenAI client: the fast path opens one TCP connection, and
        neither transport opens more than openai's own stream helper does on the installed openai."""

        async def twenty(server: HostileServer, *, ours: bool) -> None:
            async with openai.AsyncOpenAI(
                base_url=server.base_url, api_key="sk-test", max_retries=0
            ) as client:
                for _ in range(20):
                    if ours:
                        async with deltaflow.astream(
                            client, model="m", messages=MESSAGES, transport=transport
                        ) as stream:
                            await stream.until_done()
                    else:
                        async with client.chat.completions.stream(model="m", messages=MESSAGES) as theirs:
                            await theirs.until_done()

        with serving(Reply(HELLO)) as server:
            asyncio.run(twenty(server, ours=False))
            openais = server.connections
        with serving(Reply(HELLO)) as server:
            asyncio.run(twenty(server, ours=True))
            assert len(server.exchanges) == 20
            assert server.connections <= openais
            if transport == "fast":
                assert server.connections == 1


class TestDroppedConnections:
    """A drop mid-stream is StreamInterrupted with the completion, and also openai's APIConnectionError."""

    @pytest.mark.parametrize(("client", "transport", "dialect"), PATHS)
    def test_a_drop_is_interrupted_and_an_api_connection_error(
        self, client: str, transport: str, dialect: str
    ) -> None:
        """Code catching openai.APIConnectionError (as for openai's helper) still catches it."""
        with ReplayServer(Scenario.scripted("The quick brown fox", chunk_size=5)) as server:
            outcome = RUNNERS[client](
                server.base_url, transport, dialect, extra_headers={FAULT_HEADER: "drop-after=3"}
            )
        assert isinstance(outcome.error, StreamInterrupted)
        assert isinstance(outcome.error, openai.APIConnectionError)
        assert isinstance(outcome.error, DeltaflowError)
        assert outcome.content == "The quick "
        assert outcome.events[-1].code == "interrupted"
        assert outcome.error.request is not None
        assert "authorization" not in outcome.error.request.headers

    def test_a_stall_past_the_idle_timeout_is_also_openais_timeout_error(self) -> None:
        """StreamTimeout is openai's APITimeoutError too."""
        with ReplayServer(Scenario.scripted("The quick brown fox", chunk_size=5)) as server:
            outcome = run_sync(
                server.base_url,
                "fast",
                "openai",
                idle_timeout=0.3,
                extra_headers={FAULT_HEADER: "stall-after=3;stall=5"},
            )
        assert isinstance(outcome.error, StreamTimeout)
        assert isinstance(outcome.error, openai.APITimeoutError)
