"""What the default idle clock costs on the HTTP fast path: CPU per chunk with it and without, same run.

``idle_timeout=600`` (the default) against ``idle_timeout=None`` on the same unpaced 2,000-chunk answer
from the replay server in its own process, interleaved, medians of 12 runs each, sync and async.

Run: ``python -m benchmarks.bench_idle_clock``
"""

from __future__ import annotations

import asyncio
import statistics
import time

import openai

import deltaflow
from benchmarks.bench_live import CONTENT_CHUNKS, MESSAGES, replay_server_process

ROUNDS = 12
SIDES = (("idle_timeout=None", None), ("default (600 s)", 600.0))


def _sync(client: openai.OpenAI, idle: float | None) -> None:
    with deltaflow.stream(
        client, model="unpaced", messages=MESSAGES, dialect="openai", idle_timeout=idle
    ) as s:  # type: ignore[arg-type]
        for _ in s:
            pass


async def _async(client: openai.AsyncOpenAI, idle: float | None) -> None:
    async with deltaflow.astream(
        client,
        model="unpaced",
        messages=MESSAGES,  # type: ignore[arg-type]
        dialect="openai",
        idle_timeout=idle,
    ) as s:
        async for _ in s:
            pass


def _report(kind: str, times: dict[str, list[float]]) -> None:
    per_chunk = {name: statistics.median(runs) / (CONTENT_CHUNKS + 3) * 1e6 for name, runs in times.items()}
    ratio = per_chunk["default (600 s)"] / per_chunk["idle_timeout=None"]
    shown = ", ".join(f"{name} {value:.2f} µs/chunk" for name, value in per_chunk.items())
    print(f"{kind}: {shown}; default / None = {ratio:.3f}")


def main() -> None:
    """Run both sides, interleaved, sync then async."""
    with replay_server_process() as url:
        client = openai.OpenAI(base_url=url, api_key="bench", max_retries=0)
        _sync(client, None)
        times: dict[str, list[float]] = {name: [] for name, _ in SIDES}
        for round_ in range(ROUNDS):
            for name, idle in SIDES if round_ % 2 else SIDES[::-1]:
                start = time.process_time()
                _sync(client, idle)
                times[name].append(time.process_time() - start)
        _report("sync fast path", times)

        async def run_async() -> None:
            aclient = openai.AsyncOpenAI(base_url=url, api_key="bench", max_retries=0)
            await _async(aclient, None)
            times = {name: [] for name, _ in SIDES}
            for round_ in range(ROUNDS):
                for name, idle in SIDES if round_ % 2 else SIDES[::-1]:
                    start = time.process_time()
                    await _async(aclient, idle)
                    times[name].append(time.process_time() - start)
            _report("async fast path", times)
            await aclient.close()

        asyncio.run(run_async())


if __name__ == "__main__":
    main()
