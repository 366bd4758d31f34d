"""Values shown in error messages, bounded: a hostile payload never breaks the message about it."""

from __future__ import annotations

import reprlib

from pydantic import BaseModel

__all__ = ["shown"]


class _Bounded(reprlib.Repr):
    """``reprlib`` limits, and pydantic models (openai's chunks) shown field by field within them."""

    def __init__(self) -> None:
        super().__init__()
        # a chunk nested a thousand levels deep or megabytes long must still give a one-line message
        self.maxlevel = 4
        self.maxdict = self.maxlist = self.maxtuple = self.maxset = 6
        self.maxstring = self.maxother = 80
        self.maxlong = 40

    def repr_instance(self, x: object, level: int) -> str:
        if not isinstance(x, BaseModel):
            return super().repr_instance(x, level)
        name = type(x).__name__
        if level <= 0:
            return f"{name}(...)"
        fields = [*type(x).model_fields, *(x.__pydantic_extra__ or ())]
        shown_fields = [
            f"{key}={self.repr1(getattr(x, key, None), level - 1)}" for key in fields[: self.maxdict]
        ]
        more = ", ..." if len(fields) > self.maxdict else ""
        return f"{name}({', '.join(shown_fields)}{more})"


_REPR = _Bounded()


def shown(value: object, limit: int = 300) -> str:
    """``repr(value)`` cut to a few levels and at most ``limit`` characters; never raises."""
    try:
        text = _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails (or recurses) is named by its type
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else f"{text[:limit]}..."
