"""The one list of ``deltaflow`` subcommands: add a command here and it is parsed, documented and run.

Each entry names the module holding the command and its summary, so that ``deltaflow --help`` lists
every command without importing any (the relay's module alone brings openai, pydantic and starlette):
a command's module loads only when that command runs. ``tests/test_cli_first_use.py`` holds each
summary to the first line of the command's docstring.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from ._command import Command

__all__ = ["COMMANDS", "Listed"]


@dataclass(frozen=True, slots=True)
class Listed:
    """A subcommand as ``--help`` lists it, and where it lives.

    Attributes:
        name: what the user types.
        summary: the first line of the command's docstring.
        where: ``module:ATTRIBUTE`` of its ``Command``.
    """

    name: str
    summary: str
    where: str

    def load(self) -> Command:
        """Import the command's module and return its ``Command``."""
        module, _, attribute = self.where.partition(":")
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, Command)  # noqa: S101 - a wrong entry here is a bug of ours
        return command


COMMANDS: tuple[Listed, ...] = (
    Listed(
        "demo",
        "Stream scripted answers from the embedded replay server: no key, no network.",
        "deltaflow._cli._demo:DEMO",
    ),
    Listed("chat", "Stream one answer from a provider to the terminal.", "deltaflow._cli._live:CHAT"),
    Listed(
        "record",
        "Stream one answer to the terminal and save its raw chunks as JSONL.",
        "deltaflow._cli._live:RECORD",
    ),
    Listed(
        "replay",
        "Run a recording (SSE or JSONL) through the pipeline and print events, text or logs.",
        "deltaflow._cli._replay:REPLAY",
    ),
    Listed(
        "serve",
        "Serve recordings (by default deltaflow's samples) as an OpenAI-compatible endpoint on loopback.",
        "deltaflow._cli._serve:SERVE",
    ),
    Listed(
        "relay",
        "Serve a durable relay (browser page at /chat/); instances sharing --redis share streams.",
        "deltaflow._cli._relay:RELAY",
    ),
)
