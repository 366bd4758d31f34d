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


def count(side: str, runs: int) -> int:
    """Instructions of a whole child process under callgrind."""
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-m",
        "benchmarks.count_instructions",
        "--child",
        side,
        str(runs),
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


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        child(sys.argv[2], int(sys.argv[3]))
    else:
        main(deltaflow_only="--deltaflow-only" in sys.argv[1:])
