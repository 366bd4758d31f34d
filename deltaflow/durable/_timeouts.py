"""Every wait of a durable stream, derived from one another here so that none outlasts the next.

A reader waits ``reader_wait`` for an entry before it sends a keep-alive and checks the producer's
lease: at most the keep-alive interval, and at most half the lease, so a dead producer is noticed
within the lease time. On Redis, no reader's wait is a Redis command: the log's shared tail blocks
(``XREAD BLOCK``) for ``tail_block`` at a time, half the socket timeout, so a quiet stream (a model
thinking for minutes) is never a socket timeout, whatever the keep-alive and the lease.
"""

from __future__ import annotations

__all__ = ["DEFAULT_SOCKET_TIMEOUT", "reader_wait", "tail_block"]

DEFAULT_SOCKET_TIMEOUT = 10.0
"""Seconds a Redis reply may take before the connection counts as lost (``RedisEventLog.from_url``)."""


def reader_wait(keep_alive: float, lease_time: float) -> float:
    """Seconds a reader waits for an entry before a keep-alive and a check of the producer's lease."""
    return min(keep_alive, lease_time / 2)


def tail_block(socket_timeout: float | None) -> float:
    """Seconds one shared ``XREAD BLOCK`` lasts: half the socket timeout (5 s without one)."""
    return (socket_timeout if socket_timeout else DEFAULT_SOCKET_TIMEOUT) / 2
