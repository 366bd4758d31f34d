"""Figures from the benchmark results: ``python -m benchmarks.plot``.

``structured_output.png``: CPU cost per chunk against document size (log-log) for deltaflow's
``ChatStream`` (events iterated; ``parsed`` read on every delta), openai's stream helper, and
re-parsing the accumulated text with jiter and with partial-json-parser on every delta.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")  # files only: no display needed

import matplotlib.pyplot as plt

from benchmarks._common import RESULTS

# (key in a structured_output row, label, colour, marker, line style, end label offset in points):
# openai and jiter end close together, so their labels go above and below their points
_SERIES = (
    ("openai_us_per_chunk", "openai ChatCompletionStreamState.handle_chunk", "#d62728", "s", "-", (8, 3)),
    (
        "partial_json_parser_us_per_delta",
        "partial-json-parser re-parse per delta",
        "#9467bd",
        "v",
        ":",
        (8, -4),
    ),
    ("jiter_reparse_us_per_delta", "jiter partial re-parse per delta", "#ff7f0e", "^", ":", (8, -12)),
    (
        "deltaflow_parsed_us_per_chunk",
        "deltaflow ChatStream, (b) .parsed read on every delta",
        "#1f77b4",
        "o",
        "-",
        (8, 0),
    ),
    (
        "deltaflow_events_us_per_chunk",
        "deltaflow ChatStream, (a) events iterated",
        "#2ca02c",
        "D",
        "-",
        (8, -8),
    ),
)


def plot_structured_output(results: Path | None = None, output: Path | None = None) -> Path:
    """Draw ``structured_output.png`` from ``structured_output.json``; returns the PNG's path.

    Args:
        results: the JSON written by ``bench_structured_output`` (default: in ``benchmarks/results``).
        output: where to write the PNG (default: next to the JSON).
    """
    source = results or RESULTS / "structured_output.json"
    data: dict[str, Any] = json.loads(source.read_text(encoding="utf-8"))
    rows = sorted(data["rows"], key=lambda row: row["size_bytes"])
    sizes = [row["size_bytes"] / 1000 for row in rows]
    figure, axes = plt.subplots(figsize=(9, 5.8), dpi=120)
    for key, label, colour, marker, style, offset in _SERIES:
        values = [row[key] for row in rows]
        axes.plot(sizes, values, marker=marker, linestyle=style, color=colour, label=label, linewidth=2)
        axes.annotate(
            f"{values[-1]:,.1f}" if values[-1] < 1000 else f"{values[-1]:,.0f}",
            (sizes[-1], values[-1]),
            textcoords="offset points",
            xytext=offset,
            fontsize=8,
            color=colour,
        )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xticks(sizes, [f"{size:,.0f} KB" for size in sizes])
    axes.minorticks_off()
    axes.set_xlim(sizes[0] / 1.3, sizes[-1] * 1.6)
    axes.set_xlabel("structured content streamed (4-character deltas)")
    axes.set_ylabel("CPU µs per chunk (log scale)")
    axes.set_title("Structured output: cost per chunk as the document grows")
    axes.grid(True, which="major", alpha=0.3)
    axes.legend(loc="upper left", fontsize=8.5, framealpha=0.9)
    note = "openai: sampled across the whole stream; re-parse rows: sampled above 30 KB"
    figure.text(0.01, 0.01, note, fontsize=7.5, color="#555555")
    figure.tight_layout(rect=(0, 0.03, 1, 1))
    target = output or source.with_suffix(".png")
    figure.savefig(target)
    plt.close(figure)
    return target


def main() -> None:
    """Draw every figure whose results exist."""
    if (RESULTS / "structured_output.json").exists():
        print(f"written {plot_structured_output()}")


if __name__ == "__main__":
    main()
