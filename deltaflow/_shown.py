"""Values shown in error messages, bounded: a hostile payload never breaks the message about it."""

from __future__ import annotations

import reprlib

__all__ = ["shown"]

_REPR = reprlib.Repr()
# a chunk nested a thousand levels deep or megabytes long must still give a one-line message
_REPR.maxlevel = 4
_REPR.maxdict = _REPR.maxlist = _REPR.maxtuple = _REPR.maxset = 6
_REPR.maxstring = _REPR.maxother = 80
_REPR.maxlong = 40


def shown(value: object) -> str:
    """``repr(value)`` cut to a few levels and characters; never raises."""
    try:
        return _REPR.repr(value)
    except Exception:  # noqa: BLE001 - a value whose repr fails (or recurses) is named by its type
        return f"<{type(value).__name__}>"
