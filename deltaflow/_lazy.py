"""Lazy fields: a model field computed on first read, as of the moment the model was made.

This module is the whole mechanism. An event whose ``snapshot`` (or ``parsed``, ``arguments``...)
would cost work proportional to the message is made with that field *pending*: absent from the
model's ``__dict__``, with a thunk in the model's own ``_pending`` slot (one slot, set once: the
thunks by field name, and the lock described below). Python calls
``__getattr__`` only for names it cannot find, so reading a computed or ordinary field costs
nothing extra; the first read of a pending field runs its thunk, stores the value in ``__dict__``
(where later reads find it) and drops the thunk. Thunks capture the position they were made at (a
chunk number, a character count), so a value reads "as of its own event" however late it is read.

A thunk may run on another thread than the one that feeds the stream (``fan_out``'s queued sinks):
an event may carry the producing chain's lock, taken while its thunks run. The chain holds the
same lock while a chunk's events are made.

pydantic sees an ordinary model: ``model_dump``, ``==``, ``repr`` and copies compute the pending
fields first. Models are built without validation (``build``): their fields must already hold
values of the declared types. ``build`` constructs through pydantic's own state protocol
(``__setstate__``, what ``copy`` and ``pickle`` rebuild a model with), handing it the state
``model_construct`` would make: deltaflow writes none of pydantic's slots itself. It is not
``model_construct`` because that one walks every field's aliases and defaults on each call: ten
times the cost of an event, on every event (``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self, TypeAlias, TypeVar

from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer

__all__ = [
    "LazyModel",
    "Thunk",
    "build",
    "compute",
    "derive",
    "refine",
    "set_pending",
    "with_pending",
]

Thunk: TypeAlias = Callable[[], Any] | tuple[Callable[[Any], Any], Any]
"""How a pending field is computed: a zero-argument callable, or ``(function, argument)`` (cheaper to
make than a ``functools.partial``, which matters on every chunk)."""

ModelT = TypeVar("ModelT", bound="LazyModel")

_new = object.__new__
_SLOT_NAMES = frozenset({"_pending"})


def compute(thunk: Thunk) -> Any:
    """Run a thunk."""
    if type(thunk) is tuple:
        function, argument = thunk
        return function(argument)
    return thunk()  # type: ignore[operator]  # the callable form


class LazyModel(BaseModel):
    """A pydantic model some of whose fields may be pending (see the module's docstring)."""

    # a plain slot of this class, not a pydantic private attribute: ``(thunks, lock)``, set by ``build``
    __slots__ = ("_pending",)

    if not TYPE_CHECKING:  # hidden from type checkers, as pydantic hides its own: a misspelt
        # field must stay an error for them

        def __getattr__(self, name: str) -> Any:
            # runs only for names not found: a pending field (the usual case), or pydantic's own
            try:
                pending, lock = _get_pending(self)
            except AttributeError:
                pending = lock = None
            thunk = pending.get(name) if pending else None
            if thunk is not None:
                if lock is None:
                    value = compute(thunk)
                else:
                    with lock:
                        value = compute(thunk)
                # stored before the thunk is dropped: a reader racing on another thread recomputes
                self.__dict__[name] = value
                pending.pop(name, None)  # type: ignore[union-attr]
                return value
            return super().__getattr__(name)  # type: ignore[misc]

    def pending_fields(self) -> frozenset[str]:
        """The names of the fields not computed yet."""
        try:
            return frozenset(_get_pending(self)[0])
        except AttributeError:
            return frozenset()

    def materialize(self) -> Self:
        """Compute every pending field now; returns the model itself."""
        for name in self.pending_fields():
            getattr(self, name)
        return self

    def evolve(self, fields: dict[str, Any] | None = None, lazy: dict[str, Thunk] | None = None) -> Self:
        """A copy with some fields replaced (``fields``) or made pending (``lazy``).

        The fields still pending in this model stay pending in the copy (each computes its own), and
        the copy keeps this model's lock. This is how an operator derives an event without
        computing what nobody has read yet.
        """
        return derive(self, fields, lazy)

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> Any:
        return handler(self.materialize())

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LazyModel):
            return NotImplemented
        return type(self) is type(other) and self.materialize().__dict__ == other.materialize().__dict__

    __hash__ = None  # type: ignore[assignment]

    def __repr_args__(self) -> Any:
        return super(LazyModel, self.materialize()).__repr_args__()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _SLOT_NAMES:
            raise AttributeError(f"{type(self).__name__}.{name} is read-only")
        super().__setattr__(name, value)

    def __delattr__(self, name: str) -> None:
        if name in _SLOT_NAMES:
            raise AttributeError(f"{type(self).__name__}.{name} is read-only")
        super().__delattr__(name)

    def __copy__(self) -> Self:
        # pending fields are computed first: a copy and its original must not share the thunks
        return super(LazyModel, self.materialize()).__copy__()

    def __deepcopy__(self, memo: dict[int, Any] | None = None) -> Self:
        return build(type(self), copy.deepcopy(self.materialize().__dict__, memo))

    def __getstate__(self) -> dict[Any, Any]:
        return super(LazyModel, self.materialize()).__getstate__()


