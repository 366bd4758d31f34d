"""What the server received and how each answer went, shared between the server and test threads."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._fault import Fault

__all__ = ["RecordedRequest", "RequestJournal"]


@dataclass(eq=False)
class RecordedRequest:
    """One request as received, updated by the server while it answers.

    Times are ``time.monotonic()`` readings, comparable with the caller's own.

    Attributes:
        method: the HTTP method.
        path: the URL path.
        headers: header names lower-cased, values as received (``authorization`` included).
        body: the parsed JSON body, or None when it was not JSON.
        started_at: when the request reached the app.
        status: the HTTP status answered.
        fault: the fault in effect (the scenario's, or the ``X-Replay-Fault`` header's).
        events_sent: how many of the scenario's events went out (injected ones not counted).
        disconnected: the client went away before the response was complete.
        disconnected_at: when the server noticed that, else None.
        finished_at: when the server was done with the request, else None.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    started_at: float
    status: int = 200
    fault: Fault | None = None
    events_sent: int = 0
    disconnected: bool = False
    disconnected_at: float | None = None
    finished_at: float | None = None
    _finished: threading.Event = field(default_factory=threading.Event, init=False, repr=False)

    def wait(self, timeout: float = 5.0) -> bool:
        """Block until the server is done with this request; False if ``timeout`` passed first."""
        return self._finished.wait(timeout)


class RequestJournal:
    """The records of one server, appended and updated on its thread, read and awaited on others."""

    def __init__(self) -> None:
        self._records: list[RecordedRequest] = []
        self._changed = threading.Condition()

    @property
    def records(self) -> list[RecordedRequest]:
        """A snapshot of the records so far, oldest first."""
        with self._changed:
            return list(self._records)

    def add(self, record: RecordedRequest) -> RecordedRequest:
        """Append a new record."""
        with self._changed:
            self._records.append(record)
            self._changed.notify_all()
        return record

    def mark_disconnected(self, record: RecordedRequest) -> None:
        """The client went away early: timestamp it now."""
        with self._changed:
            record.disconnected_at = time.monotonic()
            record.disconnected = True
            self._changed.notify_all()

    def finish(self, record: RecordedRequest) -> None:
        """The server is done with ``record``."""
        with self._changed:
            record.finished_at = time.monotonic()
            record._finished.set()
            self._changed.notify_all()

    def wait_until(self, condition: Callable[[list[RecordedRequest]], bool], timeout: float) -> bool:
        """Block until ``condition(records)`` holds, re-checked on every change; False after ``timeout``."""
        with self._changed:
            return self._changed.wait_for(lambda: condition(self._records), timeout)
