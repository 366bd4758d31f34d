"""Structured output: per-chunk CPU of ``ChatStream(response_format=Model)`` against openai's helper.

A document of nested items (``bench_partial_json.make_document``: 22 KB, 74 KB, 224 KB and 673 KB)
streams as content in 4-character deltas, with a pydantic ``response_format``. Both sides run on the
same pre-built ``ChatCompletionChunk`` objects in the same process:

- deltaflow ``ChatStream(chunks, response_format=Document)``, (a) every event iterated, (b) also
  ``event.parsed`` read on every ``content.delta``. Whole streams, best of several runs, divided by
  the number of chunks (state set-up and the final validated model included).
- openai ``ChatCompletionStreamState(response_format=Document).handle_chunk`` on every chunk, every
  event consumed, ``parsed`` read (it is computed on every chunk anyway, so (a) and (b) cost openai
  the same). openai re-parses the whole content with jiter and re-dumps the message on every chunk:
  its cost per chunk grows with the content so far, and a whole stream is quadratic (minutes at
  673 KB). So it is *sampled*: a burst of consecutive real chunks is timed at evenly spaced points
  across the whole stream, the content in between arriving as one untimed catch-up chunk (the state
  openai keeps is the accumulated text, so the cost of a chunk depends only on how much came
  before, not on how it was cut), and the bursts are averaged; the finish chunk, the usage chunk
  and ``get_final_completion`` are timed once and spread over all chunks. At 22 KB and 74 KB the
  whole stream is also run, to check the sample against it.
- For reference, the cost per delta of re-parsing the accumulated text with ``jiter`` (partial mode,
  what openai does) and with ``partial-json-parser`` (``bench_partial_json``'s helpers; sampled on
  large documents).

Goals (issue 4): at 74 KB, (a) <= 0.02x openai and (b) <= 0.05x; deltaflow's cost per chunk at
673 KB within 1.5x of its cost at 22 KB.

    python -m benchmarks.bench_structured_output [--quick]

Results go to ``benchmarks/results/structured_output.json``; ``python -m benchmarks.plot`` draws
``benchmarks/results/structured_output.png``.
"""

from __future__ import annotations

import argparse
import gc
import time
from typing import Any

import partial_json_parser  # type: ignore[import-untyped]  # ships no type information
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel

from benchmarks._common import DIALECT, choice, chunk, cpu_time, usage_chunk, write_results
from benchmarks.bench_partial_json import FULL_BELOW, PJP_SAMPLE, SAMPLE, jiter_parse, make_document

DELTA = 4
ITEMS = (78, 260, 785, 2350)  # about 22 KB, 74 KB, 224 KB, 673 KB
FULL_OPENAI_ITEMS = (78, 260)  # sizes where openai's whole stream is also timed
OPENAI_SAMPLES = 60  # points across the stream where openai is timed
OPENAI_BURST = 8  # consecutive chunks timed at each point
RATIO_EVENTS_GOAL = 0.02
RATIO_PARSED_GOAL = 0.05
FLATNESS_GOAL = 1.5
GOAL_SIZE_ITEMS = 260


class Nested(BaseModel):
    """``item.nested``."""

    x: int
    y: list[float]
    note: str | None


class Item(BaseModel):
    """One element of ``items``."""

    id: int
    name: str
    tags: list[str]
    score: float
    active: bool
    ratio: float
    nested: Nested
    text: str


class Document(BaseModel):
    """The ``response_format``: the shape of ``make_document``."""

    items: list[Item]


def content_chunks(doc: str) -> list[ChatCompletionChunk]:
    """The stream: a role chunk, one chunk per 4-character delta, the finish and the usage chunk."""
    out = [chunk([choice(0, {"role": "assistant", "content": "", "refusal": None})])]
    out += [chunk([choice(0, {"content": doc[i : i + DELTA]})]) for i in range(0, len(doc), DELTA)]
    out.append(chunk([choice(0, {}, finish_reason="stop")]))
    out.append(usage_chunk(len(out)))
    return out


def run_deltaflow(chunks: list[ChatCompletionChunk], read: bool) -> object:
    """deltaflow: every event iterated; with ``read``, ``parsed`` read on every ``content.delta``."""
    from deltaflow import ChatStream  # noqa: PLC0415 - imported late so a broken deltaflow fails one bench

    stream: ChatStream[Document] = ChatStream(chunks, response_format=Document, dialect=DIALECT)
    if read:
        for event in stream:
            if event.type == "content.delta":
                event.parsed  # noqa: B018 - the read is what is measured
    else:
        for _ in stream:
            pass
    return stream.get_final_completion()


