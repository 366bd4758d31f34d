"""The event log's contract, held by both backends: ids, terminal entries, leases, fencing, gaps, retention."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deltaflow.durable import EventLog, MemoryEventLog, RedisEventLog
from deltaflow.durable._follow import Gap, Idle, follow, start_position
from deltaflow.durable._log import aborted_payload
from deltaflow.errors import EventLogUnavailable, LeaseConflict, LeaseLost, StreamNotFound
from tests.durable.redis_server import free_port

MakeLog = Callable[..., EventLog]


async def collect(
    log: EventLog, stream_id: str, last_event_id: str | None = None, idle: float = 0.05
) -> list[Any]:
    position = await start_position(log, stream_id, last_event_id)
    return [item async for item in follow(log, stream_id, position, idle=idle) if not isinstance(item, Idle)]


async def test_entries_get_ordered_ids_and_one_terminal_entry(make_log: MakeLog) -> None:
    """Ids are <generation>-1, -2, ...; the terminal entry is last; nothing is written after it."""
    log = make_log()
    lease = await log.claim("s1")
    ids = [(await log.append(lease, "content.delta", json.dumps({"n": n}))).entry_id for n in range(5)]
    terminal = await log.finish(lease, '{"ok":true,"outcome":"done"}')
    assert ids == [f"{lease.generation}-{n}" for n in range(1, 6)]
    assert terminal == f"{lease.generation}-6"
    with pytest.raises(LeaseLost):
        await log.append(lease, "content.delta", "{}")
    with pytest.raises(LeaseLost):
        await log.finish(lease, '{"ok":true}')
    entries = await collect(log, "s1")
    assert [entry.id for entry in entries] == [*ids, terminal]
    assert [json.loads(entry.data)["n"] for entry in entries[:-1]] == list(range(5))
    assert entries[-1].terminal
    assert not any(entry.terminal for entry in entries[:-1])


async def test_resuming_from_any_id_gives_exactly_the_rest(make_log: MakeLog) -> None:
    """From each event id in turn, a reader gets exactly the entries after it, in order."""
    log = make_log()
    lease = await log.claim("s2")
    ids = [(await log.append(lease, "content.delta", "{}")).entry_id for _ in range(6)]
    ids.append(await log.finish(lease, '{"ok":true,"outcome":"done"}'))
    for position, last in enumerate(ids[:-1]):
        assert [entry.id for entry in await collect(log, "s2", last)] == ids[position + 1 :]


async def test_a_second_producer_is_refused_and_a_stale_one_is_fenced(make_log: MakeLog) -> None:
    """A claim on a held id is refused; once the id is reused, the old lease can no longer write."""
    log = make_log()
    first = await log.claim("s3")
    with pytest.raises(LeaseConflict):
        await log.claim("s3")
    await log.delete("s3")
    second = await log.claim("s3")
    assert second.generation > first.generation
    with pytest.raises(LeaseLost):
        await log.append(first, "content.delta", "{}")
    with pytest.raises(LeaseLost):
        await log.renew(first)
    assert (await log.append(second, "content.delta", "{}")).entry_id == f"{second.generation}-1"


async def test_a_reused_id_never_mixes_two_answers(make_log: MakeLog) -> None:
    """A reader holding an id of the first answer is refused once the stream id carries a second one."""
    log = make_log(ttl=0.2)
    first = await log.claim("s4")
    old_id = (await log.append(first, "content.delta", '{"answer":1}')).entry_id
    await log.finish(first, '{"ok":true,"outcome":"done"}')
    with pytest.raises(LeaseConflict):
        await log.claim("s4")  # retained: not reusable yet
    await asyncio.sleep(0.4)
    assert await log.info("s4") is None
    second = await log.claim("s4")
    await log.append(second, "content.delta", '{"answer":2}')
    await log.finish(second, '{"ok":true,"outcome":"done"}')
    with pytest.raises(StreamNotFound):
        await start_position(log, "s4", old_id)
    assert [json.loads(e.data).get("answer") for e in await collect(log, "s4")] == [2, None]


async def test_a_dead_producer_leaves_readers_aborted_producer_lost(make_log: MakeLog) -> None:
    """Without appends or renewals, the lease runs out and the reader itself writes the terminal entry."""
    log = make_log(lease_time=0.3)
    lease = await log.claim("s5")
    await log.append(lease, "content.delta", "{}")
    entries = await asyncio.wait_for(collect(log, "s5", idle=0.1), 10)
    assert len(entries) == 2
    terminal = json.loads(entries[-1].data)
    assert entries[-1].terminal
    assert terminal["outcome"] == "aborted"
    assert terminal["reason"] == "producer_lost"
    with pytest.raises(LeaseLost):
        await log.append(lease, "content.delta", "{}")
    assert await log.reap("s5", lease.generation, aborted_payload("producer_lost")) == "finished"


async def test_renewal_keeps_an_idle_producer_alive(make_log: MakeLog) -> None:
    """A producer that renews while its model thinks is not reaped; readers get idle ticks instead."""
    log = make_log(lease_time=0.3)
    lease = await log.claim("s6")
    position = await start_position(log, "s6", None)
    reader = follow(log, "s6", position, idle=0.1)
    for _ in range(6):
        assert not await log.renew(lease)
        assert isinstance(await asyncio.wait_for(anext(reader), 5), Idle)
    await log.finish(lease, '{"ok":true,"outcome":"done"}')
    items = [item async for item in reader if not isinstance(item, Idle)]
    assert len(items) == 1
    assert items[0].terminal


async def test_a_stop_request_reaches_the_producer_at_its_next_write(make_log: MakeLog) -> None:
    """request_stop shows in the producer's next append or renewal; a finished stream cannot be stopped."""
    log = make_log()
    lease = await log.claim("s7")
    assert not (await log.append(lease, "content.delta", "{}")).stop_requested
    assert await log.request_stop("s7")
    assert (await log.append(lease, "content.delta", "{}")).stop_requested
    assert await log.renew(lease)
    await log.finish(lease, aborted_payload("stopped"))
    assert not await log.request_stop("s7")
    assert not await log.request_stop("never-started")


