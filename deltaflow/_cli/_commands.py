"""The one list of ``deltaflow`` subcommands: add a command here and it is parsed, documented and run."""

from __future__ import annotations

from deltaflow.durable import _command as durable

from ._command import Command
from ._demo import DEMO
from ._live import CHAT, RECORD
from ._replay import REPLAY
from ._serve import SERVE

RELAY = Command("relay", durable.relay, durable.configure)

__all__ = ["COMMANDS"]

COMMANDS: tuple[Command, ...] = (DEMO, CHAT, RECORD, REPLAY, SERVE, RELAY)
