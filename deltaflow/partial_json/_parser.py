r"""An incremental JSON parser: each delta is parsed once, and the partial value is kept up to date.

openai-python re-parses the whole accumulated text on every delta (O(n) per delta, O(n^2) per
stream). ``IncrementalJsonParser`` consumes deltas cut anywhere (inside strings, escapes, ``\uXXXX``
and surrogate pairs, numbers, literals) and does work proportional to the delta.

The value it exposes matches ``jiter.from_json(text.encode(), partial_mode=True)`` for the text fed
so far; ops and ``value_trailing_strings()`` match ``partial_mode="trailing-strings"``.

Layout: every container, once opened, has a ``_Frame`` holding its live Python object (which becomes
the final value when it closes) and, for objects, a log of (key, value) entries. Entries are only ever
appended, so "the container as of version v" is "its first n entries", plus the open child or the
open number at the end. One small record per version, (deepest open frame, its entry count, open
number) is enough to rebuild any earlier snapshot; ``value()`` copies only the open containers.
"""

from __future__ import annotations

import math
import re
import sys
from array import array
from collections.abc import Callable
from types import MappingProxyType
from typing import Any, Final

from deltaflow.errors import JsonLimitError, JsonParseError
from deltaflow.partial_json._number import (
    COMPACT_ABOVE,
    MAX_INT_DIGITS,
    NUM_FULL,
    NUM_PREFIX,
    NUM_RUN,
    compact,
    convert,
    int_digits_excess,
)
from deltaflow.partial_json._ops import JsonOp, OpKind

__all__ = ["IncrementalJsonParser"]

Path = tuple[str | int, ...]

# Parser states. The structural ones (< _STRING) skip whitespace; _NUMBER and _LITERAL come last.
_VALUE: Final = 0  # a value must follow (document start, after ':', after ',' in an array)
_ARR_FIRST: Final = 1  # just after '[': a value or ']'
_OBJ_FIRST: Final = 2  # just after '{': a key or '}'
_OBJ_KEY: Final = 3  # after ',' in an object: a key
_COLON: Final = 4
_AFTER: Final = 5  # after a value inside a container: ',' or the closing bracket
_END: Final = 6  # the top-level value is complete: only whitespace may follow
_STRING: Final = 7
_ESCAPE: Final = 8  # after a backslash
_HEX: Final = 9  # inside the four digits of \uXXXX
_SURR_BS: Final = 10  # after a high surrogate escape: its low half must follow, '\\' first
_SURR_U: Final = 11  # then 'u'
_NUMBER: Final = 12
_LITERAL: Final = 13

