"""Responses API: CPU per event of ``deltaflow.responses.ResponseStream`` against openai's helper.

Both sides run on the same pre-built typed events (openai's ``ResponseStreamEvent`` classes, as the
openai client hands them to its helper) in the same process:

- openai: ``ResponseStreamState.handle_event`` on every event, every event consumed, then the final
  response (what ``client.responses.stream()`` does per event, the HTTP read left out of both sides).
- deltaflow: ``ResponseStream(events)`` iterated whole (openai's events and deltaflow's), then
  ``get_final_response()``; also with ``deltaflow_events=False`` (openai's events only).

Scenarios: plain text in 4-character deltas (2 KB, 8 KB, 32 KB), and a structured output parsed into
a pydantic ``text_format`` (``bench_partial_json.make_document``: about 22 KB and 74 KB), where
deltaflow also parses each delta incrementally (``content.parsed.delta`` paths) and openai parses the
text once at the end. Goal (issue 21): <= 0.1x per event, flat in the answer's size.

    python -m benchmarks.bench_responses [--quick]

Results go to ``benchmarks/results/responses.json``.
"""

from __future__ import annotations

import argparse
from typing import Any

from openai import omit
from openai.lib.streaming.responses import ResponseStreamState

from benchmarks._common import cpu_time, write_results
from benchmarks.bench_partial_json import make_document
from benchmarks.bench_structured_output import Document

DELTA = 4
TEXT_SIZES = (2_000, 8_000, 32_000)
DOCUMENT_ITEMS = (78, 260)  # about 22 KB and 74 KB
RATIO_GOAL = 0.1


def _response(status: str, output: list[Any], usage: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "id": "resp_bench",
        "object": "response",
        "created_at": 1767225600,
        "status": status,
        "model": "gpt-5-bench",
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": usage,
    }


def text_events(text: str) -> list[Any]:
    """The events OpenAI sends for one text answer, as openai's typed classes."""
    from deltaflow.responses import event_from_dict  # noqa: PLC0415 - imported late so a broken deltaflow fails one bench

    item = {"id": "msg_1", "type": "message", "role": "assistant", "status": "in_progress", "content": []}
    common = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    raw: list[dict[str, Any]] = [
        {"type": "response.created", "response": _response("in_progress", [])},
        {"type": "response.output_item.added", "output_index": 0, "item": item},
        {"type": "response.content_part.added", **common, "part": part},
    ]
    raw += [
        {"type": "response.output_text.delta", **common, "delta": text[i : i + DELTA], "logprobs": []}
        for i in range(0, len(text), DELTA)
    ]
    done = {**part, "text": text}
    finished = {**item, "status": "completed", "content": [done]}
    usage = {"input_tokens": 40, "output_tokens": len(raw), "total_tokens": 40 + len(raw)}
    raw += [
        {"type": "response.output_text.done", **common, "text": text, "logprobs": []},
        {"type": "response.content_part.done", **common, "part": done},
        {"type": "response.output_item.done", "output_index": 0, "item": finished},
        {"type": "response.completed", "response": _response("completed", [finished], usage)},
    ]
    return [event_from_dict({**event, "sequence_number": n}) for n, event in enumerate(raw)]


def run_openai(events: list[Any], text_format: Any) -> object:
    """openai's helper: ``handle_event`` per event, every event consumed, the final response."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=omit, text_format=text_format or omit)
    for event in events:
        for _ in state.handle_event(event):
            pass
    return state._completed_response  # what its get_final_response returns


def run_deltaflow(events: list[Any], text_format: Any, **options: Any) -> object:
    """deltaflow's ``ResponseStream``: every event iterated, then the final response."""
    from deltaflow.responses import ResponseStream  # noqa: PLC0415 - imported late so a broken deltaflow fails one bench

    stream: ResponseStream[Any] = ResponseStream(events, text_format=text_format, **options)
    for _ in stream:
        pass
    return stream.get_final_response()


def compare(scenario: str, events: list[Any], text_format: Any, repeat: int) -> dict[str, Any]:
    """CPU µs per event of each side on the same events, and the ratios."""
    theirs, _ = cpu_time(lambda: run_openai(events, text_format), repeat)
    ours, _ = cpu_time(lambda: run_deltaflow(events, text_format), repeat)
    openai_only, _ = cpu_time(lambda: run_deltaflow(events, text_format, deltaflow_events=False), repeat)
    per = 1e6 / len(events)
    row = {
        "scenario": scenario,
        "events": len(events),
        "openai_us_per_event": round(theirs * per, 2),
        "deltaflow_us_per_event": round(ours * per, 2),
        "deltaflow_openai_events_only_us_per_event": round(openai_only * per, 2),
        "ratio": round(ours / theirs, 3),
        "ratio_openai_events_only": round(openai_only / theirs, 3),
    }
    print(
        f"{scenario:<28} {len(events):>6} events  openai {row['openai_us_per_event']:>7.2f} us  "
        f"deltaflow {row['deltaflow_us_per_event']:>7.2f} us ({row['ratio']:.3f}x)  "
        f"openai events only {row['deltaflow_openai_events_only_us_per_event']:>7.2f} us "
        f"({row['ratio_openai_events_only']:.3f}x)"
    )
    return row


def main() -> None:
    """Run every scenario and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, smaller answers")
    arguments = parser.parse_args()
    repeat = 3 if arguments.quick else 7
    rows = []
    for size in TEXT_SIZES[:2] if arguments.quick else TEXT_SIZES:
        text = ("The quick brown fox jumps over the lazy dog. " * (size // 45 + 1))[:size]
        rows.append(compare(f"text {size // 1000} KB", text_events(text), None, repeat))
    for items in DOCUMENT_ITEMS[:1] if arguments.quick else DOCUMENT_ITEMS:
        document = make_document(items)
        label = f"structured {len(document.encode()) // 1000} KB"
        rows.append(compare(label, text_events(document), Document, repeat))
    path = write_results("responses", {"goal_ratio": RATIO_GOAL, "rows": rows})
    print(f"written {path}")


if __name__ == "__main__":
    main()
