"""``RedisEventLog``: the event log on Redis Streams, shared by any number of relay instances.

Each stream is three keys: ``<prefix>{<id>}:log`` (the Redis stream, entry ids set by us as
``<generation>-<sequence>``), ``<prefix>{<id>}:meta`` (a hash: generation, sequence, finished, stop,
the claim's token, reaped) and ``<prefix>{<id>}:lease`` (the producer's generation, expiring after the
lease time). Every write is one Lua script, so an append is one round trip, for one entry or a batch:
it checks the lease (fencing), adds the entries, trims to ``MAXLEN``, renews the TTLs and reports a
pending stop request. A write redis-py retries after its reply was lost is applied once: a lease's
writes go one at a time, each carrying the number of entries written before it, so a retry finds
its entries there. A generation is the Redis server's clock in microseconds at the claim: unique per
stream id without a global counter (every script's keys are one stream's, in one hash slot), and
never reused, even after Redis lost its data.

Connections: producers write on the client given; readers' short commands go through a pool of
their own, and the followed streams' live tail is one blocking ``XREAD`` per instance on a
connection of its own (``RedisTail``), so producers never wait on a connection readers hold, and
the connections per instance stay a small constant whatever the number of readers. Every command
runs to its end even when its caller is cancelled (a reader leaving), so none is cut off midway
with its connection.
"""

from __future__ import annotations

import asyncio
import functools
import uuid
import weakref
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from deltaflow.errors import EventLogUnavailable, LeaseConflict, LeaseLost

from ._log import TERMINAL_KIND, AppendResult, Lease, LogEntry, ReapResult, StreamInfo, parse_entry_id
from ._redis_tail import RedisTail
from ._redis_writes import WriteCoalescer
from ._timeouts import DEFAULT_SOCKET_TIMEOUT, tail_block

if TYPE_CHECKING:
    import redis.asyncio as aioredis
    from redis.asyncio.cluster import RedisCluster

__all__ = ["RedisEventLog"]

T = TypeVar("T")

# KEYS: meta, lease, log. ARGV: lease ms, running ttl ms, claim token. The generation is the server's
# clock in microseconds (scripts replicate their effects, so TIME is allowed before the writes). A claim
# redis-py retries after its reply was lost finds its own token and gets its generation again.
_CLAIM = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'claim') == ARGV[3] then return redis.call('HGET', KEYS[1], 'generation') end
  return 0
