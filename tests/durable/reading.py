"""Reading a relay in a background thread, so a test can act (stop, kill) while events arrive."""

from __future__ import annotations

import threading
from typing import Any

from deltaflow.recipes import relay_events


class BackgroundReader:
    """``relay_events(url)`` read in a thread: ``events`` so far, ``failure`` if it raised, ``some`` set after
    ``enough`` events or at the end."""

    def __init__(self, url: str, *, enough: int) -> None:
        self.events: list[Any] = []
        self.failure: BaseException | None = None
        self.some = threading.Event()
        self._url = url
        self._enough = enough
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for event in relay_events(self._url):
                self.events.append(event)
                if len(self.events) >= self._enough:
                    self.some.set()
        except BaseException as error:  # kept for the test to look at
            self.failure = error
        self.some.set()

    def join(self, timeout: float) -> None:
        """Wait for the end of the stream; fails the test if it does not come in time."""
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"the reader of {self._url} did not finish within {timeout:g} s"
