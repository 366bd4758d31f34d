"""Per-chunk CPU of one tool call whose arguments stream in 5,000 fragments, deltaflow against openai.

With a strict tool both sides parse the partial arguments on every fragment: openai re-parses the
whole text each time (jiter partial mode), deltaflow feeds the new characters to its incremental
parser. With a non-strict tool neither side parses. Same pre-built chunks, same process.

    python -m benchmarks.bench_tool_arguments
"""

from __future__ import annotations

import json
import random
from itertools import accumulate, pairwise
from typing import Any

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
FRAGMENTS = 5_000
_RECORD = {
    "type": "object",
    "properties": {"id": {"type": "integer"}, "name": {"type": "string"}, "ok": {"type": "boolean"}},
    "required": ["id", "name", "ok"],
    "additionalProperties": False,
}
PARAMETERS = {
    "type": "object",
    "properties": {"records": {"type": "array", "items": _RECORD}},
    "required": ["records"],
    "additionalProperties": False,
}


def record_tool(strict: bool) -> dict[str, Any]:
    """The ``record`` function tool, strict (partially parsed by both sides) or not."""
    return {"type": "function", "function": {"name": "record", "parameters": PARAMETERS, "strict": strict}}


def arguments_fragments(count: int, seed: int = 0) -> list[str]:
    """``{"records": [...]}`` cut into exactly ``count`` fragments of 2-8 characters."""
    rng = random.Random(seed)
    sizes = [rng.randint(2, 8) for _ in range(count)]
    length = sum(sizes)
    head, tail, records = '{"records": [', "]}", []
    while True:
        number = len(records)
        record = json.dumps({"id": number, "name": f"item-{number}", "ok": number % 3 != 0})
        if len(head) + len(", ".join([*records, record])) + len(tail) > length:
            break
        records.append(record)
    body = head + ", ".join(records)
    text = body + " " * (length - len(body) - len(tail)) + tail  # JSON whitespace makes the length exact
    return [text[start:end] for start, end in pairwise([0, *accumulate(sizes)])]


def tool_chunks(fragments: list[str]) -> list[ChatCompletionChunk]:
    """The stream: the call's opening chunk, one chunk per fragment, the finish and the usage chunk."""
    opening = {
        "role": "assistant",
        "content": None,
        "refusal": None,
        "tool_calls": [
            {
                "index": 0,
                "id": "call_bench",
                "type": "function",
                "function": {"name": "record", "arguments": ""},
            }
        ],
    }
    out = [chunk([choice(0, opening)])]
    out += [
        chunk([choice(0, {"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]})])
        for fragment in fragments
    ]
    out.append(chunk([choice(0, {}, finish_reason="tool_calls")]))
    out.append(usage_chunk(len(fragments)))
    return out


def _check(chunks: list[ChatCompletionChunk], fragments: list[str]) -> None:
    """deltaflow's final parsed arguments must be the whole text parsed."""
    final = run_deltaflow(chunks, tools=[record_tool(strict=True)])
    parsed = final.choices[0].message.tool_calls[0].function.parsed_arguments  # type: ignore[attr-defined]
    if parsed != json.loads("".join(fragments)):
        raise AssertionError("deltaflow's final parsed arguments are not the arguments parsed")


def main() -> dict[str, Any]:
    """Measure the strict and non-strict tool, print the table and write ``results/tool_arguments.json``."""
    fragments = arguments_fragments(FRAGMENTS)
    chars = len("".join(fragments))
    chunks = tool_chunks(fragments)
    _check(chunks, fragments)
    strict, loose = [record_tool(strict=True)], [record_tool(strict=False)]
    read = {"read": "parsed_arguments", "read_on": "tool_calls.function.arguments.delta"}
    rows = [
        compare("strict tool (partial parse per fragment)", chunks, repeat=5, tools=strict),
        compare("strict tool, every delta's .parsed_arguments read", chunks, repeat=5, tools=strict, **read),
        compare("non-strict tool (no parsing)", chunks, repeat=5, tools=loose),
    ]
    print(f"## tool arguments: one call, {FRAGMENTS:,} fragments of 2-8 chars ({chars:,} chars)\n")
    print(comparison_table(rows))
    print(f"\nratio, strict tool: {rows[0]['ratio']:.3f} (goal <= {RATIO_GOAL})")
    payload = {
        "unit": "CPU µs per chunk (time.process_time, gc off, best of `runs`)",
        "fragments": FRAGMENTS,
        "arguments_chars": chars,
        "rows": rows,
        "goals": {"ratio_strict": {"value": rows[0]["ratio"], "goal": RATIO_GOAL}},
    }
    print(f"\nwritten to {write_results('tool_arguments', payload)}")
    return payload


if __name__ == "__main__":
    main()