end
local now = redis.call('TIME')
local generation = now[1] .. string.format('%06d', tonumber(now[2]))
redis.call('DEL', KEYS[3])
redis.call('HSET', KEYS[1], 'generation', generation, 'sequence', 0, 'finished', 0, 'stop', 0,
  'claim', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('SET', KEYS[2], generation, 'PX', ARGV[1])
return generation
"""

# KEYS: meta, lease, log. ARGV: generation, maxlen, lease ms, running ttl ms, terminal (0/1),
# finished ttl ms, the entries this producer wrote before (-1: unknown), then kind and data of each
# entry. Returns {} when fenced, {'lost', sequence} when the log has fewer entries than were written
# (a failover to a replica without the last writes), else {last id, stop}. A write redis-py retries
# after its reply was lost finds its entries there and gets the same reply, writing nothing twice.
_APPEND = """
local count = (#ARGV - 7) / 2
local written = tonumber(ARGV[7])
local sequence = tonumber(redis.call('HGET', KEYS[1], 'sequence')) or 0
if written >= 0 and sequence == written + count and redis.call('HGET', KEYS[1], 'generation') == ARGV[1]
    and not redis.call('HGET', KEYS[1], 'reaped') then
  if ARGV[5] == '1' then return {ARGV[1] .. '-' .. sequence, '0'} end
  return {ARGV[1] .. '-' .. sequence, redis.call('HGET', KEYS[1], 'stop')}
end
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return {} end
if written >= 0 and sequence < written then
  -- the lost ids are not given again: what comes next (the reaper's terminal entry) follows every
  -- entry a reader may have seen, and a reader that saw none of them is told of a gap
  redis.call('HSET', KEYS[1], 'sequence', written)
  return {'lost', tostring(sequence)}
end
local id
for i = 8, #ARGV, 2 do
  id = ARGV[1] .. '-' .. redis.call('HINCRBY', KEYS[1], 'sequence', 1)
  redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[2], id, 'k', ARGV[i], 'd', ARGV[i + 1])
end
if ARGV[5] == '1' then
  redis.call('HSET', KEYS[1], 'finished', 1)
  redis.call('DEL', KEYS[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  redis.call('PEXPIRE', KEYS[3], ARGV[6])
  return {id, '0'}
end
redis.call('PEXPIRE', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return {id, redis.call('HGET', KEYS[1], 'stop')}
"""

# KEYS: meta, lease, log. ARGV: generation, lease ms, running ttl ms. Returns -1 when fenced.
_RENEW = """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return -1 end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[3], ARGV[3])
return tonumber(redis.call('HGET', KEYS[1], 'stop'))
"""

# KEYS: meta.
_STOP = """
if redis.call('HGET', KEYS[1], 'finished') ~= '0' then return 0 end
redis.call('HSET', KEYS[1], 'stop', 1)
return 1
"""

# KEYS: meta, lease, log. ARGV: generation, data, maxlen, finished ttl ms.
_REAP = """
local generation = redis.call('HGET', KEYS[1], 'generation')
if not generation then return 'gone' end
if generation ~= ARGV[1] then return 'replaced' end
if redis.call('HGET', KEYS[1], 'finished') == '1' then return 'finished' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'live' end
local id = ARGV[1] .. '-' .. redis.call('HINCRBY', KEYS[1], 'sequence', 1)
redis.call('XADD', KEYS[3], 'MAXLEN', ARGV[3], id, 'k', 'done', 'd', ARGV[2])
redis.call('HSET', KEYS[1], 'finished', 1, 'reaped', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return 'reaped'
"""


@dataclass(slots=True)
class _Writes:
    """One lease's writes: a lock that orders them, and the entries written (None while unknown)."""

    written: int | None
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class RedisEventLog:
    """An event log on Redis Streams.

    Example::

        log = RedisEventLog.from_url("redis://127.0.0.1:6379/0")

    Args:
        client: a ``redis.asyncio.Redis`` made with ``decode_responses=True``, for the producers'
            writes; the readers' pool and the shared tail's connection are made alike.
        prefix: the key prefix of every key this log writes.
        max_length: entries kept per stream (``XADD MAXLEN``); readers of trimmed ones get a ``gap``.
            An answer streams about one event per token: the default keeps the longest whole.
        ttl: seconds a stream is kept after its terminal entry.
        lease_time: seconds a producer's lease lasts without an append or renewal.
        read_connections: the most connections readers' short commands use at once.
        write_connections: on a Redis Cluster, the most producers' commands at once (a standalone
            client's pool sets its own limit).
        durability: ``"acknowledged"`` (default): a write counts once the primary has it; Redis
            replicates asynchronously, so a failover can lose the last writes. ``"replicated"``: each
            write also waits (``WAIT``) for one replica, up to ``replica_wait`` seconds, else the
            producer stops with ``EventLogUnavailable``; a standalone primary with a replica only.
        replica_wait: seconds a replicated write waits for its replica.
        read_client: the client of the readers' short commands (by default one like ``client``
            with a pool of ``read_connections``); on a Redis Cluster, give it (``from_url`` does).
        tail_client: the client of the shared blocking reads (by default one like ``client`` with
            one connection); on a Redis Cluster, give it (``from_url`` does).
    """

    def __init__(
        self,
        client: aioredis.Redis | RedisCluster,
        *,
        prefix: str = "deltaflow:",
        max_length: int = 100_000,
        ttl: float = 600.0,
        lease_time: float = 10.0,
        read_connections: int = 16,
        write_connections: int = 64,
        durability: Literal["acknowledged", "replicated"] = "acknowledged",
        replica_wait: float = 1.0,
        read_client: aioredis.Redis | RedisCluster | None = None,
        tail_client: aioredis.Redis | RedisCluster | None = None,
    ) -> None:
        if max_length < 1 or ttl <= 0 or lease_time <= 0 or read_connections < 1:
            raise ValueError("max_length, ttl, lease_time and read_connections must be positive")
        self._client = client
        self._prefix = prefix
        self._max_length = max_length
        self._ttl_ms = int(ttl * 1000)
        self._lease_ms = max(1, int(lease_time * 1000))
        # a running stream whose producer vanished without a reader to notice still goes away
        self._running_ttl_ms = self._ttl_ms + self._lease_ms
        # each lease's writes, one at a time, and how many entries it wrote: a retried write's check
        self._lease_writes: weakref.WeakKeyDictionary[Lease, _Writes] = weakref.WeakKeyDictionary()
        self._claim = client.register_script(_CLAIM)
        self._append = client.register_script(_APPEND)
        self._renew = client.register_script(_RENEW)
        self._stop = client.register_script(_STOP)
        # a RedisCluster has no pool of its own, but one per node
        single = cast("aioredis.Redis | None", getattr(client, "connection_pool", None) and client)
        if durability == "replicated" and single is None:
            # a cluster routes WAIT to every primary, never on the connection of the write
            raise ValueError("durability='replicated' needs a standalone primary (not yet a Redis Cluster)")
        self._replica_wait_ms = max(1, int(replica_wait * 1000)) if durability == "replicated" else None
        self._durability = durability
        # a cluster's pipelines split by node and retry on their own: the coalescing is standalone's
        self._writes = WriteCoalescer(single) if single is not None else None
        self._reads = read_client or (_sibling(single, read_connections) if single else client)
        # a RedisCluster fails for want of a connection instead of waiting for one: readers' commands
        # wait here for one of read_connections
        self._limit = None if single else asyncio.Semaphore(read_connections)
        self._write_limit = None if single else asyncio.Semaphore(write_connections)
        self._reap = self._reads.register_script(_REAP)
        kwargs = single.connection_pool.connection_kwargs if single else cast("Any", client).connection_kwargs
        self._tail = RedisTail(
            tail_client or (_sibling(single, 1) if single else client),
            self._reads,
            prefix=prefix,
            block=tail_block(kwargs.get("socket_timeout")),
            call=functools.partial(self._call, reads=True),
            shared=single is not None,
        )

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        socket_timeout: float = DEFAULT_SOCKET_TIMEOUT,
        write_connections: int = 64,
        **options: Any,
    ) -> RedisEventLog:
        """A log on the Redis at ``url``; ``options`` as the constructor's.

        Args:
            url: ``redis://host:port/db`` (``rediss://`` for TLS), or ``redis+cluster://host:port`` (or
                ``rediss+cluster://``) for a Redis Cluster, naming any one of its nodes.
            socket_timeout: seconds a reply may take before the connection counts as lost; the
                shared blocking read lasts half of it, so a quiet stream never reaches it.
            write_connections: the most connections producers use at once (they wait for one
                beyond that, never fail for want of one).
            options: as the constructor's.
        """
        try:
            import redis.asyncio as aioredis  # noqa: PLC0415 - the redis extra is optional
        except ImportError as error:  # pragma: no cover - depends on the extras installed
            raise ImportError(
                "RedisEventLog needs the redis extra: pip install 'deltaflow[redis]'"
            ) from error
        from redis.asyncio.retry import Retry  # noqa: PLC0415
        from redis.backoff import ExponentialBackoff  # noqa: PLC0415

        settings: dict[str, Any] = {
            # a lost connection is retried twice within a second, then readers and producers are told
            "retry": Retry(ExponentialBackoff(cap=0.5, base=0.05), retries=2),
            "decode_responses": True,
            "socket_timeout": socket_timeout,
            "socket_connect_timeout": socket_timeout,
        }
        scheme, _, rest = url.partition("://")
        if scheme in ("redis+cluster", "rediss+cluster"):
            from redis.asyncio.cluster import RedisCluster  # noqa: PLC0415

            node_url = f"{scheme.removesuffix('+cluster')}://{rest}"
            # a failover takes a node timeout or two: commands retry through it (about 5 s in all)
            settings["retry"] = Retry(ExponentialBackoff(cap=1.0, base=0.1), retries=8)

            def cluster() -> RedisCluster:
                # RedisCluster fails beyond its connections per node: the log's semaphores bound them,
                # and the tail blocks once per followed stream (the keys of a command share a slot)
                return RedisCluster.from_url(node_url, max_connections=10_000, **settings)

            return cls(
                cluster(),
                write_connections=write_connections,
                read_client=cluster(),
                tail_client=cluster(),
                **options,
            )
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=write_connections, timeout=socket_timeout, **settings
        )
        return cls(aioredis.Redis.from_pool(pool), **options)

    @property
    def lease_time(self) -> float:
        """Seconds a producer's lease lasts without an append or a renewal."""
        return self._lease_ms / 1000

    @property
    def where(self) -> str:
        """The server this log writes to, ``host:port`` (of one node, for a cluster): no credential."""
        pool = getattr(self._client, "connection_pool", None)
        if pool is not None:
            settings = pool.connection_kwargs
            return f"{settings.get('host', 'localhost')}:{settings.get('port', 6379)} ({self._durability})"
        node = self._client.get_default_node()  # type: ignore[union-attr]
        seen = f"{node.host}:{node.port}, " if node is not None else ""  # known once it has connected
        return f"{seen}a Redis Cluster ({self._durability})"

    def _keys(self, stream_id: str) -> list[str]:
        # the hash tag keeps a stream's keys in one slot
        base = f"{self._prefix}{{{stream_id}}}"
        return [f"{base}:meta", f"{base}:lease", f"{base}:log"]

    async def _call(self, stream_id: str, command: Callable[[], Awaitable[T]], *, reads: bool = False) -> T:
        import redis.exceptions  # noqa: PLC0415

        # shielded: a caller cancelled midway (a reader leaving) must not cut the command off, which
        # would cost its connection
        limit = self._limit if reads else self._write_limit
        running = asyncio.ensure_future(self._limited(command, limit) if limit else command())
        running.add_done_callback(_retrieved)
        try:
            return await asyncio.shield(running)
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
            why = str(error) or type(error).__name__  # redis's MaxConnectionsError says nothing
            raise EventLogUnavailable(
                f"the Redis event log is unavailable: {why}", stream_id=stream_id
            ) from error

    @staticmethod
    async def _limited(command: Callable[[], Awaitable[T]], limit: asyncio.Semaphore) -> T:
        async with limit:
            return await command()

    async def _durably(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """Run a write script; with ``durability="replicated"``, return once a replica has it too."""
        if self._replica_wait_ms is None:
            if self._writes is not None:
                return await self._writes.call(script, keys, args)
            return await script(keys=keys, args=args)
        # WAIT counts the replicas that have this connection's writes: the script and it go together
        async with self._client.pipeline(transaction=False) as pipe:
            await script(keys=keys, args=args, client=pipe)
            pipe.wait(1, self._replica_wait_ms)
            reply, replicas = await pipe.execute()
        if replicas < 1:
            import redis.exceptions  # noqa: PLC0415

            # not acknowledged: the producer stops, its readers are told, as when Redis is away
            waited = self._replica_wait_ms
            raise redis.exceptions.TimeoutError(f"no replica acknowledged the write within {waited} ms")
        return reply

    async def claim(self, stream_id: str) -> Lease:
        """Start a stream and hold its lease; see ``EventLog.claim``."""
        keys = self._keys(stream_id)
        args = [self._lease_ms, self._running_ttl_ms, uuid.uuid4().hex]
        generation = await self._call(stream_id, lambda: self._durably(self._claim, keys, args))
        if not generation:
            raise LeaseConflict(f"stream id {stream_id!r} is in use", stream_id=stream_id)
        lease = Lease(stream_id, int(generation))
        self._lease_writes[lease] = _Writes(written=0)
        return lease

    async def _write(
        self, lease: Lease, entries: Sequence[tuple[str, str]], *, terminal: bool
    ) -> AppendResult:
        if not entries:
            raise ValueError("an append needs at least one entry")
        writes = self._lease_writes.get(lease)
        if writes is None:  # a lease this log did not claim (another instance's object)
            writes = self._lease_writes[lease] = _Writes(written=None)
        # one write of a lease at a time, so that the count a retry is recognised by is the log's
        async with writes.lock:
            written = -1 if writes.written is None else writes.written
            writes.written = None  # unknown until this write's reply is back
            args: list[str | int] = [
                lease.generation,
                self._max_length,
                self._lease_ms,
                self._running_ttl_ms,
                int(terminal),
                self._ttl_ms,
                written,
            ]
            for kind, data in entries:
                args += (kind, data)
            keys = self._keys(lease.stream_id)
            reply = await self._call(lease.stream_id, lambda: self._durably(self._append, keys, args))
            if not reply:
                raise LeaseLost(
                    f"the lease on stream {lease.stream_id!r} (generation {lease.generation}) is gone",
                    stream_id=lease.stream_id,
                )
            entry_id, stop = reply
            if entry_id == "lost":
                raise EventLogUnavailable(
                    f"the event log lost entries of stream {lease.stream_id!r}: it has {stop} of the"
                    f" {written} written (a failover to a replica that did not have them)",
                    stream_id=lease.stream_id,
                )
            writes.written = parse_entry_id(str(entry_id), stream_id=lease.stream_id)[1]
        return AppendResult(str(entry_id), stop == "1")

    async def append(self, lease: Lease, kind: str, data: str) -> AppendResult:
        """Append one entry and renew the lease, in one round trip; see ``EventLog.append``."""
        return await self._write(lease, [(kind, data)], terminal=False)

    async def append_many(self, lease: Lease, entries: Sequence[tuple[str, str]]) -> AppendResult:
        """Append entries in order, in one round trip; see ``EventLog.append_many``."""
        return await self._write(lease, entries, terminal=False)

    async def finish(self, lease: Lease, data: str) -> str:
        """Append the terminal entry; see ``EventLog.finish``."""
        return (await self._write(lease, [(TERMINAL_KIND, data)], terminal=True)).entry_id

    async def renew(self, lease: Lease) -> bool:
        """Renew the lease; see ``EventLog.renew``."""
        keys = self._keys(lease.stream_id)
        args = [lease.generation, self._lease_ms, self._running_ttl_ms]
        stop = await self._call(lease.stream_id, lambda: self._renew(keys=keys, args=args))
        if int(stop) < 0:
            raise LeaseLost(
                f"the lease on stream {lease.stream_id!r} (generation {lease.generation}) is gone",
                stream_id=lease.stream_id,
            )
        return int(stop) == 1

    async def request_stop(self, stream_id: str) -> bool:
        """Ask the producer to stop; see ``EventLog.request_stop``."""
        keys = self._keys(stream_id)[:1]
        return bool(await self._call(stream_id, lambda: self._stop(keys=keys)))

    async def info(self, stream_id: str) -> StreamInfo | None:
        """The stream's state; see ``EventLog.info``."""
        meta = self._keys(stream_id)[0]
        fields = await self._call(
            stream_id,
            lambda: cast(
                "Awaitable[list[str | None]]",
                self._reads.hmget(meta, ["generation", "sequence", "finished"]),
            ),
            reads=True,
        )
        generation, sequence, finished = fields
        if generation is None:
            return None
        return StreamInfo(int(generation), int(sequence or 0), finished == "1")

    async def read(self, stream_id: str, after: str, *, block: float, count: int = 256) -> list[LogEntry]:
        """Entries after ``after`` by ``XREAD BLOCK``; see ``EventLog.read``."""
        position = parse_entry_id(after, stream_id=stream_id)
        log = self._keys(stream_id)[2]
        return await self._tail.read(stream_id, log, position, block=block, count=count)

    async def reap(self, stream_id: str, generation: int, data: str) -> ReapResult:
        """Record a lost producer's end; see ``EventLog.reap``."""
        keys = self._keys(stream_id)
        args: list[str | int] = [generation, data, self._max_length, self._ttl_ms]
        result = await self._call(stream_id, lambda: self._reap(keys=keys, args=args), reads=True)
        return cast("ReapResult", str(result))

    async def delete(self, stream_id: str) -> None:
        """Remove a stream now; see ``EventLog.delete``."""
        keys = self._keys(stream_id)
        await self._call(stream_id, lambda: self._client.delete(*keys))

    @property
    def tail_reads(self) -> int:
        """The shared tail's blocking reads so far: its round trips, whatever the number of readers."""
        return self._tail.reads

    async def aclose(self) -> None:
        """Close the connections: the tail's, the readers' and the client's."""
        await self._tail.aclose()
        for client in {id(c): c for c in (self._tail.client, self._reads, self._client)}.values():
            await client.aclose()


def _sibling(client: aioredis.Redis, connections: int) -> aioredis.Redis:
    """A client on the same server with a pool of its own, of at most ``connections``."""
    import redis.asyncio as aioredis  # noqa: PLC0415

    pool = client.connection_pool
    kwargs = pool.connection_kwargs
    sibling = aioredis.BlockingConnectionPool(
        connection_class=pool.connection_class,
        max_connections=connections,
        timeout=kwargs.get("socket_timeout") or DEFAULT_SOCKET_TIMEOUT,
        **kwargs,
    )
    return aioredis.Redis.from_pool(sibling)  # its pool closes with it


def _retrieved(task: asyncio.Future[Any]) -> None:
    # a command whose caller left still fails or succeeds: its outcome is read, so never reported
    if not task.cancelled():
        task.exception()
