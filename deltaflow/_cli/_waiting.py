"""A line on stderr when the answer keeps the terminal waiting: what is awaited, and for how long."""

from __future__ import annotations

import sys
import threading
import time

from deltaflow.events import BaseEvent
from deltaflow.sinks import Sink

__all__ = ["NOTICE_AFTER", "WaitNotice"]

NOTICE_AFTER = 5.0
"""Seconds without an event before the command says what it is waiting for."""


class WaitNotice(Sink):
    """Says once per stall, on stderr, what the stream waits for and when it gives up.

    A watcher thread looks at the time of the last event; any event ends the stall. The line names
    the host and the idle timeout, so a user knows whether to wait (a reasoning model thinking) or to
    stop it.
    """

    name = "waiting"

    def __init__(self, where: str, idle_timeout: float, *, after: float = NOTICE_AFTER) -> None:
        self._where = where
        self._idle_timeout = idle_timeout
        self._after = after
        self._last = time.monotonic()
        self._started = False
        self._told = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="deltaflow-wait-notice", daemon=True)
        self._thread.start()

    def on_next(self, value: BaseEvent) -> None:
        """An event arrived: the stream is moving."""
        self._last = time.monotonic()
        self._started = True
        self._told = False

    def close(self) -> None:
        """Stop watching (idempotent)."""
        self._stop.set()

    def _watch(self) -> None:
        while not self._stop.wait(min(0.5, self._after)):
            waited = time.monotonic() - self._last
            if self._told or waited < self._after:
                continue
            self._told = True
            what = "the next chunk" if self._started else "the first chunk"
            print(
                f"deltaflow: waiting for {what} from {self._where} ({waited:.0f} s so far; "
                f"gives up after {self._idle_timeout:g} s without one, see --idle-timeout)",
                file=sys.stderr,
                flush=True,
            )