def _consume(state: ChatCompletionStreamState[Document], item: ChatCompletionChunk) -> None:
    for event in state.handle_chunk(item):
        if event.type == "content.delta":
            event.parsed  # noqa: B018 - as deltaflow's (b); a plain attribute for openai


def run_openai(chunks: list[ChatCompletionChunk]) -> object:
    """openai's helper on the whole stream: ``handle_chunk`` per chunk, ``parsed`` read."""
    state: ChatCompletionStreamState[Document] = ChatCompletionStreamState(response_format=Document)
    for item in chunks:
        _consume(state, item)
    return state.get_final_completion()


def openai_sampled(doc: str, chunks: list[ChatCompletionChunk]) -> float:
    """openai's CPU µs per chunk, from bursts timed at evenly spaced points of the stream.

    Between bursts the content arrives untimed in one catch-up chunk, so the state at each burst
    holds exactly the text that came before it in the real stream.
    """
    deltas = chunks[1:-2]  # the content chunks; chunks[0] is the role chunk
    state: ChatCompletionStreamState[Document] = ChatCompletionStreamState(response_format=Document)
    _consume(state, chunks[0])
    starts = [round(k * (len(deltas) - OPENAI_BURST) / (OPENAI_SAMPLES - 1)) for k in range(OPENAI_SAMPLES)]
    fed = 0  # deltas whose text openai has
    spent = 0.0
    timed = 0
    gc.collect()
    gc.disable()
    try:
        for start in sorted(set(starts)):
            if start > fed:
                catch_up = "".join(item.choices[0].delta.content or "" for item in deltas[fed:start])
                _consume(state, chunk([choice(0, {"content": catch_up})]))
            burst = deltas[start : start + OPENAI_BURST]
            begin = time.process_time()
            for item in burst:
                _consume(state, item)
            spent += time.process_time() - begin
            timed += len(burst)
            fed = start + len(burst)
        if fed < len(deltas):
            rest = "".join(item.choices[0].delta.content or "" for item in deltas[fed:])
            _consume(state, chunk([choice(0, {"content": rest})]))
        begin = time.process_time()
        for item in chunks[-2:]:
            _consume(state, item)
        final = state.get_final_completion()
        tail = time.process_time() - begin
    finally:
        gc.enable()
    if final.choices[0].message.parsed != Document.model_validate_json(doc):
        raise AssertionError("openai's sampled run did not see the whole document")
    return (spent / timed + tail / len(chunks)) * 1e6


def reparse(doc: str, parse: Any, sample: int) -> tuple[float, bool]:
    """CPU µs per delta of re-parsing the accumulated text with ``parse`` after each delta.

    As ``bench_partial_json.bench_reparse`` (every delta below ``FULL_BELOW`` characters, else
    ``sample`` evenly spaced ones), but with the garbage collector off and one prefix alive at a
    time, like every other figure here: holding hundreds of large prefixes while the collector runs
    would charge the re-parse for collections it does not cause.
    """
    ends = [*range(DELTA, len(doc), DELTA), len(doc)]
    sampled = len(doc) >= FULL_BELOW
    if sampled:
        step = len(ends) / sample
        ends = [ends[int(k * step)] for k in range(sample)]
    spent = 0.0
    gc.collect()
    gc.disable()
    try:
        for end in ends:
            prefix = doc[:end]
            begin = time.process_time()
            try:
                parse(prefix)
            except Exception:  # a prefix a re-parser cannot complete: its cost counts all the same
                pass
            spent += time.process_time() - begin
    finally:
        gc.enable()
    return spent / len(ends) * 1e6, sampled


def _check(doc: str, chunks: list[ChatCompletionChunk]) -> None:
    """Both sides must end with the document's model, or the timing measures something else."""
    expected = Document.model_validate_json(doc)
    final = run_deltaflow(chunks, read=True)
    if final.choices[0].message.parsed != expected:  # type: ignore[attr-defined]
        raise AssertionError("deltaflow's final parsed value is not the document")


