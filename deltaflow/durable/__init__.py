"""Durable, resumable event streams: an event log (in memory, or Redis Streams across instances).

A producer appends each event of a stream to the log as it is made; any relay instance serves the
stream from a reader's ``Last-Event-ID``: catch-up from the log, then the live tail. Generation
outlives the HTTP connection; a stop request, a dead producer or a lost log each end the stream
with a terminal entry or a typed error, never a hang.
"""

from ._endpoint import DurableEndpoint, durable_endpoint
from ._log import AppendResult, EventLog, Lease, LogEntry, StreamInfo
from ._memory import MemoryEventLog
from ._producer import produce
from ._redis import RedisEventLog

__all__ = [
    "AppendResult",
    "DurableEndpoint",
    "EventLog",
    "Lease",
    "LogEntry",
    "MemoryEventLog",
    "RedisEventLog",
    "StreamInfo",
    "durable_endpoint",
    "produce",
]
