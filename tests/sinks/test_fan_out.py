"""sinks.fan_out: every event to every sink in order, failures isolated, slow sinks behind a policy."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from reactivex import Observer
from structlog.testing import capture_logs

import deltaflow
from deltaflow import AsyncChatStream, ChatStream, sinks
from deltaflow import operators as ops
from deltaflow.events import BaseEvent
from tests.chunks import text_stream

TYPES_MILESTONES = ("content.done", "choice.done", "usage", "completion.done")


class Recorder(sinks.Sink):
    """Keeps what it receives; optionally raises on the n-th event or waits at a gate on the first."""

    def __init__(self, name: str, fail_at: int | None = None, gate: threading.Event | None = None) -> None:
        self.name = name
        self.events: list[BaseEvent] = []
        self.ends: list[Any] = []
        self.closed = 0
        self.threads: set[str] = set()
        self._fail_at = fail_at
        self._gate = gate
        self.entered = threading.Event()

    def on_next(self, value: BaseEvent) -> None:
        self.threads.add(threading.current_thread().name)
        self.entered.set()
        if self._gate is not None:
            assert self._gate.wait(10), "the test never opened the gate"
        self.events.append(value)
        if self._fail_at is not None and len(self.events) == self._fail_at:
            raise RuntimeError(f"{self.name} broke")

    def on_completed(self) -> None:
        self.ends.append("completed")

    def on_error(self, error: Exception) -> None:
        self.ends.append(error)

    def close(self) -> None:
        self.closed += 1


def _events(words: int = 40) -> list[BaseEvent]:
    return list(ChatStream(text_stream(*(f" w{number}" for number in range(words)))))


def _is_subsequence(part: list[BaseEvent], whole: list[BaseEvent]) -> bool:
    remaining = iter(whole)
    return all(any(item == candidate for candidate in remaining) for item in part)


class TestBlock:
    def test_every_sink_every_event_in_order(self) -> None:
        """Three sinks on a ChatStream each get exactly the stream's events, in order, then the end."""
        recorders = [Recorder(f"r{number}") for number in range(3)]
        stream: ChatStream[object] = ChatStream(text_stream("a", "b", "c")).subscribe(
            sinks.fan_out(*recorders)
        )
        emitted = list(stream)
        for recorder in recorders:
            assert [id(event) for event in recorder.events] == [id(event) for event in emitted]
            assert recorder.ends == ["completed"]

    def test_raising_sink_detached_others_unaffected(self) -> None:
        """A sink raising on its 3rd event is detached and reported; the others and the stream go on."""
        first, broken, last = Recorder("first"), Recorder("broken", fail_at=3), Recorder("last")
        fan = sinks.fan_out(first, broken, last)
        stream: ChatStream[object] = ChatStream(text_stream("a", "b", "c")).subscribe(fan)
        with capture_logs() as records, stream:
            emitted = list(stream)
            completion = stream.get_final_completion()
        assert completion.choices[0].message.content == "abc"
        assert len(first.events) == len(last.events) == len(emitted)
        assert len(broken.events) == 3
        assert broken.ends == []
        assert broken.closed == 1
        assert first.ends == last.ends == ["completed"]
        assert fan.failed == ("broken",)
        [report] = records
        assert report["event"] == "sink_failed"
        assert report["logger"] == "deltaflow.sinks"
        assert report["log_level"] == "error"
        assert report["sink"] == "broken"
        assert report["position"] == 1
        assert report["stage"] == "on_next"
        assert report["error"] == "RuntimeError: broken broke"
        assert "exc_info" not in report
        assert "RuntimeError: broken broke" in report["traceback"]

    def test_failing_end_and_close_reported_not_raised(self) -> None:
        """A sink raising in on_completed or close is reported; fan_out's own calls never raise."""

        class BadEnd(Recorder):
            def on_completed(self) -> None:
                raise ValueError("cannot complete")

            def close(self) -> None:
                raise ValueError("cannot close")

        good = Recorder("good")
        fan = sinks.fan_out(BadEnd("bad-end"), good)
        with capture_logs() as records:
            for event in _events(3):
                fan.on_next(event)
            fan.on_completed()
        assert good.ends == ["completed"]
        assert [(record["sink"], record["stage"]) for record in records] == [("bad-end", "on_completed")]

        failing_close = sinks.fan_out(BadEnd("bad-close"), Recorder("other"))
        with capture_logs() as records:
            failing_close.close()
        assert [(record["sink"], record["stage"]) for record in records] == [("bad-close", "close")]

    def test_error_passed_to_every_sink(self) -> None:
        """on_error reaches every attached sink."""
        recorders = [Recorder("a"), Recorder("b")]
        fan = sinks.fan_out(*recorders)
        error = RuntimeError("upstream")
        fan.on_error(error)
        assert [recorder.ends for recorder in recorders] == [[error], [error]]

    def test_rx_observable_subscribe(self) -> None:
        """fan_out is an Rx observer: observable.subscribe(sink) works, functions are callback sinks."""
        seen: list[str] = []
        recorder = Recorder("rx")
        source = deltaflow.from_chunks(text_stream("x", "y")).pipe(ops.to_events())
        source.subscribe(sinks.fan_out(recorder, lambda event: seen.append(event.type)))
        assert seen == [event.type for event in recorder.events]
        assert seen[-1] == "completion.done"
        assert recorder.ends == ["completed"]

    def test_accepts_plain_reactivex_observers(self) -> None:
        """Any ObserverBase works as a sink, a reactivex Observer included."""
        seen: list[BaseEvent] = []
        completed: list[bool] = []
        fan = sinks.fan_out(Observer(seen.append, on_completed=lambda: completed.append(True)))
        ChatStream(text_stream("a")).subscribe(fan).until_done()
        assert seen[-1].type == "completion.done"
        assert completed == [True]

    def test_rejects_what_is_not_a_sink(self) -> None:
        """Something neither an observer nor callable is refused when the fan-out is built."""
        with pytest.raises(TypeError, match="Rx observer or a function"):
            sinks.fan_out(42)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="policy"):
            sinks.fan_out(policy="drop_newest")  # type: ignore[arg-type]


