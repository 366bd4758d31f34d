"""``accumulate()``: chunks in, the running snapshot and openai's semantic events out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from openai.types.chat import ChatCompletionChunk
from openai.types.completion_usage import CompletionUsage
from reactivex import Observable, abc

from deltaflow._lazy import build
from deltaflow._openai_compat import construct
from deltaflow.errors import DeltaflowError, ProviderError, StreamContractError
from deltaflow.events import CompletionDone, ErrorReported, Event
from deltaflow.operators._stage import Fused, Stage
from deltaflow.state import RejectedChunk
from deltaflow.state._completion import CompletionState

__all__ = ["accumulate"]


def accumulate() -> Callable[[Observable[ChatCompletionChunk | RejectedChunk]], Observable[Event]]:
    """Accumulate chunks into a completion, emitting openai's events for each chunk.

    Per chunk, the work is proportional to the chunk: text is kept as parts, nothing accumulated
    is copied. Each event's ``snapshot`` is computed when read, as of that event. After the last
    chunk comes ``completion.done`` with the final completion. An error from upstream, or a chunk
    that breaks the stream contract, ends the stream with a ``DeltaflowError`` whose
    ``.completion`` holds everything received so far, after an ``error`` event describing it. A
    ``RejectedChunk`` (a payload no dialect understands) becomes an ``error`` event and the stream
    goes on, the snapshot untouched.

    ::

        --c1-------------c2-------------c3------|
        [                 accumulate()          ]
        --chunk,delta----chunk,delta----chunk,content.done,choice.done,usage--completion.done|

    Returns:
        An operator from ``Observable[ChatCompletionChunk]`` to ``Observable[Event]``.
    """

    def _accumulate(source: Observable[ChatCompletionChunk | RejectedChunk]) -> Observable[Event]:
        return Fused(source, _Accumulate)

    return _accumulate


class _Accumulate(Stage):
    """One subscription: its own completion state."""

    __slots__ = ("state",)

    def __init__(self, observer: abc.ObserverBase[Any]) -> None:
        super().__init__(observer)
        self.chain.makes_events = True  # the events below are made here (operators/_stage.py)
        self.state = CompletionState()

    def on_next(self, chunk: ChatCompletionChunk | RejectedChunk) -> None:
        chain = self.chain
        if chain.ended:
            return
        if type(chunk) is not ChatCompletionChunk and isinstance(chunk, RejectedChunk):
            self.emit(
                ErrorReported(
                    code="chunk_unrecognized", message=chunk.reason, detail=chunk.raw, exception=None
                )
            )
            return
        state = self.state
        # held while the chunk's events run downstream too: the operators there feed parsers that
        # sinks on other threads read through lazy fields (uncontended unless they do). Called, not
        # entered with `with`: half the cost, on every chunk
        lock = state.lock
        lock.acquire()
        try:
            try:
                events = state.handle_chunk(chunk)
            except DeltaflowError as exc:
                self.on_error(exc)
                return
            except (AttributeError, TypeError, ValueError, RecursionError) as exc:
                self.on_error(StreamContractError(f"malformed chunk: {exc!r}"))
                return
            emit = self.emit
            for event in events:
                if chain.ended:
                    break  # a stage below ended the stream on an earlier event of this chunk
                emit(event)
        finally:
            lock.release()

    def on_error(self, error: Exception) -> None:
        if self.stopped:
            return
        self.fail(with_completion(error, self.state))

    def on_completed(self) -> None:
        if self.stopped:
            return
        state = self.state
        if not state.started:
            self.on_error(StreamContractError("the stream ended before any chunk arrived"))
            return
        # a body that just stops (evroc's server-side timeout) looks complete: say it is not
        unfinished = [
            index for index, choice in state.choices.items() if choice.finish_reason.current is None
        ]
        for index in unfinished:
            message = f"the stream ended without a finish reason for choice {index}: it may be cut short"
            self.emit(ErrorReported(code="finish_reason_missing", message=message, choice_index=index))
        fields = {"type": "completion.done", "unfinished": bool(unfinished)}
        self.emit(build(CompletionDone, fields, {"completion": state.current}, state.lock))
        super().on_completed()


def with_completion(error: Exception, state: CompletionState) -> Exception:
    """Attach the partial completion to an error that has none yet.

    Every error that ends a stream carries ``.completion``: deltaflow's own errors declare it;
    errors from the source (openai's ``APIError`` / ``APIConnectionError``, a JSON error, a failing
    iterable's own exception) keep their class, so existing ``except`` clauses still catch them,
    and get the attribute set. A provider error that carries usage (OpenRouter sends it with the
    error) sets the completion's usage when none arrived before, so the tokens spent are not lost.
    """
    if isinstance(error, ProviderError) and state.started and state.usage.current is None:
        payload = error.error
        usage = payload.get("usage") if isinstance(payload, dict) else None
        if isinstance(usage, dict):
            state.usage.set(construct(CompletionUsage, usage), state.seq)
    if getattr(error, "completion", None) is None:
        completion = state.current() if state.started else None
        if isinstance(error, DeltaflowError):
            error.completion = completion
        else:
            # a foreign class: the attribute deltaflow's errors declare, set on the instance
            setattr(error, "completion", completion)  # noqa: B010
    return error
