"""``deltaflow relay``: the durable relay command, which lives with the durable package."""

from __future__ import annotations

from deltaflow.durable import _command as durable

from ._command import Command

__all__ = ["RELAY"]

RELAY = Command("relay", durable.relay, durable.configure)