class TestQueued:
    def test_drop_oldest_keeps_milestones_and_the_newest_deltas(self) -> None:
        """A slow sink behind drop_oldest gets the first event, the newest deltas and every milestone."""
        events = _events()
        gate = threading.Event()
        slow, fast = Recorder("slow", gate=gate), Recorder("fast")
        fan = sinks.fan_out(fast, sinks.fan_out(slow, policy="drop_oldest", maxsize=3))
        fan.on_next(events[0])
        assert slow.entered.wait(5)
        for event in events[1:]:
            fan.on_next(event)
        # the stream got through every event while the slow sink was still on its first one
        assert len(fast.events) == len(events)
        assert slow.events == []
        gate.set()
        fan.on_completed()
        assert slow.ends == ["completed"]
        assert slow.threads == {"deltaflow-sink-slow"}
        assert _is_subsequence(slow.events, events)
        assert slow.events[0] == events[0]
        droppable = [event for event in slow.events[1:] if event.type in {"chunk", "content.delta"}]
        expected_tail = [event for event in events if event.type in {"chunk", "content.delta"}][-3:]
        assert droppable == expected_tail
        assert [event.type for event in slow.events if event.type in TYPES_MILESTONES] == list(
            TYPES_MILESTONES
        )
        inner = fan._branches[1].sink
        assert isinstance(inner, sinks.FanOut)
        assert inner.dropped == (len(events) - len(slow.events),)

    def test_keep_latest_keeps_only_the_newest_delta(self) -> None:
        """Behind keep_latest a slow sink gets the newest delta or chunk and every milestone, in order."""
        events = _events()
        gate = threading.Event()
        slow = Recorder("slow", gate=gate)
        fan = sinks.fan_out(slow, policy="keep_latest")
        fan.on_next(events[0])
        assert slow.entered.wait(5)
        for event in events[1:]:
            fan.on_next(event)
        gate.set()
        fan.on_completed()
        # after the first: content.done and choice.done (finish chunk), the usage chunk, usage, done
        assert [event.type for event in slow.events] == [
            "chunk",
            "content.done",
            "choice.done",
            "chunk",
            "usage",
            "completion.done",
        ]
        assert slow.events[3] == events[-3]
        assert fan.dropped == (len(events) - 6,)

    def test_completion_drains_deterministically(self) -> None:
        """on_completed returns only after a queued sink has handled everything kept, then its end."""
        events = _events(5)
        recorder = Recorder("steady")
        fan = sinks.fan_out(recorder, policy="drop_oldest", maxsize=1000)
        for event in events:
            fan.on_next(event)
        fan.on_completed()
        assert recorder.events == events
        assert recorder.ends == ["completed"]

    def test_close_discards_what_is_queued(self) -> None:
        """close() drops queued events, lets the event in progress finish, and closes the sink."""
        events = _events(5)
        gate = threading.Event()
        slow = Recorder("slow", gate=gate)
        fan = sinks.fan_out(slow, policy="drop_oldest")
        for event in events:
            fan.on_next(event)
        assert slow.entered.wait(5)
        closer = threading.Thread(target=fan.close)
        closer.start()
        while fan.dropped == (0,):  # close() has counted the discarded events: it is waiting now
            closer.join(0.001)
        gate.set()
        closer.join(5)
        assert slow.events == events[:1]
        assert slow.ends == []
        assert slow.closed == 1
        assert fan.dropped == (len(events) - 1,)

    def test_raising_queued_sink_reported_from_its_thread(self) -> None:
        """A queued sink that raises is detached and reported; on_next in the stream never raises."""
        broken, steady = Recorder("broken", fail_at=2), Recorder("steady")
        fan = sinks.fan_out(broken, steady, policy="keep_latest")
        with capture_logs() as records:
            ChatStream(text_stream("a", "b")).subscribe(fan).until_done()
        assert len(broken.events) == 2
        assert broken.ends == []
        assert steady.ends == ["completed"]
        assert steady.events[-1].type == "completion.done"
        assert [(record["event"], record["sink"]) for record in records] == [("sink_failed", "broken")]
        assert fan.failed == ("broken",)

    def test_each_thread_gets_its_own_copy(self) -> None:
        """Queued sinks get equal copies of the events, each computing lazy fields on its own."""
        first, second = Recorder("first"), Recorder("second")
        fan = sinks.fan_out(first, second, policy="drop_oldest", maxsize=10_000)
        emitted = list(ChatStream(text_stream("Hel", "lo")).subscribe(fan))
        assert first.events == second.events == emitted
        assert all(a is not b for a, b in zip(first.events, second.events, strict=True))
        assert [e.snapshot for e in first.events if e.type == "content.delta"] == ["", "Hel", "Hello"]


