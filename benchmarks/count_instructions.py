"""Instructions per chunk, counted by valgrind's callgrind: deltaflow's cost without the machine's noise.

CPU time on a shared machine moves by tens of percent from run to run (the host takes the CPU away);
the instructions a run executes do not, so this is how two versions of deltaflow compare. Each side
runs the 74 KB structured-output stream of ``bench_structured_output`` (same pre-built chunks)
under callgrind, once with no run and once with one, in a fresh interpreter warmed by a short
stream first, with the garbage collector off; the difference is one run's instructions. The ratio
to openai is not the CPU-time ratio (openai's instructions, re-parsing and copying the whole
message, wait on memory more than the interpreter's do); the goals are set in CPU time.

Needs ``valgrind``; about 12 minutes, nearly all of it openai's run; not part of ``make bench``.
``--deltaflow-only`` counts deltaflow's two sides alone (about 5 minutes; no ratio), which is how
two versions of deltaflow compare::

    python -m benchmarks.count_instructions [--deltaflow-only]

``--responses`` counts the Responses API instead (``bench_responses``' streams: text 8 KB and structured
output 22 KB, in 4-character deltas): instructions per event of openai's ``ResponseStreamState``, of
``deltaflow.responses.ResponseStream`` in its default mode and with ``deltaflow_events=False``; about 2
minutes. Written to ``results/instructions_responses.json``::

    python -m benchmarks.count_instructions --responses
"""

from __future__ import annotations

import gc
import re
import shutil
import subprocess
import sys
from typing import Any

from benchmarks._common import write_results

ITEMS = 260  # 74 KB, as bench_structured_output's goal row
SIDES = {
    "openai ChatCompletionStreamState": "openai",
    "deltaflow (a) events iterated": "events",
    "deltaflow (b) + `parsed` read per delta": "parsed",
}


RESPONSES_SIDES = {
    "openai ResponseStreamState": "openai",
    "deltaflow, default (openai's events and deltaflow's)": "default",
    "deltaflow, `deltaflow_events=False`": "openai-events-only",
}
RESPONSES_SCENARIOS = ("text", "structured")


def _responses_events(scenario: str, small: bool = False) -> tuple[list[Any], Any]:
    """``bench_responses``' events for ``scenario`` (text 8 KB, structured 22 KB; tiny when ``small``)."""
    from benchmarks.bench_partial_json import make_document  # noqa: PLC0415
    from benchmarks.bench_responses import text_events  # noqa: PLC0415
    from benchmarks.bench_structured_output import Document  # noqa: PLC0415

    if scenario == "text":
        size = 80 if small else 8_000
        return text_events(("The quick brown fox jumps over the lazy dog. " * (size // 45 + 1))[:size]), None
    return text_events(make_document(2 if small else 78)), Document


def responses_child(side: str, scenario: str, runs: int) -> None:
    """Build the events, then run ``side`` on them ``runs`` times (what the parent counts)."""
    from benchmarks.bench_responses import run_deltaflow, run_openai  # noqa: PLC0415

    def run(events: list[Any], text_format: Any) -> None:
        if side == "openai":
            run_openai(events, text_format)
        else:
            run_deltaflow(events, text_format, deltaflow_events=side == "default")

    run(*_responses_events(scenario, small=True))  # warm, as the chat sides
    events, text_format = _responses_events(scenario)
    gc.disable()
    for _ in range(runs):
        run(events, text_format)


def child(side: str, runs: int) -> None:
    """Build the chunks, then run ``side`` ``runs`` times (what the parent counts)."""
    from benchmarks.bench_partial_json import make_document  # noqa: PLC0415
    from benchmarks.bench_structured_output import content_chunks, run_deltaflow, run_openai  # noqa: PLC0415

    def run(chunks: list[Any]) -> None:
        if side == "openai":
            run_openai(chunks)
        else:
            run_deltaflow(chunks, read=side == "parsed")

    run(content_chunks(make_document(2)))  # warm: imports and first-use work are in both counts
    chunks = content_chunks(make_document(ITEMS))
    gc.disable()
    for _ in range(runs):
        run(chunks)


def count(side: str, runs: int, scenario: str | None = None) -> int:
    """Instructions of a whole child process under callgrind (a Responses one with ``scenario``)."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.count_instructions",
        *(
            ["--child", side, str(runs)]
            if scenario is None
            else ["--responses-child", side, scenario, str(runs)]
        ),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise RuntimeError(f"callgrind printed no count:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(deltaflow_only: bool = False) -> dict[str, Any]:
    """Count each side, print the table, write ``results/instructions.json`` (not with ``deltaflow_only``)."""
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind): no instruction counts")
        return {}
    from benchmarks.bench_partial_json import make_document  # noqa: PLC0415
    from benchmarks.bench_structured_output import content_chunks  # noqa: PLC0415

    chunks = len(content_chunks(make_document(ITEMS)))
    sides = {name: side for name, side in SIDES.items() if not (deltaflow_only and side == "openai")}
    per_chunk = {name: (count(side, 1) - count(side, 0)) / chunks for name, side in sides.items()}
    if deltaflow_only:
        print(f"structured output, 74 KB, {chunks:,} chunks: instructions per chunk (callgrind)\n")
        for name, value in per_chunk.items():
            print(f"| {name} | {value:,.0f} |")
        return {"chunks": chunks, "instructions_per_chunk": per_chunk}
    openai = per_chunk["openai ChatCompletionStreamState"]
    print(f"structured output, 74 KB, {chunks:,} chunks: instructions per chunk (callgrind)\n")
    print("| side | instructions/chunk | ratio |")
    print("|---|---:|---:|")
    for name, value in per_chunk.items():
        print(f"| {name} | {value:,.0f} | {value / openai:.4f} |")
    payload = {"chunks": chunks, "instructions_per_chunk": per_chunk}
    write_results("instructions", payload)
    return payload


def main_responses() -> dict[str, Any]:
    """Count each Responses side per scenario, print the table, write ``results/instructions_responses.json``."""
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind): no instruction counts")
        return {}
    payload: dict[str, Any] = {}
    print("| scenario | side | instructions/event | ratio |")
    print("|---|---|---:|---:|")
    for scenario in RESPONSES_SCENARIOS:
        events = len(_responses_events(scenario)[0])
        per_event = {
            name: (count(side, 1, scenario) - count(side, 0, scenario)) / events
            for name, side in RESPONSES_SIDES.items()
        }
        openai = per_event["openai ResponseStreamState"]
        for name, value in per_event.items():
            print(f"| {scenario} ({events:,} events) | {name} | {value:,.0f} | {value / openai:.4f} |")
        payload[scenario] = {"events": events, "instructions_per_event": per_event}
    write_results("instructions_responses", payload)
    return payload


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["--responses-child"]:
        responses_child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    elif "--responses" in sys.argv[1:]:
        main_responses()
    else:
        main(deltaflow_only="--deltaflow-only" in sys.argv[1:])
