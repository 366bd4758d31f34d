"""Run every ``benchmarks/bench_*.py`` in turn: ``python -m benchmarks.run``."""

from __future__ import annotations

import importlib
from pathlib import Path


def main() -> None:
    """Import each benchmark module and call its ``main()``."""
    for path in sorted(Path(__file__).resolve().parent.glob("bench_*.py")):
        print(f"\n# {path.stem}\n", flush=True)
        importlib.import_module(f"benchmarks.{path.stem}").main()


if __name__ == "__main__":
    main()