class TestAsync:
    async def test_async_chat_stream_with_queued_and_blocking_sinks(self) -> None:
        """On an event loop, AsyncChatStream feeds a fan-out whose queued sink drains before the end returns."""

        async def chunks() -> AsyncIterator[Any]:
            for item in text_stream("a", "b", "c"):
                yield item

        steady, queued = Recorder("steady"), Recorder("queued")
        meter = sinks.metrics()
        fan = sinks.fan_out(steady, meter, sinks.fan_out(queued, policy="drop_oldest"))
        stream: AsyncChatStream[object] = AsyncChatStream(chunks()).subscribe(fan)
        completion = await stream.get_final_completion()
        assert completion.choices[0].message.content == "abc"
        assert queued.events == steady.events
        assert queued.ends == steady.ends == ["completed"]
        assert meter.summary.chunks == len(text_stream("a", "b", "c"))


class TestThreadedReads:
    def test_queued_sink_reads_consistent_snapshots(self) -> None:
        """A sink on fan_out's thread reads each delta's snapshot while the stream goes on: always right."""
        import sys  # noqa: PLC0415

        parts = [f"w{number} " for number in range(3000)]
        final = "".join(parts)
        wrong: list[str] = []

        def check(event) -> None:
            if event.type == "content.delta" and event.delta:
                snapshot = event.snapshot
                if not (final.startswith(snapshot) and snapshot.endswith(event.delta)):
                    wrong.append(snapshot[-20:])

        previous = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)
        try:
            fan = sinks.fan_out(sinks.callback(check), policy="drop_oldest", maxsize=8)
            ChatStream(text_stream(*parts)).subscribe(fan).until_done()
        finally:
            sys.setswitchinterval(previous)
        assert wrong == []