_get_pending = LazyModel.__dict__["_pending"].__get__
_set_pending = LazyModel.__dict__["_pending"].__set__
_restore = BaseModel.__setstate__
_FIELDS_SET: dict[type[LazyModel], set[str]] = {}
"""The fields set of the frozen models ``build`` makes, one per class: nothing changes it in place
(pydantic's copies copy it before adding to it; a frozen model refuses ``setattr``)."""


def _fields_set(cls: type[LazyModel]) -> set[str]:
    fields_set = set(cls.__pydantic_fields__)
    if cls.model_config.get("frozen"):
        _FIELDS_SET[cls] = fields_set
        return fields_set
    return set(fields_set)  # a set of its own per model: a mutable one adds to it on setattr


def _pending_of(model: LazyModel) -> tuple[dict[str, Thunk] | None, Any]:
    try:
        return _get_pending(model)  # type: ignore[no-any-return]
    except AttributeError:  # a model built by pydantic, not by ``build``
        return None, None


def build(
    cls: type[ModelT], fields: dict[str, Any], lazy: dict[str, Thunk] | None = None, lock: Any = None
) -> ModelT:
    """A model of ``cls`` without validation: ``fields`` as they are, ``lazy`` pending.

    This is the pipeline's fast path, called for every event: ``fields`` must hold every field
    that is not in ``lazy``, with a value of the declared type. ``lock``, if given, is taken while
    a pending field is computed.
    """
    model = _new(cls)
    # the state model_construct would make: every field counts as set (the pending ones are, when
    # read), no extra, no private attributes
    _restore(
        model,
        {
            "__dict__": fields,
            "__pydantic_fields_set__": _FIELDS_SET.get(cls) or _fields_set(cls),
            "__pydantic_extra__": None,
            "__pydantic_private__": None,
        },
    )
    if lazy:
        _set_pending(model, (lazy, lock))
    return model


def derive(
    model: ModelT, fields: dict[str, Any] | None = None, lazy: dict[str, Thunk] | None = None
) -> ModelT:
    """A copy of ``model`` with ``fields`` replaced and ``lazy`` made pending (see ``LazyModel.evolve``)."""
    new_fields = model.__dict__.copy()
    pending, lock = _pending_of(model)
    new_lazy = pending.copy() if pending else {}
    if fields:
        new_fields.update(fields)
        for name in fields:
            new_lazy.pop(name, None)
    if lazy:
        for name in lazy:
            new_fields.pop(name, None)
        new_lazy.update(lazy)
    return build(type(model), new_fields, new_lazy, lock)


def with_pending(model: ModelT, name: str, thunk: Thunk) -> ModelT:
    """``derive(model, lazy={name: thunk})``: one field made pending, on a copy."""
    return derive(model, lazy={name: thunk})


def _read(of: tuple[LazyModel, str]) -> Any:
    model, name = of
    return getattr(model, name)


def _value(value: Any) -> Any:
    return value


def set_pending(model: ModelT, name: str, thunk: Thunk) -> ModelT:
    """Make field ``name`` of ``model`` pending, in place: only for a model nobody else holds yet.

    That is, one made in the same fused chain (``deltaflow.operators._stage``).
    """
    model.__dict__.pop(name, None)
    try:
        _get_pending(model)[0][name] = thunk
    except AttributeError:  # no pending record yet (built with no lazy field, so with no lock either)
        _set_pending(model, ({name: thunk}, None))
    return model


def refine(
    model: ModelT, name: str, function: Callable[[Any], Any], argument: Any, *, in_place: bool
) -> ModelT:
    """``model`` whose field ``name`` becomes ``function((thunk of the former value, argument))``.

    ``function`` computes the former value with ``compute`` on that thunk when it needs it: nothing
    is computed until the field is read. ``in_place``: ``model`` itself, only for a model nobody
    else holds yet (``set_pending``); else a copy, the model as it was left to whoever holds it.
    """
    if not in_place:
        return with_pending(model, name, (function, ((_read, (model, name)), argument)))
    try:
        pending = _get_pending(model)[0]
    except AttributeError:  # no pending record yet (built with no lazy field, so with no lock either)
        pending = {}
        _set_pending(model, (pending, None))
    former = pending.get(name)
    if former is None:  # computed already, or never pending: its value is the former one
        former = (_value, model.__dict__.pop(name))
    pending[name] = (function, (former, argument))
    return model