async def test_a_blocked_reader_wakes_on_the_next_append(make_log: MakeLog) -> None:
    """The live tail is a blocking read: the reader gets each entry as it is appended."""
    log = make_log()
    lease = await log.claim("s8")
    position = await start_position(log, "s8", None)
    reader = follow(log, "s8", position, idle=5)
    pending = asyncio.ensure_future(anext(reader))
    await asyncio.sleep(0.05)
    assert not pending.done()
    entry_id = (await log.append(lease, "content.delta", "{}")).entry_id
    assert (await asyncio.wait_for(pending, 5)).id == entry_id
    await log.finish(lease, '{"ok":true,"outcome":"done"}')
    assert (await asyncio.wait_for(anext(reader), 5)).terminal
    await reader.aclose()


async def test_trimmed_events_give_an_explicit_gap(make_log: MakeLog) -> None:
    """With MAXLEN 5, a reader from the start or from an old id gets a gap, then the kept entries."""
    log = make_log(max_length=5)
    lease = await log.claim("s9")
    ids = [(await log.append(lease, "content.delta", "{}")).entry_id for _ in range(11)]
    ids.append(await log.finish(lease, '{"ok":true,"outcome":"done"}'))
    items = await collect(log, "s9")
    assert items[0] == Gap(f"{lease.generation}-0", ids[-5], 7)
    assert [entry.id for entry in items[1:]] == ids[-5:]
    items = await collect(log, "s9", ids[2])
    assert items[0] == Gap(ids[2], ids[-5], 4)
    assert [entry.id for entry in items[1:]] == ids[-5:]
    # a reader whose next entry is still kept sees no gap
    assert [entry.id for entry in await collect(log, "s9", ids[-6])] == ids[-5:]


async def test_a_finished_stream_replays_whole_until_its_ttl(make_log: MakeLog) -> None:
    """After the terminal entry the stream replays whole, then expires after its TTL."""
    log = make_log(ttl=0.3)
    lease = await log.claim("s10")
    await log.append(lease, "content.delta", "{}")
    await log.finish(lease, '{"ok":true,"outcome":"done"}')
    assert len(await collect(log, "s10")) == 2
    assert len(await collect(log, "s10")) == 2
    await asyncio.sleep(0.5)
    with pytest.raises(StreamNotFound):
        await collect(log, "s10")


@settings(max_examples=200, deadline=None)
@given(last_event_id=st.text(max_size=40) | st.from_regex(r"\d{1,25}-\d{1,25}", fullmatch=True))
def test_any_last_event_id_is_resolved_or_refused_with_a_typed_error(last_event_id: str) -> None:
    """Whatever a client sends as Last-Event-ID, resuming either works or raises StreamNotFound."""

    async def resume() -> None:
        log = MemoryEventLog()
        lease = await log.claim("h")
        for _ in range(3):
            await log.append(lease, "content.delta", "{}")
        await log.finish(lease, '{"ok":true,"outcome":"done"}')
        try:
            position = await start_position(log, "h", last_event_id)
        except StreamNotFound:
            return
        entries = [e async for e in follow(log, "h", position, idle=0.01) if not isinstance(e, Idle)]
        assert [e.id for e in entries] == [f"1-{n}" for n in range(position[1] + 1, 5)]

    asyncio.run(resume())


async def test_an_unreachable_redis_is_a_typed_error() -> None:
    """Every operation on a Redis that does not answer raises EventLogUnavailable, not redis's own error."""
    log = RedisEventLog.from_url(f"redis://127.0.0.1:{free_port()}/0")
    with pytest.raises(EventLogUnavailable) as caught:
        await log.claim("x")
    assert caught.value.stream_id == "x"
    with pytest.raises(EventLogUnavailable):
        await log.read("x", "1-0", block=0.01)
    await log.aclose()


async def test_an_empty_batch_is_refused_not_answered_with_no_id(make_log: MakeLog) -> None:
    """``append_many`` with no entries is a ValueError on both logs (no empty id, no false LeaseLost)."""
    log = make_log()
    lease = await log.claim("s1")
    with pytest.raises(ValueError, match="at least one entry"):
        await log.append_many(lease, [])
    assert (await log.append_many(lease, [("content.delta", "{}")])).entry_id == f"{lease.generation}-1"
