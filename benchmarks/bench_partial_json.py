"""Per-delta cost of incremental partial-JSON parsing versus re-parsing the accumulated text.

Run: ``.venv/bin/python benchmarks/bench_partial_json.py [--quick]``

Each document is streamed in 4-character deltas. Measured per delta (CPU time, process_time):

(a) ``IncrementalJsonParser.feed`` only;
(b) ``feed`` + ``value()`` after every delta;
(c) ``jiter.from_json(prefix, partial_mode=True)`` after every delta (what openai-python does);
(d) ``partial_json_parser.loads(prefix)`` after every delta.

(c) and (d) are quadratic over a stream: for the larger documents only a fixed number of evenly
spaced deltas is timed, and the per-delta cost is taken from that sample (marked "sampled").
Results are printed and written to ``benchmarks/results/partial_json.json``.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

import jiter
import partial_json_parser

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from deltaflow.partial_json import IncrementalJsonParser  # after the path fix-up

DELTA = 4
SAMPLE = 300  # deltas timed for jiter re-parsing on large documents
PJP_SAMPLE = 60  # partial_json_parser is ~100x slower than jiter: fewer samples keep the run short
FULL_BELOW = 30_000  # documents smaller than this are re-parsed at every delta
RESULTS = Path(__file__).resolve().parent / "results" / "partial_json.json"


def make_document(items: int, seed: int = 7) -> str:
    rnd = random.Random(seed)
    words = ["alpha", "beta", "gamma", "delta", "épsilon", "zeta", "eta", "θήτα", "iota", "kappa"]
    doc: dict[str, Any] = {
        "items": [
            {
                "id": i,
                "name": f"item {i} " + " ".join(rnd.choices(words, k=3)),
                "tags": rnd.choices(words, k=rnd.randint(1, 4)),
                "score": round(rnd.uniform(-1000, 1000), 3),
                "active": rnd.random() < 0.5,
                "ratio": rnd.random() * 1e-3,
                "nested": {"x": rnd.randint(0, 10**6), "y": [rnd.random() for _ in range(2)], "note": None},
                "text": 'line one\nline "two" \\ tab\t' + rnd.choice(words),
            }
            for i in range(items)
        ]
    }
    return json.dumps(doc, ensure_ascii=False)


def deltas_of(doc: str) -> list[str]:
    return [doc[i : i + DELTA] for i in range(0, len(doc), DELTA)]


def bench_feed(deltas: list[str], with_value: bool, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        parser = IncrementalJsonParser()
        feed = parser.feed
        start = time.process_time()
        if with_value:
            value = parser.value
            for delta in deltas:
                feed(delta)
                value()
        else:
            for delta in deltas:
                feed(delta)
        best = min(best, time.process_time() - start)
    return best / len(deltas) * 1e6


def bench_reparse(doc: str, deltas: list[str], parse: Any, sample: int) -> tuple[float, bool]:
    ends = []
    total = 0
    for delta in deltas:
        total += len(delta)
        ends.append(total)
    sampled = len(doc) >= FULL_BELOW
    if sampled:
        step = len(ends) / sample
        ends = [ends[int(k * step)] for k in range(sample)]
    prefixes = [doc[:end] for end in ends]
    start = time.process_time()
    for prefix in prefixes:
        try:
            parse(prefix)
        except Exception:
            pass
    return (time.process_time() - start) / len(prefixes) * 1e6, sampled


def jiter_parse(prefix: str) -> Any:
    return jiter.from_json(prefix.encode(), partial_mode=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one repetition, smaller sample")
    args = ap.parse_args()
    repeat = 1 if args.quick else 3
    rows = []
    for items in (78, 260, 785, 2350):  # about 22 KB, 74 KB, 224 KB, 670 KB
        doc = make_document(items)
        deltas = deltas_of(doc)
        # Sanity: the incremental parser agrees with jiter on the whole document.
        parser = IncrementalJsonParser()
        for delta in deltas:
            parser.feed(delta)
        assert parser.finish() == jiter.from_json(doc.encode())
        a = bench_feed(deltas, False, repeat)
        b = bench_feed(deltas, True, repeat)
        c, c_sampled = bench_reparse(doc, deltas, jiter_parse, SAMPLE)
        d, d_sampled = bench_reparse(doc, deltas, partial_json_parser.loads, PJP_SAMPLE)
        rows.append(
            {
                "size_bytes": len(doc.encode()),
                "deltas": len(deltas),
                "feed_us": round(a, 3),
                "feed_value_us": round(b, 3),
                "jiter_us": round(c, 3),
                "jiter_sampled": c_sampled,
                "partial_json_parser_us": round(d, 3),
                "partial_json_parser_sampled": d_sampled,
                "jiter_over_feed": round(c / a, 1),
                "jiter_over_feed_value": round(c / b, 1),
            }
        )
    print(f"per-delta CPU time in µs, {DELTA}-character deltas (best of {repeat} for a/b)")
    header = (
        f"{'size':>9} {'deltas':>7} {'(a) feed':>9} {'(b) +value':>11} {'(c) jiter':>10} "
        f"{'(d) pjp':>10} {'c/a':>7} {'c/b':>7}"
    )
    print(header)
    for row in rows:
        mark_c = "*" if row["jiter_sampled"] else " "
        mark_d = "*" if row["partial_json_parser_sampled"] else " "
        print(
            f"{row['size_bytes'] / 1000:>7.0f}kB {row['deltas']:>7} {row['feed_us']:>9.2f} "
            f"{row['feed_value_us']:>11.2f} {row['jiter_us']:>9.1f}{mark_c} {row['partial_json_parser_us']:>9.0f}{mark_d} "
            f"{row['jiter_over_feed']:>6.0f}x {row['jiter_over_feed_value']:>6.0f}x"
        )
    print(
        f"* sampled: {SAMPLE} (jiter) / {PJP_SAMPLE} (partial_json_parser) evenly spaced deltas timed,"
        " since re-parsing at every delta is quadratic"
    )
    flat_a = rows[-1]["feed_us"] / rows[0]["feed_us"]
    flat_b = rows[-1]["feed_value_us"] / rows[0]["feed_value_us"]
    print(f"flatness (largest / smallest per-delta cost): (a) {flat_a:.2f}x  (b) {flat_b:.2f}x")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "delta_chars": DELTA,
                "sample_deltas_jiter": SAMPLE,
                "sample_deltas_partial_json_parser": PJP_SAMPLE,
                "python": sys.version.split()[0],
                "rows": rows,
                "flatness_feed": round(flat_a, 3),
                "flatness_feed_value": round(flat_b, 3),
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written {RESULTS.relative_to(Path.cwd()) if RESULTS.is_relative_to(Path.cwd()) else RESULTS}")


if __name__ == "__main__":
    main()
