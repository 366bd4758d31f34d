"""Live streams over loopback: CPU per chunk from HTTP bytes to events, and 1,000 concurrent astreams.

The replay server runs in a separate process, so the client's CPU time (``time.process_time``) is the
client's alone. Part one compares, on the same unpaced scripted answer, deltaflow's fast transport,
deltaflow over openai's ``Stream``, and openai's own ``client.chat.completions.stream(...)`` (every
event consumed, then the final completion). Part two runs 1,000 ``deltaflow.astream``s at once on
one event loop against a server pacing each at 50 tokens/s, and reports whether every event arrived,
the event loop's lag (a 10 ms ticker's overshoot, p50/p99/max) and the client's CPU per chunk.

Run: ``python -m benchmarks.bench_live``
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import openai

import deltaflow
from benchmarks._common import cpu_time, write_results

CONTENT_CHUNKS = 2_000
CONCURRENT = 1_000
PACED_CHUNKS = 40
TOKENS_PER_SECOND = 50
MESSAGES = [{"role": "user", "content": "bench"}]

_SERVER = """
import sys
from deltaflow.replay import Scenario, serve
words = "lorem ipsum dolor sit amet consectetur adipiscing elit ".split()
text = "".join(words[i % len(words)][:3] + " " for i in range({content}))
scenarios = {{
    "unpaced": Scenario.scripted(text, chunk_size=4),
    "paced": Scenario.scripted(text[: 4 * {paced}], chunk_size=4, tokens_per_second={tps}),
}}
serve(scenarios, port=int(sys.argv[1]), log_level="warning")
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def replay_server_process() -> Iterator[str]:
    """The replay server in its own process; yields its base URL."""
    port = _free_port()
    code = _SERVER.format(content=CONTENT_CHUNKS, paced=PACED_CHUNKS, tps=TOKENS_PER_SECOND)
    process = subprocess.Popen([sys.executable, "-c", code, str(port)])
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError("the replay server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        process.terminate()
        process.wait(10)


def _deltaflow(client: openai.OpenAI, transport: str, dialect: str = "openai") -> int:
    # the server replays OpenAI's own stream format: the dialect detection picks for api.openai.com
    with deltaflow.stream(
        client, model="unpaced", messages=MESSAGES, transport=transport, dialect=dialect
    ) as stream:  # type: ignore[arg-type]
        count = sum(1 for _ in stream)
        stream.get_final_completion()
    return count


def _openai_helper(client: openai.OpenAI) -> int:
    with client.chat.completions.stream(model="unpaced", messages=MESSAGES) as stream:  # type: ignore[arg-type]
        count = sum(1 for _ in stream)
        stream.get_final_completion()
    return count


def per_chunk(base_url: str, repeat: int = 5) -> list[dict[str, Any]]:
    """CPU µs per chunk, HTTP bytes to events, for each way of streaming the same answer."""
    client = openai.OpenAI(base_url=base_url, api_key="bench", max_retries=0)
    chunks = CONTENT_CHUNKS + 3  # role chunk, finish chunk, usage chunk
    runs = {
        "openai client.chat.completions.stream()": lambda: _openai_helper(client),
        "deltaflow.stream(transport='openai')": lambda: _deltaflow(client, "openai"),
        "deltaflow.stream() fast path": lambda: _deltaflow(client, "fast"),
        "deltaflow.stream() fast path, generic dialect": lambda: _deltaflow(client, "fast", "generic"),
    }
    _deltaflow(client, "fast")  # warm the connection pool and imports
    rows = []
    for name, run in runs.items():
        seconds, count = cpu_time(run, repeat)
        rows.append(
            {"scenario": name, "chunks": chunks, "us_per_chunk": seconds / chunks * 1e6, "runs": count}
        )
    reference = rows[0]["us_per_chunk"]
    for row in rows:
        row["ratio_vs_openai_helper"] = row["us_per_chunk"] / reference
    return rows


async def _deltaflow_astream(client: openai.AsyncOpenAI) -> int:
    deltas = 0
    async with deltaflow.astream(client, model="paced", messages=MESSAGES, dialect="openai") as stream:
        async for event in stream:
            if event.type == "content.delta" and event.delta:  # type: ignore[attr-defined]
                deltas += 1
    return deltas


async def _openai_async_helper(client: openai.AsyncOpenAI) -> int:
    deltas = 0
    async with client.chat.completions.stream(model="paced", messages=MESSAGES) as stream:  # type: ignore[arg-type]
        async for event in stream:
            if event.type == "content.delta" and event.delta:
                deltas += 1
    return deltas


async def _raw_bytes(client: openai.AsyncOpenAI) -> int:
    """The floor: the openai client's HTTP body read, nothing decoded (counts data events)."""
    events = 0
    async with client.chat.completions.with_streaming_response.create(
        model="paced",
        messages=MESSAGES,  # type: ignore[arg-type]
        stream=True,
    ) as response:
        async for read in response.iter_bytes():
            events += read.count(b"data: {")
    return events - 3  # role, finish and usage chunks carry no content delta


CONCURRENT_CLIENTS = {
    "deltaflow.astream()": _deltaflow_astream,
    "openai chat.completions.stream() (async)": _openai_async_helper,
    "openai client, raw body bytes only (floor)": _raw_bytes,
}


async def _concurrent(base_url: str, one: Any) -> dict[str, Any]:
    client = openai.AsyncOpenAI(base_url=base_url, api_key="bench", max_retries=0, timeout=120)
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - start - 0.01)

    tick = asyncio.create_task(ticker())
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    results = await asyncio.gather(*(one(client) for _ in range(CONCURRENT)), return_exceptions=True)
    cpu, wall = time.process_time() - cpu_start, time.perf_counter() - wall_start
    done.set()
    await tick
    await client.close()
    failures = [result for result in results if isinstance(result, BaseException)]
    delivered = sum(result for result in results if isinstance(result, int))
    chunks = CONCURRENT * (PACED_CHUNKS + 3)
    lags.sort()
    return {
        "streams": CONCURRENT,
        "chunks_per_stream": PACED_CHUNKS + 3,
        "tokens_per_second_per_stream": TOKENS_PER_SECOND,
        "content_deltas_expected": CONCURRENT * PACED_CHUNKS,
        "content_deltas_delivered": delivered,
        "failed_streams": len(failures),
        "first_failure": repr(failures[0]) if failures else None,
        "wall_seconds": wall,
        "ideal_wall_seconds": (PACED_CHUNKS + 3) / TOKENS_PER_SECOND,
        "client_cpu_us_per_chunk": cpu / chunks * 1e6,
        "loop_lag_ms": {
            "p50": statistics.median(lags) * 1e3,
            "p99": lags[int(len(lags) * 0.99)] * 1e3,
            "max": lags[-1] * 1e3,
        },
    }


