"""The one list of ``deltaflow`` subcommands: add a command here and it is parsed, documented and run."""

from __future__ import annotations

from ._command import Command
from ._demo import DEMO
from ._live import CHAT, RECORD
from ._replay import REPLAY
from ._serve import SERVE

__all__ = ["COMMANDS"]

COMMANDS: tuple[Command, ...] = (DEMO, CHAT, RECORD, REPLAY, SERVE)
