"""Faults injected into a replayed stream, and the ``X-Replay-Fault`` header that selects one."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, get_args

__all__ = ["FAULT_HEADER", "Fault", "FaultKind"]

FaultKind: TypeAlias = Literal["drop", "stall", "malformed", "error"]

_KINDS: tuple[FaultKind, ...] = get_args(FaultKind)

FAULT_HEADER = "x-replay-fault"


def _default_error() -> dict[str, Any]:
    return {"code": 502, "message": "replay: injected provider error"}


@dataclass(frozen=True, slots=True)
class Fault:
    """A failure injected into a stream once ``after`` events have been sent.

    Attributes:
        kind: ``drop`` closes the connection without finishing the chunked body; ``stall`` pauses for
            ``seconds`` then carries on; ``malformed`` sends one ``data:`` line that is not JSON, then
            carries on; ``error`` sends an OpenRouter-style chunk with a top-level ``error`` object, then
            ``[DONE]``, and stops.
        after: how many events (comments not counted) go out before the fault.
        seconds: how long a stall lasts.
        error: the ``error`` object an ``error`` fault sends.
    """

    kind: FaultKind
    after: int = 0
    seconds: float = 10.0
    # left out of the hash (a dict is unhashable), so faults and scenarios stay hashable
    error: Mapping[str, Any] = field(default_factory=_default_error, hash=False)

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}")
        if self.after < 0 or self.seconds < 0:
            raise ValueError("a fault's 'after' and 'seconds' must not be negative")
        if not math.isfinite(self.seconds):
            raise ValueError(f"a stall lasts a finite number of seconds, not {self.seconds}")

    @classmethod
    def drop_after(cls, after: int) -> Fault:
        """Close the connection mid-body after ``after`` events."""
        return cls("drop", after)

    @classmethod
    def stall_after(cls, after: int, seconds: float = 10.0) -> Fault:
        """Go silent for ``seconds`` after ``after`` events."""
        return cls("stall", after, seconds=seconds)

    @classmethod
    def malformed_after(cls, after: int) -> Fault:
        """Send a ``data:`` line with invalid JSON after ``after`` events."""
        return cls("malformed", after)

    @classmethod
    def error_after(cls, after: int, *, code: int | str = 502, message: str | None = None) -> Fault:
        """Send a mid-stream provider error after ``after`` events."""
        error = _default_error() | {"code": code}
        if message is not None:
            error["message"] = message
        return cls("error", after, error=error)

    @classmethod
    def parse(cls, header: str) -> Fault | None:
        """Parse an ``X-Replay-Fault`` header value; ``none`` means no fault at all.

        Examples: ``drop-after=3``, ``stall-after=2;stall=5``, ``malformed-after=1``,
        ``error-after=2;error-code=429;error-message=Rate limited``.

        Raises:
            ValueError: the value is not one of those forms.
        """
        if header.strip().lower() == "none":
            return None
        options: dict[str, str] = {}
        for part in header.split(";"):
            key, sep, value = part.partition("=")
            if not sep:
                raise ValueError(f"fault option {part.strip()!r} is not key=value")
            options[key.strip().lower()] = value.strip()
        triggers = [key for key in options if key.endswith("-after")]
        if len(triggers) != 1:
            raise ValueError(f"fault {header!r} must name exactly one of drop/stall/malformed/error-after")
        name = triggers[0].removesuffix("-after")
        kind = next((kind for kind in _KINDS if kind == name), None)
        if kind is None:
            raise ValueError(f"unknown fault kind {name!r}")
        after = _count(triggers[0], options.pop(triggers[0]))
        seconds = _seconds(options.pop("stall", "10"))
        error = _default_error()
        if "error-code" in options:
            code = options.pop("error-code")
            error["code"] = int(code) if code.isascii() and code.isdigit() else code
        if "error-message" in options:
            error["message"] = options.pop("error-message")
        if options:
            raise ValueError(f"unknown fault options {sorted(options)}")
        return cls(kind, after, seconds=seconds, error=error)


def _count(option: str, text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{option} counts events: a whole number such as {option}=3, not {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    if not 0 <= seconds < math.inf:
        raise ValueError(f"stall is a number of seconds such as stall=5, not {text!r}")
    return seconds
