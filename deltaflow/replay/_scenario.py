"""A scenario: the events one request gets back, with their pacing and an optional fault."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict, Unpack

from deltaflow.pipeline._sse import ServerSentEvent

from ._fault import Fault
from ._recordings import load_recording, parse_sse
from ._scripted import scripted_chunks
from ._wire import DONE, ReplayItem, encode_chunk

__all__ = ["Scenario", "ScenarioOptions"]


class ScenarioOptions(TypedDict, total=False):
    """Pacing and fault keywords every ``Scenario`` constructor accepts."""

    ttft: float
    tokens_per_second: float | None
    fault: Fault | None


@dataclass(frozen=True, slots=True)
class Scenario:
    """What the server sends back for one request.

    Attributes:
        events: events and comments, sent in order; only events are paced, counted and faulted.
        ttft: seconds to wait (after the response headers) before the first event.
        tokens_per_second: event rate after the first event; None or 0 sends as fast as possible.
        fault: a failure to inject; a request's ``X-Replay-Fault`` header overrides it.
    """

    events: tuple[ReplayItem, ...]
    ttft: float = 0.0
    tokens_per_second: float | None = None
    fault: Fault | None = None

    def __post_init__(self) -> None:
        if self.ttft < 0 or (self.tokens_per_second or 0) < 0:
            raise ValueError("ttft and tokens_per_second must not be negative")

    @classmethod
    def from_file(cls, path: str | Path, **options: Unpack[ScenarioOptions]) -> Scenario:
        """Replay a ``.sse`` body as recorded (comments and ``event:`` lines kept) or a ``.jsonl`` file."""
        return cls(load_recording(path), **options)

    @classmethod
    def from_sse(cls, body: str | bytes, **options: Unpack[ScenarioOptions]) -> Scenario:
        """Replay a raw SSE body given inline."""
        return cls(parse_sse(body.encode() if isinstance(body, str) else body), **options)

    @classmethod
    def from_chunks(
        cls, chunks: Iterable[Mapping[str, Any]], *, done: bool = True, **options: Unpack[ScenarioOptions]
    ) -> Scenario:
        """One ``data:`` event per chunk dict, then ``[DONE]`` unless ``done`` is False."""
        events = tuple(ServerSentEvent(data=encode_chunk(chunk)) for chunk in chunks)
        return cls((*events, DONE) if done else events, **options)

    @classmethod
    def scripted(
        cls,
        content: str | None = "Hello world",
        *,
        reasoning: str | None = None,
        tool_calls: Sequence[Mapping[str, Any]] = (),
        refusal: str | None = None,
        finish_reason: str | None = None,
        model: str = "replay-1",
        usage: bool = True,
        chunk_size: int = 4,
        **options: Unpack[ScenarioOptions],
    ) -> Scenario:
        """An OpenAI-conformant stream built from a script; see ``scripted_chunks`` for the arguments."""
        chunks = scripted_chunks(
            content,
            reasoning=reasoning,
            tool_calls=tool_calls,
            refusal=refusal,
            finish_reason=finish_reason,
            model=model,
            usage=usage,
            chunk_size=chunk_size,
        )
        return cls.from_chunks(chunks, **options)

    @property
    def event_count(self) -> int:
        """How many events (not comments) the scenario sends when nothing goes wrong."""
        return sum(isinstance(item, ServerSentEvent) for item in self.events)

    def chunks(self) -> list[dict[str, Any]]:
        """The JSON objects carried by the events, in order; ``[DONE]`` and non-JSON data are skipped."""
        chunks: list[dict[str, Any]] = []
        for item in self.events:
            if not isinstance(item, ServerSentEvent):
                continue
            try:
                payload = json.loads(item.data)
            except ValueError:
                continue
            if isinstance(payload, dict):
                chunks.append(payload)
        return chunks
