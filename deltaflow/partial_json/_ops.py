"""Edit operations emitted by the incremental parser, and their reference replay."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, NamedTuple

__all__ = ["JsonOp", "OpKind", "apply_ops"]

OpKind = Literal["add", "append", "replace", "remove"]


class JsonOp(NamedTuple):
    """One change to the partial value, in jiter's ``partial_mode="trailing-strings"`` view.

    A NamedTuple because it is the cheapest immutable record to build (measured: about half the cost
    of a frozen slotted dataclass), and the parser builds one per change.

    Attributes:
        path: keys and indexes from the root to the changed value; ``()`` is the root itself.
        op: ``"add"`` sets a new object key or array element (or the root) to ``value``: a string
            being streamed arrives with the text known so far, a container as an empty ``{}``/``[]``,
            a number as soon as its digits parse. On an object, ``add`` of an existing key overwrites
            it (JSON duplicate keys: the last one wins, the first position is kept).
            ``"append"`` appends the text ``value`` to the string at ``path``.
            ``"replace"`` sets the scalar at ``path`` to ``value`` (a number growing: 1, 12, 12.5).
            ``"remove"`` deletes ``path``: a number that parsed stopped parsing (``12`` became ``12.``)
            and reappears with a later ``add``. ``value`` is None.
        value: the payload described above; never shared with the parser's own state.
    """

    path: tuple[str | int, ...]
    op: OpKind
    value: Any


def apply_ops(root: Any, ops: Iterable[JsonOp]) -> Any:
    """Replay ``ops`` onto ``root`` (the value so far, None for nothing yet) and return the new root.

    This is the reference meaning of the ops: replaying every op a parser emitted, in order, yields
    ``jiter.from_json(text, partial_mode="trailing-strings")`` for the text fed so far. Containers in
    ``root`` are modified in place.

    Args:
        root: the value built by earlier ops, or None before the first op.
        ops: the ops to apply, in emission order.

    Returns:
        The new root value (a different object when an op targets the root itself).
    """
    for path, kind, value in ops:
        if not path:
            root = None if kind == "remove" else root + value if kind == "append" else value
            continue
        parent = root
        for step in path[:-1]:
            parent = parent[step]
        last = path[-1]
        if kind == "remove":
            del parent[last]
        elif kind == "append":
            parent[last] += value
        elif isinstance(parent, list) and last == len(parent):
            parent.append(value)
        else:
            parent[last] = value
    return root