def measure(items: int, repeat: int, full_openai: bool) -> dict[str, Any]:
    """One row: every figure for the document of ``items`` items."""
    doc = make_document(items)
    chunks = content_chunks(doc)
    _check(doc, chunks)
    if repeat > 1 and len(chunks) < 20_000:
        repeat += 2  # short runs are the noisiest, and cheap
    events, events_runs = cpu_time(lambda: run_deltaflow(chunks, read=False), repeat)
    parsed, parsed_runs = cpu_time(lambda: run_deltaflow(chunks, read=True), repeat)
    sampled = openai_sampled(doc, chunks)
    full = None
    if full_openai:
        seconds, _ = cpu_time(lambda: run_openai(chunks), 1)
        full = seconds / len(chunks) * 1e6
    openai_us = full if full is not None else sampled
    jiter_us, jiter_sampled = reparse(doc, jiter_parse, SAMPLE)
    pjp_us, pjp_sampled = reparse(doc, partial_json_parser.loads, PJP_SAMPLE)
    events_us = events / len(chunks) * 1e6
    parsed_us = parsed / len(chunks) * 1e6
    return {
        "size_bytes": len(doc.encode()),
        "items": items,
        "chunks": len(chunks),
        "deltaflow_events_us_per_chunk": events_us,
        "deltaflow_parsed_us_per_chunk": parsed_us,
        "openai_us_per_chunk": openai_us,
        "openai_sampled_us_per_chunk": sampled,
        "openai_full_us_per_chunk": full,
        "ratio_events": events_us / openai_us,
        "ratio_parsed": parsed_us / openai_us,
        "jiter_reparse_us_per_delta": jiter_us,
        "jiter_sampled": jiter_sampled,
        "partial_json_parser_us_per_delta": pjp_us,
        "partial_json_parser_sampled": pjp_sampled,
        "runs": {"deltaflow_events": events_runs, "deltaflow_parsed": parsed_runs},
    }


def _chain_cost(chunks: list[ChatCompletionChunk], *operators: Any, repeat: int) -> float:
    """CPU µs per chunk of pushing ``chunks`` through ``operators`` on the facade's driver, events dropped."""
    from reactivex import compose  # noqa: PLC0415 - with deltaflow's imports, late as in run_deltaflow

    from deltaflow.pipeline._driver import Driver  # noqa: PLC0415

    def run() -> None:
        driver = Driver(compose(*operators))
        events = driver.events
        for item in chunks:
            driver.push(item)
            events.clear()
        driver.complete()

    seconds, _ = cpu_time(run, repeat)
    return seconds / len(chunks) * 1e6


def breakdown(items: int, repeat: int) -> list[tuple[str, float]]:
    """Where (a)'s time goes: the cost of each operator added to the chain, and of the parser's ``feed``."""
    from deltaflow.operators import accumulate, check_finish_reasons, parse_partial_json  # noqa: PLC0415
    from deltaflow.partial_json import IncrementalJsonParser  # noqa: PLC0415

    doc = make_document(items)
    chunks = content_chunks(doc)
    deltas = [doc[i : i + DELTA] for i in range(0, len(doc), DELTA)]

    def feed(emit_ops: bool) -> float:
        def run() -> None:
            parser = IncrementalJsonParser(emit_ops=emit_ops)
            for delta in deltas:
                parser.feed(delta)

        seconds, _ = cpu_time(run, repeat)
        return seconds / len(chunks) * 1e6

    accumulated = _chain_cost(chunks, accumulate(), repeat=repeat)
    checked = _chain_cost(chunks, accumulate(), check_finish_reasons(response_format=Document), repeat=repeat)
    parsed = _chain_cost(
        chunks,
        accumulate(),
        check_finish_reasons(response_format=Document),
        parse_partial_json(response_format=Document, parsed_deltas=False),
        repeat=repeat,
    )
    full = _chain_cost(
        chunks,
        accumulate(),
        check_finish_reasons(response_format=Document),
        parse_partial_json(response_format=Document),
        repeat=repeat,
    )
    plain_feed = feed(False)
    return [
        ("accumulate: chunk and content.delta events", accumulated),
        ("+ check_finish_reasons", checked - accumulated),
        ("+ parse_partial_json without path events", parsed - checked),
        ("   of which the parser's feed alone, no ops (outside the chain)", plain_feed),
        ("+ content.parsed.delta events", full - parsed),
        ("   of which the parser building ops (outside the chain)", feed(True) - plain_feed),
        ("= the chain (the facade adds its iteration and the final validated model)", full),
    ]


