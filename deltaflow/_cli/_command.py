"""What a subcommand is: a name, its options and what it runs."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Command"]


@dataclass(frozen=True, slots=True)
class Command:
    """One ``deltaflow`` subcommand.

    Attributes:
        name: what the user types.
        run: runs the command; its docstring's first line is the summary in ``--help``. It returns the
            exit status or raises (the caller prints one line).
        configure: adds the command's arguments to its parser.
        epilog: more help, shown verbatim after the options.
    """

    name: str
    run: Callable[[argparse.Namespace], int]
    configure: Callable[[argparse.ArgumentParser], None]
    epilog: str | None = None

    @property
    def summary(self) -> str:
        """The first line of ``run``'s docstring."""
        return (self.run.__doc__ or "").strip().splitlines()[0]
