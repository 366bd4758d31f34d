"""Per-chunk CPU of deltaflow's ``ChatStream`` against openai's ``ChatCompletionStreamState``.

Both run on the same pre-built ``ChatCompletionChunk`` objects in the same process; figures are the
best of several runs of a whole stream (state set-up and the final completion included), divided by
the number of chunks. openai re-dumps the whole message on every chunk, so its cost per chunk grows
with the stream; at 50,000 chunks a run takes seconds, so fewer runs fit the time budget.

    python -m benchmarks.bench_core
"""

from __future__ import annotations

import random
from typing import Any, NamedTuple

from openai.types.chat import ChatCompletionChunk

from benchmarks._common import (
    choice,
    chunk,
    compare,
    comparison_table,
    run_deltaflow,
    usage_chunk,
    write_results,
)

RATIO_GOAL = 0.1
FLATNESS_GOAL = 1.3
_TEXT = (
    "the stream of tokens arrives one small piece at a time and each piece is a delta that "
    "the client appends to what it already holds while the user watches the answer grow"
)
WORDS = _TEXT.split()


def text_chunks(
    total: int, choices: int = 1, logprobs: bool = False, seed: int = 0
) -> list[ChatCompletionChunk]:
    """A text stream of ``total`` chunks as OpenAI sends it.

    Per choice a role chunk, then 1-4-word content deltas (round-robin over the choices), per choice
    a finish chunk, and a usage chunk with ``choices: []``.
    """
    rng = random.Random(seed)
    empty_logprobs = {"content": [], "refusal": None} if logprobs else None
    out = [
        chunk([choice(index, {"role": "assistant", "content": "", "refusal": None}, logprobs=empty_logprobs)])
        for index in range(choices)
    ]
    for number in range(total - 2 * choices - 1):
        words = [" " + rng.choice(WORDS) for _ in range(rng.randint(1, 4))]
        token_logprobs = None
        if logprobs:
            content = [
                {"token": word, "logprob": -rng.random(), "bytes": list(word.encode()), "top_logprobs": []}
                for word in words
            ]
            token_logprobs = {"content": content, "refusal": None}
        out.append(chunk([choice(number % choices, {"content": "".join(words)}, logprobs=token_logprobs)]))
    out += [chunk([choice(index, {}, finish_reason="stop")]) for index in range(choices)]
    out.append(usage_chunk(total))
    return out


class Case(NamedTuple):
    """One scenario: how to build its stream, what to read on the events, the sizes to measure."""

    scenario: str
    build: dict[str, Any]
    sizes: tuple[int, ...]
    read: dict[str, str]


SNAPSHOT = {"read": "snapshot", "read_on": "content.delta"}
CASES = (
    Case("text", {}, (2_000, 10_000, 50_000), {}),
    Case("text, generic dialect", {}, (2_000,), {"dialect": "generic"}),
    Case("text, every content.delta .snapshot read", {}, (2_000, 10_000, 50_000), SNAPSHOT),
    Case("text, n=3 interleaved", {"choices": 3}, (2_000,), {}),
    Case("text + logprobs", {"logprobs": True}, (2_000,), {}),
)


def _check(chunks: list[ChatCompletionChunk]) -> None:
    """deltaflow's final content must be the deltas joined, or the timing measures something else."""
    parts: dict[int, list[str]] = {}
    for item in chunks:
        for part in item.choices:
            parts.setdefault(part.index, []).append(part.delta.content or "")
    final = run_deltaflow(chunks)
    got = {part.index: part.message.content for part in final.choices}  # type: ignore[attr-defined]
    if got != {index: "".join(texts) for index, texts in parts.items()}:
        raise AssertionError("deltaflow's final content is not the deltas joined")


def measure(case: Case, total: int) -> dict[str, Any]:
    """One row: both sides on the same ``total`` chunks."""
    chunks = text_chunks(total, **case.build)
    _check(chunks)
    repeat = 5 if total <= 2_000 else 3
    return compare(case.scenario, chunks, repeat=repeat, **case.read)


def _growth(rows: list[dict[str, Any]], scenario: str, side: str) -> float:
    """µs/chunk of one side at the scenario's largest size over its smallest (sizes ascend)."""
    costs = [row[f"{side}_us_per_chunk"] for row in rows if row["scenario"] == scenario]
    return costs[-1] / costs[0]


def main() -> dict[str, Any]:
    """Measure every case, print the table and write ``results/core.json``."""
    rows = [measure(case, total) for case in CASES for total in case.sizes]
    headline = next(row for row in rows if row["scenario"] == "text" and row["chunks"] == 2_000)
    flatness = {
        case.scenario: {side: _growth(rows, case.scenario, side) for side in ("deltaflow", "openai")}
        for case in CASES
        if len(case.sizes) > 1
    }
    print("## core: per-chunk CPU, deltaflow ChatStream vs openai ChatCompletionStreamState\n")
    print(comparison_table(rows))
    print(f"\nratio at 2,000 text chunks: {headline['ratio']:.3f} (goal <= {RATIO_GOAL})")
    for scenario, growth in flatness.items():
        print(
            f"µs/chunk at 50,000 / at 2,000 chunks, {scenario}: deltaflow {growth['deltaflow']:.2f}"
            f" (goal <= {FLATNESS_GOAL}), openai {growth['openai']:.2f}"
        )
    payload = {
        "unit": "CPU µs per chunk (time.process_time, gc off, best of `runs`)",
        "rows": rows,
        "goals": {
            "ratio_text_2000": {"value": headline["ratio"], "goal": RATIO_GOAL},
            "flatness_50000_vs_2000": {
                "value": flatness,
                "goal": FLATNESS_GOAL,
                "goal_applies_to": "deltaflow",
            },
        },
    }
    print(f"\nwritten to {write_results('core', payload)}")
    return payload


if __name__ == "__main__":
    main()
