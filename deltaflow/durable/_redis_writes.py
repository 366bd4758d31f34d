"""Producers' writes to a standalone Redis, coalesced: those that arrive during a write go in one pipeline.

A hundred streams each appending as its model speaks make a hundred small script calls; redis-py's
cost per command (a pool checkout, the retry wrapper, a parse) then dominates the relay's CPU and its
latency under load. Calls queued while a pipeline is in flight go together in the next one: one
checkout and one round trip for all of them. A stream has at most one write in flight (its producer
awaits each), so its entries keep their order whatever the batching.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import redis.asyncio as aioredis

__all__ = ["WriteCoalescer"]


class WriteCoalescer:
    """Script calls batched into pipelines, at most ``in_flight`` pipelines at once."""

    def __init__(self, client: aioredis.Redis, *, in_flight: int = 4) -> None:
        self._client = client
        self._in_flight = in_flight
        self._flushing = 0
        self._pending: list[tuple[Any, list[str], list[Any], asyncio.Future[Any]]] = []
        self._flushers: set[asyncio.Task[None]] = set()  # referenced while they run

    async def call(self, script: Any, keys: list[str], args: list[Any]) -> Any:
        """The script's reply, once the pipeline that carried it is back."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((script, keys, args, future))
        if self._flushing < self._in_flight:
            self._flushing += 1
            flusher = asyncio.ensure_future(self._flush())
            self._flushers.add(flusher)
            flusher.add_done_callback(self._flushers.discard)
        return await future

    async def _flush(self) -> None:
        import redis.exceptions  # noqa: PLC0415

        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    async with self._client.pipeline(transaction=False) as pipe:
                        for script, keys, args, _ in batch:
                            pipe.evalsha(script.sha, len(keys), *keys, *args)
                        replies = await pipe.execute(raise_on_error=False)
                except Exception as error:  # noqa: BLE001 - each caller gets the failure of its write
                    replies = [error] * len(batch)
                for (script, keys, args, future), reply in zip(batch, replies, strict=True):
                    outcome = reply
                    if isinstance(reply, redis.exceptions.NoScriptError):
                        # Redis lost its scripts (a restart): the script object loads it again
                        try:
                            outcome = await script(keys=keys, args=args)
                        except Exception as error:  # noqa: BLE001 - passed on to the caller
                            outcome = error
                    if future.done():
                        continue
                    if isinstance(outcome, BaseException):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        finally:
            self._flushing -= 1
