"""``deltaflow demo``: the scripted session of ``deltaflow._demo``."""

from __future__ import annotations

import argparse

from ._command import Command

__all__ = ["DEMO"]


def demo(arguments: argparse.Namespace) -> int:
    """Stream scripted answers from the embedded replay server: no key, no network."""
    from deltaflow._demo import run_demo  # noqa: PLC0415 - imported only when the demo runs

    return run_demo(fast=arguments.fast)


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fast", action="store_true", help="no pacing (for tests)")


DEMO = Command("demo", demo, _configure)