_WS: Final = " \t\n\r"
# A string body run: stops at the closing quote, an escape, or a forbidden control character.
_STR_RUN: Final = re.compile(r'[^"\\\x00-\x1f]*')
# The characters that may continue a number token (those of NUM_RUN).
_NUM_CHARS: Final = "0123456789eE+-."
_HEX_RUN: Final = re.compile(r"[0-9a-fA-F]*")
_ESCAPES: Final = MappingProxyType(
    {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
)
# jiter accepts NaN, Infinity and -Infinity by default (allow_inf_nan=True); so do we.
_LITERALS: Final = MappingProxyType(
    {
        "t": ("true", True),
        "f": ("false", False),
        "n": ("null", None),
        "N": ("NaN", math.nan),
        "I": ("Infinity", math.inf),
    }
)
# Strings fed in many small deltas: join every this many parts into one block, so memory stays
# proportional to the text rather than to the number of deltas.
_PARTS_PER_BLOCK: Final = 64
_RAW_PARTS_PER_BLOCK: Final = 256
# Numbers this short convert without any bound check (640 is the lowest int/str digit limit Python
# allows an application to set).
_SHORT_NUMBER: Final = 640
# Snapshots handed out, by version, kept so that asking again returns the same object.
_CACHED_VERSIONS: Final = 8


class _Absent:
    """Marks "no value" where None is a legitimate JSON value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<absent>"


_ABSENT: Final = _Absent()
_new_op: Final = tuple.__new__


class _Frame:
    """An open (or, later, closed) container.

    ``obj`` is the live container: it is the final value once the container closes and is never
    modified after that. ``vals`` is the entry log: for arrays the live list itself; for objects the
    values in arrival order, parallel to ``keys`` (duplicate keys keep every entry; the live dict
    keeps the last value at the first position, as jiter does).
    """

    __slots__ = ("is_obj", "key", "keys", "obj", "parent", "path", "slot", "vals")

    def __init__(self, is_obj: bool, parent: _Frame | None, slot: int, key: str | int, path: Path) -> None:
        live: list[Any] = []
        self.is_obj = is_obj
        self.obj: Any = {} if is_obj else live
        self.keys: list[str] = []
        # For an array the log is the live list itself.
        self.vals = [] if is_obj else live
        self.parent = parent
        self.slot = slot  # index of this container's entry in the parent's log
        self.key = key  # key in the parent: a str in an object, the index in an array
        self.path = path


# A version's state: (deepest open frame, its entry count, the open number's key, its value or
# _ABSENT). Stored as parallel arrays (see IncrementalJsonParser._rec_*), assembled on demand.
_Record = tuple[_Frame, int, "str | int | None", Any]


class IncrementalJsonParser:
    """Parse JSON text fed in deltas, keeping the partial value up to date in time proportional to each delta.

    ``value()`` equals ``jiter.from_json(text.encode(), partial_mode=True)`` for the text fed so far
    (an unfinished string, number or literal is left out; a number is in as soon as it parses), and
    the ops returned by ``feed`` replay (see ``apply_ops``) to ``partial_mode="trailing-strings"``.
    Stricter than jiter in one way: anything invalid raises at once, including what jiter's partial
    mode forgives (``[1 2``, text after a complete value).

    Values returned by ``value()``, ``finish()`` and ``pop_done()`` are shared: closed sub-values are
    the same objects in every snapshot, and asking twice for a version returns the same object.
    Once handed out, a value is never changed by the parser (the next version's open containers
    are copies of their own), whoever holds it and on any interpreter: nothing is decided on
    reference counts. Treat them as read-only; copy before modifying.

    Args:
        max_depth: maximum nesting of arrays and objects; deeper raises JsonLimitError.
        max_size: maximum number of characters fed in total, None for no bound.
        emit_ops: whether ``feed`` builds and returns ops.
        track_done: whether to record closed sub-values for ``pop_done()``.
    """

    __slots__ = (
        "_cache",
        "_changed",
        "_depth",
        "_done",
        "_emit_ops",
        "_failed",
        "_hex",
        "_high",
        "_key",
        "_lit",
        "_lit_n",
        "_lit_val",
        "_max_depth",
        "_max_size",
        "_n_path",
        "_num",
        "_num_bias",
        "_num_fast",
        "_num_limit",
        "_ops",
        "_paths",
        "_raw_blocks",
        "_raw_parts",
        "_rec_count",
        "_rec_tail",
        "_rec_top",
        "_relaid",
        "_root",
        "_s_announced",
        "_s_blocks",
        "_s_emitted",
        "_s_key",
        "_s_parts",
        "_s_path",
        "_size",
        "_size_limit",
        "_state",
        "_tail",
        "_top",
        "_track_done",
    )

    def __init__(
        self,
        *,
        max_depth: int = 256,
        max_size: int | None = 64 * 1024 * 1024,
        emit_ops: bool = True,
        track_done: bool = False,
    ) -> None:
        self._max_depth = max_depth
        self._max_size = max_size
        self._size_limit = sys.maxsize if max_size is None else max_size
        self._emit_ops = emit_ops
        self._track_done = track_done
        self._paths = emit_ops or track_done
        # The virtual root: an array holding at most the one top-level value.
        self._root = _Frame(False, None, 0, 0, ())
        self._top = self._root
        self._depth = 0
        self._state = _VALUE
        self._key: str = ""
        self._changed = False
        # The value is the same but its record is out of date (a container closed, a shown number
        # settled): the last record is rewritten so that later snapshots share more.
        self._relaid = False
        self._failed: tuple[type[JsonParseError], str, int, str] | None = None
        self._ops: list[JsonOp] | None = None
        self._done: list[tuple[Path, Any]] = []
        self._size = 0
        self._raw_blocks: list[str] = []
        self._raw_parts: list[str] = []
        # The open string: decoded text so far, in small parts and joined blocks.
        self._s_parts: list[str] = []
        self._s_blocks: list[str] = []
        self._s_emitted = 0
        self._s_key = False
        self._s_announced = False
        self._s_path: Path = ()
        self._hex = ""
        self._high = 0
        # The open number token (possibly compacted, see _number.compact) and the value last shown.
        self._num = ""
        self._num_bias = 0
        self._num_limit = COMPACT_ABOVE
        # The open number's length up to which digits take the fast path (see _number_digits).
        self._num_fast = _SHORT_NUMBER
        self._n_path: Path = ()  # the open number's path (when paths are kept)
        self._tail: Any = _ABSENT
        self._lit = ""
        self._lit_n = 0
        self._lit_val: Any = None
        # One entry per version, in parallel arrays: a tuple per version would triple the memory.
        # The open number's key is not stored: it is the key its entry gets when it settles.
        self._rec_top: list[_Frame] = [self._root]
        self._rec_count = array("q", [0])
        self._rec_tail: list[Any] = [_ABSENT]
        self._cache: dict[int, Any] = {}

    # ------------------------------------------------------------------ public API

    @property
    def version(self) -> int:
        """The snapshot version: incremented by each ``feed`` that changes ``value()``."""
        return len(self._rec_top) - 1

    @property
    def complete(self) -> bool:
        """Whether a whole top-level value has been closed (only whitespace may follow)."""
        return self._state == _END

    @property
    def has_value(self) -> bool:
        """Whether ``value()`` has something: False while jiter's partial mode would still raise."""
        return bool(self._root.vals) or (self._top is self._root and self._tail is not _ABSENT)

    def snapshot(self) -> Callable[[], Any]:
        """Return a zero-argument callable giving ``value()`` as of now, however much is fed later."""
        version = self.version
        return lambda: self.value(version)

    def feed(self, text: str) -> list[JsonOp]:
        """Consume one delta.

        Args:
            text: the next piece of the document, cut anywhere.

        Returns:
            The ops this delta produced, in order (an empty list when ``emit_ops`` is False).

        Raises:
            JsonParseError: the text is not a prefix of valid JSON; ``position`` is the offset of the
                first invalid character in everything fed so far, ``text`` all of it. Every later call
                raises the same error.
            JsonLimitError: ``max_depth`` or ``max_size`` was exceeded, or a number's integer part
                has more than 4300 digits (jiter's bound).
        """
        if self._failed is not None:
            raise self._again()
        if self._done:
            self._done = []
        if not text:
            return []
        base = self._size
        self._size = end = base + len(text)
        raw = self._raw_parts
        raw.append(text)
        if len(raw) >= _RAW_PARTS_PER_BLOCK:
            self._raw_blocks.append("".join(raw))
            raw.clear()
        if end > self._size_limit:
            raise self._fail(
                JsonLimitError, f"document longer than max_size={self._max_size}", self._size_limit
            )
        state = self._state
        # Fast paths for the two commonest deltas: more text of an open string, more digits of a number.
        if (
            state == _STRING
            and '"' not in text
            and "\\" not in text
            and (text.isprintable() or _STR_RUN.fullmatch(text) is not None)
        ):
            # No quote, escape or control character. isprintable() is the quick test; it is also
            # False for characters JSON strings allow (U+00A0, U+200D in emoji), which the regex takes.
            return self._string_text(text)
        if state == _NUMBER and text.isdigit() and text.isascii():
            digit_ops = self._number_digits(text)
            if digit_ops is not None:
                return digit_ops
        ops: list[JsonOp] | None = [] if self._emit_ops else None
        self._ops = ops
        try:
            self._state = state = self._run(text, base)
            if state == _NUMBER:
                self._show_number()
            elif _STRING <= state <= _SURR_U and not self._s_key:
                self._show_string()
        except JsonParseError:
            raise
        except (ValueError, IndexError, KeyError, TypeError, OverflowError, RecursionError) as exc:
            # A bug of ours must still surface as the documented error type.
            raise self._fail(JsonParseError, f"internal parser error ({exc!r})", base) from exc
        if self._changed:
            self._changed = self._relaid = False
            top = self._top
            self._rec_top.append(top)
            self._rec_count.append(len(top.vals))
            self._rec_tail.append(self._tail)
        elif self._relaid:
            self._relaid = False
            top = self._top
            self._rec_top[-1] = top
            self._rec_count[-1] = len(top.vals)
            self._rec_tail[-1] = self._tail
        return ops if ops is not None else []

    def _string_text(self, text: str) -> list[JsonOp]:
        """Fast path: ``text`` is plain string content (no quote, backslash or control character).

        The value and its layout are unchanged (an open string is not in ``value()``), so the
        version record stays as it is.
        """
        parts = self._s_parts
        parts.append(text)
        if self._s_key:
            return []
        # A value string open at the start of a delta was announced at the end of the previous one.
        ops = [_new_op(JsonOp, (self._s_path, "append", text))] if self._emit_ops else []
        if len(parts) >= _PARTS_PER_BLOCK:
            self._s_blocks.append("".join(parts))
            parts.clear()
        self._s_emitted = len(parts)
        return ops

    def _number_digits(self, text: str) -> list[JsonOp] | None:
        """Fast path: ASCII digits after a digit of a short number; None to take the general path."""
        old = self._num
        tok = old + text
        # Digits after a digit keep the token a valid prefix, except after a leading zero.
        if not ("0" <= old[-1] <= "9" and len(tok) <= self._num_fast and old not in {"0", "-0"}):
            return None
        self._num = tok
        cur = float(tok) if "." in tok or "e" in tok or "E" in tok else int(tok)
        shown = self._tail
        if type(cur) is type(shown) and cur == shown:
            return []
        self._tail = cur
        top = self._top
        self._rec_top.append(top)
        self._rec_count.append(len(top.vals))
        self._rec_tail.append(cur)
        if not self._emit_ops:
            return []
        return [_new_op(JsonOp, (self._n_path, "add" if shown is _ABSENT else "replace", cur))]

    def finish(self) -> Any:
        """Declare the end of input and return the complete value.

        Returns:
            The top-level value (shared, read-only).

        Raises:
            JsonParseError: nothing or only part of a value was fed (or an earlier error).
        """
        if self._failed is not None:
            raise self._again()
        if self._state == _NUMBER and self._top is self._root:
            num = self._num
            match = NUM_FULL.fullmatch(num)
            if match is None:
                raise self._fail(JsonParseError, "incomplete number at end of input", self._size)
            self._ops = None
            val = self._to_number(num, match.lastindex is not None, self._size, self._num_bias)
            self._state = self._settle_number(val)
            top = self._top
            if self._changed:
                self._changed = self._relaid = False
                self._rec_top.append(top)
                self._rec_count.append(len(top.vals))
                self._rec_tail.append(_ABSENT)
            else:
                self._relaid = False
                self._rec_top[-1] = top
                self._rec_count[-1] = len(top.vals)
                self._rec_tail[-1] = _ABSENT
        if self._state != _END:
            what = "empty input" if not self._size else "unexpected end of input"
            raise self._fail(JsonParseError, what, self._size)
        return self._root.vals[0]

    def pop_done(self) -> list[tuple[list[str | int], Any]]:
        """Return ``(path, value)`` for every value closed by the last ``feed`` (needs ``track_done``).

        A top-level number closed by ``finish()`` is added to the last feed's list.

        Covers objects, arrays, scalars inside containers and the root, in closing order; the
        values are shared and read-only. Calling it again before the next feed returns ``[]``.
        """
        done = self._done
        self._done = []
        return [(list(path), val) for path, val in done]

    def value(self, version: int | None = None) -> Any:
        """Return the partial value as of ``version`` (default: now), in jiter ``partial_mode=True`` terms.

        Returns None while nothing parseable has arrived (see ``has_value``). The result is shared
        and read-only: closed sub-values are the same objects across snapshots, and asking twice for
        the same version returns the same object.

        Raises:
            ValueError: ``version`` is not between 0 and ``self.version``.
        """
        last = len(self._rec_top) - 1
        if version is None:
            v = last
        else:
            v = version
            if not 0 <= v <= last:
                raise ValueError(f"version {v} is not between 0 and {last}")
        cache = self._cache
        val = cache.get(v, _ABSENT)
        if val is _ABSENT:
            # Handed out from here on, so never changed again: the next version is a copy of its own
            val = self._build(self._record(v))
            self._remember(v, val)
        return val

    def _record(self, version: int) -> _Record:
        top = self._rec_top[version]
        count = self._rec_count[version]
        tail = self._rec_tail[version]
        if tail is _ABSENT or not top.is_obj:
            return top, count, None, tail
        # The open number's key: its entry's, once settled; else still the pending key.
        return top, count, top.keys[count] if count < len(top.keys) else self._key, tail

    def _remember(self, version: int, val: Any) -> None:
        cache = self._cache
        cache[version] = val
        if len(cache) > _CACHED_VERSIONS:
            del cache[next(iter(cache))]

    def value_trailing_strings(self) -> Any:
        """Return the current value in jiter ``partial_mode="trailing-strings"`` terms.

        Like ``value()``, plus the string being streamed (decoded up to its last complete escape).
        Built fresh on each call.
        """
        state = self._state
        if _STRING <= state <= _SURR_U and not self._s_key:
            text = "".join(self._s_blocks + self._s_parts)
            top = self._top
            if top is self._root:
                return text
            key: str | int | None = self._key if top.is_obj else None
            return self._build((top, len(top.vals), key, text))
        return self._build(self._record(len(self._rec_top) - 1))

    # ------------------------------------------------------------------ errors

    def _raw_text(self) -> str:
        return "".join(self._raw_blocks + self._raw_parts)

    def _fail(self, cls: type[JsonParseError], message: str, position: int) -> JsonParseError:
        text = self._raw_text()
        self._failed = (cls, message, position, text)
        return cls(message, position=position, text=text)

    def _again(self) -> JsonParseError:
        assert self._failed is not None  # noqa: S101  # callers checked; narrows the type for mypy
        # A fresh instance each time: re-raising one exception object keeps growing its traceback.
        cls, message, position, text = self._failed
        return cls(message, position=position, text=text)

    # ------------------------------------------------------------------ the scanner

    def _run(self, text: str, base: int) -> int:  # noqa: PLR0915  # one flat loop: no call per token
        """Scan ``text`` from the saved state; return the state at its end."""
        n = len(text)
        i = 0
        state = self._state
        # A number or literal token runs to the end of the delta unless it completes, so only a
        # delta can start inside one: handled here, ahead of the per-character dispatch.
        if state >= _NUMBER:
            i, state = self._number(text, 0, base) if state == _NUMBER else self._literal(text, 0, base)
        while i < n:
            if state == _STRING:
                j = _STR_RUN.match(text, i).end()  # type: ignore[union-attr]  # '*' always matches
                if j > i:
                    self._s_parts.append(text[i:j])
                if j == n:
                    return state
                c = text[j]
                i = j + 1
                if c == '"':
                    if self._s_key:
                        # Keys are not shown while open, so their parts are never folded into blocks.
                        self._key = "".join(self._s_parts)
                        state = _COLON
                    else:
                        state = self._end_string()
                elif c == "\\":
                    state = _ESCAPE
                else:
                    raise self._fail(JsonParseError, "control character in string", base + j)
                continue
            c = text[i]
            if c in _WS and state < _STRING:
                # Runs are short (a space after ',' and ':', indentation): a loop beats a regex call.
                i += 1
                while i < n and text[i] in _WS:
                    i += 1
                continue
            if state == _AFTER:
                is_obj = self._top.is_obj
                if c == ",":
                    state = _OBJ_KEY if is_obj else _VALUE
                elif c == ("}" if is_obj else "]"):
                    state = self._close()
                else:
                    expected = "'}'" if is_obj else "']'"
                    raise self._fail(JsonParseError, f"expected ',' or {expected}", base + i)
                i += 1
            elif state <= _ARR_FIRST:
                if c == '"':
                    # One scan: the whole string, or its first part up to the end or an escape.
                    j = _STR_RUN.match(text, i + 1).end()  # type: ignore[union-attr]  # '*' always matches
                    if j < n and text[j] == '"':
                        state = self._put(text[i + 1 : j], "add")
                        i = j + 1
                    else:
                        self._start_string(text[i + 1 : j])
                        i = j
                        state = _STRING
                elif c == "[" or c == "{":  # noqa: PLR1714  # faster than a set lookup on this path
                    state = self._open(c == "{", base + i)
                    i += 1
                elif c in "-0123456789":
                    # The longest valid number prefix: the common cases in one match.
                    j = NUM_PREFIX.match(text, i).end()  # type: ignore[union-attr]  # all parts optional
                    if j - i > _SHORT_NUMBER:
                        self._start_number("")
                        i, state = self._number(text, i, base)
                    elif j == n:
                        # Open at the end of the delta (shown then, by _show_number).
                        self._start_number(text[i:])
                        i = j
                        state = _NUMBER
                    elif "0" <= text[j - 1] <= "9" and text[j] not in _NUM_CHARS:
                        # Complete: nothing of it was shown (the tail is _ABSENT outside _NUMBER).
                        tok = text[i:j]
                        num = float(tok) if "." in tok or "e" in tok or "E" in tok else int(tok)
                        state = self._put(num, "add")
                        i = j
                    else:  # an error, or "-Infinity"
                        self._start_number("")
                        i, state = self._number(text, i, base)
                elif c in _LITERALS:
                    word, self._lit_val = _LITERALS[c]
                    self._lit = word
                    self._lit_n = 0
                    i, state = self._literal(text, i, base)
                elif c == "]" and state == _ARR_FIRST:
                    state = self._close()
                    i += 1
                else:
                    top = self._top
                    after_comma = c == "]" and top is not self._root and not top.is_obj
                    what = "trailing comma" if after_comma else "expected value"
                    raise self._fail(JsonParseError, what, base + i)
            elif state == _COLON:
                if c != ":":
                    raise self._fail(JsonParseError, "expected ':'", base + i)
                state = _VALUE
                i += 1
            elif state <= _OBJ_KEY:
                if c == '"':
                    j = _STR_RUN.match(text, i + 1).end()  # type: ignore[union-attr]  # '*' always matches
                    if j < n and text[j] == '"':
                        self._key = text[i + 1 : j]
                        i = j + 1
                        state = _COLON
                    else:
                        # A key is not shown while open: no blocks, no ops to track.
                        self._s_parts = [text[i + 1 : j]] if j > i + 1 else []
                        self._s_key = True
                        i = j
                        state = _STRING
                elif c == "}" and state == _OBJ_FIRST:
                    state = self._close()
                    i += 1
                else:
                    what = "trailing comma" if c == "}" else "object key must be a string"
                    raise self._fail(JsonParseError, what, base + i)
            elif state == _ESCAPE:
                esc = _ESCAPES.get(c)
                if esc is not None:
                    self._s_parts.append(esc)
                    state = _STRING
                elif c == "u":
                    self._hex = ""
                    state = _HEX
                else:
                    raise self._fail(JsonParseError, "invalid escape", base + i)
                i += 1
            elif state == _HEX:
                i, state = self._hex_digits(text, i, base)
            elif state == _SURR_BS:
                if c != "\\":
                    raise self._fail(
                        JsonParseError, "high surrogate not followed by a low surrogate", base + i
                    )
                state = _SURR_U
                i += 1
            elif state == _SURR_U:
                if c != "u":
                    raise self._fail(
                        JsonParseError, "high surrogate not followed by a low surrogate", base + i
                    )
                self._hex = ""
                state = _HEX
                i += 1
            else:  # _END
                raise self._fail(JsonParseError, "trailing characters after the JSON value", base + i)
        return state

    def _show_number(self) -> None:
        """At the end of a delta: the open number's value as of now, and its op."""
        top = self._top
        num = self._num
        # The token is a valid prefix (checked as it grew), so it is a number iff it ends in a digit.
        if "0" <= num[-1] <= "9":
            is_float = "." in num or "e" in num or "E" in num
            if len(num) <= _SHORT_NUMBER and not self._num_bias:
                cur: Any = float(num) if is_float else int(num)
            else:
                cur = self._to_number(num, is_float, self._size, self._num_bias)
        else:
            cur = _ABSENT
        shown = self._tail
        if cur is not shown and (type(cur) is not type(shown) or cur != shown):
            self._tail = cur
            self._changed = True
            ops = self._ops
            if ops is not None:
                path = self._n_path
                if cur is not _ABSENT:
                    ops.append(_new_op(JsonOp, (path, "add" if shown is _ABSENT else "replace", cur)))
                elif top.is_obj and self._key in top.obj:
                    # An earlier duplicate key shows again.
                    ops.append(_new_op(JsonOp, (path, "replace", top.obj[self._key])))
                else:
                    ops.append(_new_op(JsonOp, (path, "remove", None)))

    def _show_string(self) -> None:
        """At the end of a delta: the op for the open string's new text; fold small parts into blocks."""
        parts = self._s_parts
        ops = self._ops
        if ops is not None:
            emitted = self._s_emitted
            if not self._s_announced:
                self._s_announced = True
                self._s_path = self._child_path(self._top)
                ops.append(_new_op(JsonOp, (self._s_path, "add", "".join(parts))))
            elif emitted < len(parts):
                piece = parts[-1] if emitted == len(parts) - 1 else "".join(parts[emitted:])
                ops.append(_new_op(JsonOp, (self._s_path, "append", piece)))
        if len(parts) >= _PARTS_PER_BLOCK:
            self._s_blocks.append("".join(parts))
            parts.clear()
        self._s_emitted = len(parts)

    # ------------------------------------------------------------------ containers and scalars

    def _child_path(self, top: _Frame) -> Path:
        """Path of the value being added to ``top`` (the next entry)."""
        if top is self._root:
            return ()
        return (*top.path, self._key if top.is_obj else len(top.vals))

    def _put(self, val: Any, kind: OpKind | None, payload: Any = _ABSENT, path: Path | None = None) -> int:
        """Append a closed scalar to the deepest open container; emit op ``kind`` unless None.

        ``path``: the value's path, when already known (a string or number shown while open).
        """
        top = self._top
        key: str | int
        if top.is_obj:
            key = name = self._key
            top.obj[name] = val
            top.keys.append(name)
        else:
            key = len(top.vals)
        top.vals.append(val)
        self._changed = True
        if self._paths:
            if path is None:
                path = () if top is self._root else (*top.path, key)
            ops = self._ops
            if kind is not None and ops is not None:
                ops.append(_new_op(JsonOp, (path, kind, val if payload is _ABSENT else payload)))
            if self._track_done:
                self._done.append((path, val))
        return _END if top is self._root else _AFTER

    def _open(self, is_obj: bool, position: int) -> int:
        parent = self._top
        depth = self._depth + 1
        if depth > self._max_depth:
            raise self._fail(JsonLimitError, f"nesting deeper than max_depth={self._max_depth}", position)
        self._depth = depth
        key: str | int
        if parent.is_obj:
            key = self._key
            parent.keys.append(key)
        else:
            key = len(parent.vals)
        slot = len(parent.vals)
        path: Path = () if parent is self._root or not self._paths else (*parent.path, key)
        child = _Frame(is_obj, parent, slot, key, path)
        if parent.is_obj:
            parent.obj[key] = child.obj
        parent.vals.append(child.obj)
        self._top = child
        self._changed = True
        ops = self._ops
        if ops is not None:
            # A fresh empty container: the live one keeps changing and must not leak into ops.
            ops.append(_new_op(JsonOp, (path, "add", {} if is_obj else [])))
        return _OBJ_FIRST if is_obj else _ARR_FIRST

    def _close(self) -> int:
        top = self._top
        parent = top.parent
        assert parent is not None  # noqa: S101  # the virtual root is never closed; narrows for mypy
        self._top = parent
        self._depth -= 1
        self._relaid = True
        if self._track_done:
            self._done.append((top.path, top.obj))
        return _END if parent is self._root else _AFTER

    def _start_string(self, first: str) -> None:
        """Open a value string whose text starts with ``first`` (keys need only ``_s_parts``)."""
        self._s_parts = [first] if first else []
        self._s_blocks = []
        self._s_emitted = 0
        self._s_key = False
        self._s_announced = False

    def _end_string(self) -> int:
        parts = self._s_parts
        blocks = self._s_blocks
        if blocks:
            text = "".join(blocks + parts)  # one join: no intermediate copy of a long string
        elif len(parts) == 1:
            text = parts[0]
        else:
            text = "".join(parts)
        if not self._s_announced:
            return self._put(text, "add")
        emitted = self._s_emitted
        if emitted < len(parts):
            return self._put(text, "append", "".join(parts[emitted:]), self._s_path)
        return self._put(text, None, _ABSENT, self._s_path)

    def _hex_digits(self, text: str, i: int, base: int) -> tuple[int, int]:
        r"""Consume digits of a ``\uXXXX`` escape; decode it once all four are in."""
        chunk = text[i : i + 4 - len(self._hex)]
        good = _HEX_RUN.match(chunk).end()  # type: ignore[union-attr]  # '*' always matches
        if good < len(chunk):
            raise self._fail(JsonParseError, "invalid \\u escape", base + i + good)
        digits = self._hex + chunk
        i += len(chunk)
        if len(digits) < 4:
            self._hex = digits
            return i, _HEX
        code = int(digits, 16)
        high = self._high
        if high:
            if not 0xDC00 <= code <= 0xDFFF:
                raise self._fail(
                    JsonParseError, "high surrogate not followed by a low surrogate", base + i - 1
                )
            self._high = 0
            self._s_parts.append(chr(0x10000 + ((high - 0xD800) << 10) + (code - 0xDC00)))
            return i, _STRING
        if 0xD800 <= code <= 0xDBFF:
            self._high = code
            return i, _SURR_BS
        if 0xDC00 <= code <= 0xDFFF:
            raise self._fail(JsonParseError, "lone low surrogate", base + i - 1)
        self._s_parts.append(chr(code))
        return i, _STRING

    def _literal(self, text: str, i: int, base: int) -> tuple[int, int]:
        """Match ``true``/``false``/``null``/``NaN``/``Infinity``/``-Infinity``, possibly split."""
        word = self._lit
        done = self._lit_n
        chunk = text[i : i + len(word) - done]
        if not word.startswith(chunk, done):
            for offset, char in enumerate(chunk):  # pragma: no branch  # a mismatch exists
                if char != word[done + offset]:
                    raise self._fail(JsonParseError, f"invalid literal, expected {word!r}", base + i + offset)
        done += len(chunk)
        i += len(chunk)
        if done < len(word):
            self._lit_n = done
            return i, _LITERAL
        return i, self._put(self._lit_val, "add")

    # ------------------------------------------------------------------ numbers

    def _start_number(self, tok: str) -> None:
        """Open a number token starting with ``tok`` (a valid prefix, or empty for _number to fill)."""
        self._num = tok
        self._num_bias = 0
        self._num_limit = COMPACT_ABOVE
        self._num_fast = _SHORT_NUMBER
        self._n_path = self._child_path(self._top) if self._paths else ()
        self._tail = _ABSENT

    def _to_number(self, tok: str, is_float: bool, position: int, bias: int) -> int | float:
        excess = int_digits_excess(tok)
        if excess >= 0:
            raise self._fail(
                JsonLimitError, "number out of range (more than 4300 integer digits)", position + excess
            )
        try:
            return convert(tok, is_float, bias)
        except ValueError:
            # Only when the application lowered sys.set_int_max_str_digits below jiter's bound.
            raise self._fail(JsonLimitError, "integer too long for this interpreter", position) from None

    def _number(self, text: str, i: int, base: int) -> tuple[int, int]:
        """Continue the open number token (``self._num``) with ``text[i:]``."""
        j = NUM_RUN.match(text, i).end()  # type: ignore[union-attr]  # '*' always matches
        old = self._num
        new = text[i:j]
        tok = old + new
        # Digits after a digit keep a valid prefix valid, except after a leading zero ("0", "-0").
        # NUM_RUN only takes ASCII, so isdigit() means [0-9] here.
        still_valid = not new or (new.isdigit() and "0" <= old[-1:] <= "9" and old not in {"0", "-0"})
        if j == len(text):
            if not still_valid:
                valid = NUM_PREFIX.match(tok).end()  # type: ignore[union-attr]  # all parts optional
                if valid < len(tok):
                    raise self._fail(JsonParseError, "invalid number", base + i + valid - len(old))
            excess = int_digits_excess(tok) if len(tok) > MAX_INT_DIGITS else -1
            if excess >= 0:
                position = base + i + excess - len(old)
                raise self._fail(
                    JsonLimitError, "number out of range (more than 4300 integer digits)", position
                )
            if len(tok) > self._num_limit:
                tok, self._num_bias = compact(tok, self._num_bias)
                # Compact again after a few hundred more characters: amortised O(1) per character.
                self._num_limit = len(tok) + COMPACT_ABOVE // 2
                self._num_fast = 0  # rare: the general path handles compacted tokens
            self._num = tok
            return j, _NUMBER
        if tok == "-" and text[j] == "I":
            self._lit = "-Infinity"
            self._lit_n = 1
            self._lit_val = -math.inf
            return self._literal(text, j, base)
        bias = self._num_bias
        if still_valid and "0" <= tok[-1] <= "9" and len(tok) <= _SHORT_NUMBER and not bias:
            # A valid prefix ending in a digit is a complete number.
            val: int | float = float(tok) if "." in tok or "e" in tok or "E" in tok else int(tok)
            return j, self._settle_number(val)
        match = NUM_FULL.fullmatch(tok)
        if match is None:
            valid = NUM_PREFIX.match(tok).end()  # type: ignore[union-attr]  # all parts optional
            position = base + i + valid - len(old) if valid < len(tok) else base + j
            raise self._fail(JsonParseError, "invalid number", position)
        val = self._to_number(tok, match.lastindex is not None, base + i - len(old), bias)
        return j, self._settle_number(val)

    def _settle_number(self, val: int | float) -> int:
        """Close a number: it becomes an entry; its op depends on what was last shown of it."""
        shown = self._tail
        if shown is _ABSENT:
            return self._put(val, "add")
        self._tail = _ABSENT
        if type(val) is type(shown) and val == shown:
            # Already visible with this value: this alone does not change the snapshot.
            changed = self._changed
            state = self._put(val, None, _ABSENT, self._n_path)
            self._changed = changed
            self._relaid = True
            return state
        return self._put(val, "replace", _ABSENT, self._n_path)

    # ------------------------------------------------------------------ snapshots

    def _build(self, rec: _Record) -> Any:
        """Materialise ``rec``: the open containers copied afresh, the closed ones shared.

        Work proportional to the entries of the open containers, never to the text: a closed
        sub-value is the same object in every snapshot (it is never changed once closed). From the
        deepest open container up, each copy goes into its parent's.
        """
        frame, entries, key, child = rec
        root = self._root
        if frame is root:
            if entries:
                return root.vals[0]
            return None if child is _ABSENT else child
        while True:
            if frame.is_obj:
                if entries == len(frame.keys) and len(frame.obj) == entries:
                    copy: Any = frame.obj.copy()
                else:
                    copy = dict(zip(frame.keys[:entries], frame.vals[:entries], strict=True))
                if child is not _ABSENT:
                    copy[key] = child
            else:
                copy = frame.vals[:entries]
                if child is not _ABSENT:
                    copy.append(child)
            parent = frame.parent
            if parent is root or parent is None:
                return copy
            # the parent as of this version: its entries before this container, this copy last
            child, key, entries, frame = copy, frame.key, frame.slot, parent