def main() -> dict[str, Any]:
    """Run both parts, print them, write ``results/live.json``."""
    with replay_server_process() as base_url:
        rows = per_chunk(base_url)
        concurrent = {
            name: asyncio.run(_concurrent(base_url, one)) for name, one in CONCURRENT_CLIENTS.items()
        }
    print("| client | chunks | CPU µs/chunk | ratio vs openai's helper |")
    print("|---|---:|---:|---:|")
    for row in rows:
        print(
            f"| {row['scenario']} | {row['chunks']:,} | {row['us_per_chunk']:.1f} | {row['ratio_vs_openai_helper']:.3f} |"
        )
    print(
        f"\n{CONCURRENT:,} concurrent streams on one event loop, each {PACED_CHUNKS + 3} chunks paced at "
        f"{TOKENS_PER_SECOND} tokens/s (ideal wall {(PACED_CHUNKS + 3) / TOKENS_PER_SECOND:.2f} s)\n"
    )
    print(
        "| client | content deltas delivered | failed | wall s | loop lag p50 / p99 / max ms | CPU µs/chunk |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, result in concurrent.items():
        lag = result["loop_lag_ms"]
        print(
            f"| {name} | {result['content_deltas_delivered']:,}/{result['content_deltas_expected']:,} "
            f"| {result['failed_streams']} | {result['wall_seconds']:.2f} "
            f"| {lag['p50']:.0f} / {lag['p99']:.0f} / {lag['max']:.0f} | {result['client_cpu_us_per_chunk']:.1f} |"
        )
    payload = {"per_chunk": rows, "concurrent": concurrent}
    write_results("live", payload)
    return payload


if __name__ == "__main__":
    main()
