"""``sinks.fan_out``: every event to several sinks, each isolated from the others' failures and pace."""

from __future__ import annotations

import contextlib
import threading
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

import structlog
from reactivex import abc

from deltaflow.events import BaseEvent
from deltaflow.sinks._callback import callback
from deltaflow.sinks._redact import redact_text
from deltaflow.sinks._sink import Sink, sink_name

__all__ = ["FanOut", "Policy", "fan_out"]

Policy = Literal["block", "drop_oldest", "keep_latest"]
SinkLike = abc.ObserverBase[BaseEvent] | Callable[[BaseEvent], Any]

LOGGER_NAME = "deltaflow.sinks"


def fan_out(
    *sinks: SinkLike,
    policy: Policy = "block",
    maxsize: int = 1024,
    drain_timeout: float | None = None,
) -> FanOut:
    """A sink handing every event to each of ``sinks``, in order, isolating them from one another.

    A sink that raises is detached (it gets nothing more; its ``close()`` is called if it has one)
    and reported through structlog (logger ``deltaflow.sinks``, event ``sink_failed``, with the
    sink's ``name``, its ``position`` and the exception); the others go on. ``fan_out`` itself never
    raises, so a sink can never stop the stream. A plain function is taken as
    ``sinks.callback(function)``.

    ``policy`` says what happens when a sink is slower than the stream:

    - ``block`` (default): each sink gets each event synchronously, in the stream's thread; the
      stream waits for the slowest, nothing is lost.
    - ``drop_oldest``: each sink gets a queue of ``maxsize`` events drained by a thread of its own;
      when full, the oldest queued delta or chunk is dropped.
    - ``keep_latest``: as ``drop_oldest`` with a queue that keeps only the newest delta or chunk: a
      sink that reads snapshots (a UI) always gets the latest state.

    Only ``chunk`` and ``*.delta`` events are ever dropped: milestones (``*.done``, ``usage``,
    ``error``, ``completion.done``) always arrive, in order, so a queue may briefly exceed
    ``maxsize`` by the milestones waiting in it. A sink that concatenates deltas needs ``block``;
    under the dropping policies read snapshots. ``dropped`` counts what each sink missed.

    Queued sinks run on threads, not asyncio tasks, because a sink's ``on_next`` is synchronous: on
    a task a slow sink would stall the event loop as much as the stream. Each sink gets its own copy
    of each event, so lazy fields are computed independently per thread. The end of the stream
    (``on_completed`` / ``on_error``) drains deterministically: it returns once every queued sink
    has handled what its queue kept and then its own end, waiting at most ``drain_timeout`` seconds
    per sink (None: as long as it takes; on an event loop that wait blocks the loop). ``close()``
    discards instead: queued events are dropped, the threads stop, sinks are closed.

    Different policies for different sinks compose by nesting: ``fan_out(log, jsonl,
    fan_out(ui, policy="keep_latest"))``.

    Args:
        *sinks: Rx observers of events (deltaflow's sinks or any ``ObserverBase``) or functions.
        policy: ``block``, ``drop_oldest`` or ``keep_latest``.
        maxsize: the queue bound per sink under ``drop_oldest``.
        drain_timeout: the most seconds to wait for each queued sink at the end.

    Returns:
        The fan-out, itself a sink.

    Example::

        sink = sinks.fan_out(sinks.log(logger), sinks.jsonl("run.jsonl"), sinks.metrics())
        deltaflow.from_chunks(chunks).pipe(ops.to_events()).subscribe(sink)
    """
    return FanOut(*sinks, policy=policy, maxsize=maxsize, drain_timeout=drain_timeout)


def _droppable(event: object) -> bool:
    kind = getattr(event, "type", "")
    return kind == "chunk" or kind.endswith(".delta")


class _Branch:
    """One sink behind the fan-out, called synchronously."""

    def __init__(self, sink: abc.ObserverBase[BaseEvent], position: int) -> None:
        self.sink = sink
        self.name = sink_name(sink)
        self.position = position
        self.alive = True
        self.failed = False
        self.dropped = 0
        # what the fan-out calls per event: the sink itself here, a queue in _QueuedBranch
        self.push: Callable[[BaseEvent], None] = sink.on_next

    def signal_end(self, error: Exception | None) -> None:
        if not self.alive:
            return
        self.alive = False
        if error is None:
            self.call("on_completed", self.sink.on_completed)
        else:
            self.call("on_error", self.sink.on_error, error)

    def wait(self, timeout: float | None) -> None:
        """Synchronous delivery has nothing in flight."""

    def close(self, timeout: float | None) -> None:
        self.alive = False
        self.close_sink()

    def call(self, stage: str, method: Callable[..., Any], *args: Any) -> bool:
        try:
            method(*args)
        except Exception as exc:  # noqa: BLE001 - isolating sinks from one another is the point
            self.detach(stage, exc)
            return False
        return True

    def detach(self, stage: str, error: Exception) -> None:
        self.alive = False
        _report("sink_failed", self, stage=stage, error=error)
        if stage == "on_next":
            self.close_sink()

    def close_sink(self) -> None:
        close = getattr(self.sink, "close", None)
        if callable(close):
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - a sink failing to close must not stop the others
                _report("sink_failed", self, stage="close", error=exc)