def table(rows: list[dict[str, Any]]) -> str:
    """The markdown table of the rows."""
    lines = [
        "| size | chunks | openai µs/chunk | deltaflow (a) events | (a) ratio | deltaflow (b) + `parsed` "
        "| (b) ratio | jiter re-parse µs/delta | partial-json-parser µs/delta |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        full = row["openai_full_us_per_chunk"]
        openai = (
            f"{full:,.1f} (sampled {row['openai_sampled_us_per_chunk']:,.1f})"
            if full is not None
            else f"{row['openai_sampled_us_per_chunk']:,.1f} (sampled)"
        )
        lines.append(
            f"| {row['size_bytes'] / 1000:,.0f} KB | {row['chunks']:,} | {openai} "
            f"| {row['deltaflow_events_us_per_chunk']:.2f} | {row['ratio_events']:.4f} "
            f"| {row['deltaflow_parsed_us_per_chunk']:.2f} | {row['ratio_parsed']:.4f} "
            f"| {row['jiter_reparse_us_per_delta']:,.1f}{' (sampled)' if row['jiter_sampled'] else ''} "
            f"| {row['partial_json_parser_us_per_delta']:,.0f}"
            f"{' (sampled)' if row['partial_json_parser_sampled'] else ''} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Measure every size, print the table, write ``results/structured_output.json`` and the plot."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one deltaflow run, no full openai run at 74 KB")
    parser.add_argument("--no-plot", action="store_true", help="do not draw the PNG")
    args = parser.parse_args(argv if argv is not None else [])
    repeat = 1 if args.quick else 3
    full_items = FULL_OPENAI_ITEMS[:1] if args.quick else FULL_OPENAI_ITEMS
    rows = [measure(items, repeat, items in full_items) for items in ITEMS]
    at_goal = next(row for row in rows if row["items"] == GOAL_SIZE_ITEMS)
    flatness = {
        side: rows[-1][f"deltaflow_{side}_us_per_chunk"] / rows[0][f"deltaflow_{side}_us_per_chunk"]
        for side in ("events", "parsed")
    }
    print("## structured output: per-chunk CPU, ChatStream(response_format=Model) vs openai's helper\n")
    print(f"4-character content deltas; deltaflow best of {repeat} whole runs; openai sampled: bursts of")
    print(
        f"{OPENAI_BURST} consecutive chunks timed at {OPENAI_SAMPLES} evenly spaced points across the whole"
    )
    print("stream (content in between fed untimed as one chunk), averaged; whole-stream figure where given.")
    print("Ratios use openai's whole-stream figure where measured, else the sample.\n")
    print(table(rows))
    print(
        f"\nat {at_goal['size_bytes'] / 1000:.0f} KB: (a) events {at_goal['ratio_events']:.4f}x openai "
        f"(goal <= {RATIO_EVENTS_GOAL}), (b) + parsed {at_goal['ratio_parsed']:.4f}x (goal <= {RATIO_PARSED_GOAL})"
    )
    print(
        f"flatness, deltaflow µs/chunk at {rows[-1]['size_bytes'] / 1000:.0f} KB / at "
        f"{rows[0]['size_bytes'] / 1000:.0f} KB: (a) {flatness['events']:.2f}, (b) {flatness['parsed']:.2f}"
        f" (goal <= {FLATNESS_GOAL})"
    )
    parts = breakdown(GOAL_SIZE_ITEMS, repeat)
    print(f"\nwhere (a)'s time goes at {at_goal['size_bytes'] / 1000:.0f} KB, CPU µs per chunk:\n")
    print("| part | µs/chunk |\n|---|---:|")
    for name, cost in parts:
        print(f"| {name} | {cost:.2f} |")
    payload = {
        "unit": "CPU µs per chunk (time.process_time, gc off); re-parse rows: µs per delta",
        "breakdown_74kb": dict(parts),
        "delta_chars": DELTA,
        "openai_method": (
            f"sampled: {OPENAI_SAMPLES} bursts of {OPENAI_BURST} consecutive real chunks at evenly spaced"
            " points across the whole stream, the content in between fed untimed as one catch-up"
            " chunk; finish + usage chunks and get_final_completion timed once and spread over all"
            " chunks; whole-stream run too at the sizes where openai_full_us_per_chunk is set"
        ),
        "rows": rows,
        "goals": {
            "ratio_events_74kb": {"value": at_goal["ratio_events"], "goal": RATIO_EVENTS_GOAL},
            "ratio_parsed_74kb": {"value": at_goal["ratio_parsed"], "goal": RATIO_PARSED_GOAL},
            "flatness_673kb_vs_22kb": {"value": flatness, "goal": FLATNESS_GOAL},
        },
    }
    print(f"\nwritten to {write_results('structured_output', payload)}")
    if not args.no_plot:
        from benchmarks.plot import plot_structured_output  # noqa: PLC0415 - matplotlib only when drawing

        print(f"plot: {plot_structured_output()}")
    return payload


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