class _QueuedBranch(_Branch):
    """One sink behind a bounded queue, called from a thread of its own."""

    def __init__(
        self, sink: abc.ObserverBase[BaseEvent], position: int, policy: Policy, maxsize: int
    ) -> None:
        super().__init__(sink, position)
        self._latest_only = policy == "keep_latest"
        self._maxsize = maxsize
        self._queue: deque[BaseEvent] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._end: tuple[Exception | None] | None = None
        self._discard = False
        self._thread: threading.Thread | None = None
        self.push = self._enqueue

    def _enqueue(self, event: BaseEvent) -> None:
        # a copy per thread: a lazy field is popped from the event that computes it, and two threads
        # computing the same event's field at once could each see it missing
        copy = event.evolve() if isinstance(event, BaseEvent) else event
        with self._ready:
            if not self.alive or self._end is not None:
                return
            queue = self._queue
            idle = not queue
            if _droppable(copy):
                if self._latest_only:
                    self._drop_deltas()
                elif len(queue) >= self._maxsize:
                    self._drop_oldest_delta()
            queue.append(copy)
            if idle:
                # the worker only ever waits on an empty queue: waking it otherwise is wasted work
                self._ready.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"deltaflow-sink-{self.name}", daemon=True)
            self._thread.start()

    def signal_end(self, error: Exception | None) -> None:
        with self._ready:
            if self._end is not None:
                return
            self._end = (error,)
            self._ready.notify()
        if self._thread is None and self.alive:
            # nothing was ever queued: end the sink here rather than start a thread for it
            super().signal_end(error)

    def wait(self, timeout: float | None) -> None:
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        thread.join(timeout)
        if thread.is_alive():
            _report("sink_drain_timeout", self, level="warning", queued=len(self._queue), timeout=timeout)

    def close(self, timeout: float | None) -> None:
        with self._ready:
            self._discard = True
            self.dropped += len(self._queue)
            self._queue.clear()
            self._ready.notify()
        # the worker may be inside the sink's on_next: let that call finish before closing the sink
        self.wait(timeout)
        super().close(timeout)

    def _drop_deltas(self) -> None:
        queue = self._queue
        # milestones are rare: the queue holds them and at most one delta, so this stays short
        for _ in range(len(queue)):
            event = queue.popleft()
            if _droppable(event):
                self.dropped += 1
            else:
                queue.append(event)

    def _drop_oldest_delta(self) -> None:
        for position, event in enumerate(self._queue):
            if _droppable(event):
                del self._queue[position]
                self.dropped += 1
                return

    def _run(self) -> None:
        while True:
            with self._ready:
                while not self._queue and self._end is None and not self._discard:
                    self._ready.wait()
                if self._discard or not self.alive:
                    return
                if not self._queue:
                    end = self._end
                    break
                event = self._queue.popleft()
            if not self.call("on_next", self.sink.on_next, event):
                return
        if end is not None:
            super().signal_end(end[0])


class FanOut(Sink):
    """The sink ``sinks.fan_out(...)`` builds; see there."""

    name = "fan_out"

    def __init__(
        self,
        *sinks: SinkLike,
        policy: Policy = "block",
        maxsize: int = 1024,
        drain_timeout: float | None = None,
    ) -> None:
        if policy not in {"block", "drop_oldest", "keep_latest"}:
            raise ValueError(f"policy must be 'block', 'drop_oldest' or 'keep_latest', got {policy!r}")
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        observers = [_as_observer(sink) for sink in sinks]
        self._branches: list[_Branch] = [
            _Branch(sink, position) if policy == "block" else _QueuedBranch(sink, position, policy, maxsize)
            for position, sink in enumerate(observers)
        ]
        self._drain_timeout = drain_timeout
        self._ended = False

    @property
    def failed(self) -> tuple[str, ...]:
        """The names of the sinks detached because they raised."""
        return tuple(branch.name for branch in self._branches if branch.failed)

    @property
    def dropped(self) -> tuple[int, ...]:
        """How many events each sink missed under a dropping policy, in the order given."""
        return tuple(branch.dropped for branch in self._branches)

    def on_next(self, value: BaseEvent) -> None:
        """Hand ``value`` to every sink still attached; never raises."""
        if self._ended:
            return
        for branch in self._branches:
            if branch.alive:
                try:
                    branch.push(value)
                except Exception as exc:  # noqa: BLE001 - isolating sinks from one another is the point
                    branch.detach("on_next", exc)

    def on_completed(self) -> None:
        """End every sink; returns once queued sinks have drained."""
        self._end(None)

    def on_error(self, error: Exception) -> None:
        """Pass the stream's error to every sink; returns once queued sinks have drained."""
        self._end(error)

    def close(self) -> None:
        """Abandon the stream: discard queued events, stop the threads, close the sinks.

        A queued sink busy with an event finishes it first (waiting at most ``drain_timeout``).
        """
        if self._ended:
            return
        self._ended = True
        for branch in self._branches:
            branch.close(self._drain_timeout)

    def _end(self, error: Exception | None) -> None:
        if self._ended:
            return
        self._ended = True
        for branch in self._branches:
            branch.signal_end(error)
        for branch in self._branches:
            branch.wait(self._drain_timeout)


def _as_observer(sink: SinkLike) -> abc.ObserverBase[BaseEvent]:
    if isinstance(sink, abc.ObserverBase):
        return sink
    if callable(sink):
        return callback(sink)
    raise TypeError(f"a sink must be an Rx observer or a function, got {type(sink).__name__}")


def _report(
    event: str, branch: _Branch, *, level: str = "error", error: Exception | None = None, **fields: Any
) -> None:
    if error is not None:
        branch.failed = True
        fields["error"] = redact_text(f"{type(error).__name__}: {error}")
        # the traceback, scrubbed: a raw exc_info would be rendered by the user's processors unscrubbed
        fields["traceback"] = redact_text("".join(traceback.format_exception(error)))
    # a broken logging setup must not turn a sink's failure into the stream's
    with contextlib.suppress(Exception):
        getattr(structlog.get_logger(LOGGER_NAME), level)(
            event, logger=LOGGER_NAME, sink=branch.name, position=branch.position, **fields
        )
