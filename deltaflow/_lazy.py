"""Lazy fields: a model field computed on first read, as of the moment the model was made.

This module is the whole mechanism. An event whose ``snapshot`` (or ``parsed``, ``arguments``...)
would cost work proportional to the message is made with that field *pending*: absent from the
model's ``__dict__``, with a thunk in the model's own ``_pending`` slot. Python calls
``__getattr__`` only for names it cannot find, so reading a computed or ordinary field costs
nothing extra; the first read of a pending field runs its thunk, stores the value in ``__dict__``
(where later reads find it) and drops the thunk. Thunks capture the position they were made at (a
chunk number, a character count), so a value reads "as of its own event" however late it is read.

A thunk may run on another thread than the one that feeds the stream (``fan_out``'s queued sinks):
an event may carry the producing chain's lock, taken while its thunks run. The chain holds the
same lock while a chunk's events are made.

pydantic sees an ordinary model: ``model_dump``, ``==``, ``repr`` and copies compute the pending
fields first. Models are built without validation (``build``): their fields must already hold
values of the declared types. The pydantic slots a model built so has not set yet
(``__pydantic_fields_set__``, ``__pydantic_extra__``, ``__pydantic_private__``) are filled in on
first use, with what ``model_construct`` would have put there.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Self, TypeAlias, TypeVar

from pydantic import BaseModel, SerializerFunctionWrapHandler, model_serializer

__all__ = ["LazyModel", "Thunk", "build", "derive"]

Thunk: TypeAlias = Callable[[], Any] | tuple[Callable[[Any], Any], Any]
"""How a pending field is computed: a zero-argument callable, or ``(function, argument)`` (cheaper to
make than a ``functools.partial``, which matters on every chunk)."""

ModelT = TypeVar("ModelT", bound="LazyModel")

_new = object.__new__
_set = object.__setattr__
_SLOT_NAMES = frozenset({"_pending", "_lock"})


def _compute(thunk: Thunk) -> Any:
    if type(thunk) is tuple:
        function, argument = thunk
        return function(argument)
    return thunk()  # type: ignore[operator]  # the callable form


class LazyModel(BaseModel):
    """A pydantic model some of whose fields may be pending (see the module's docstring)."""

    # plain slots of this class, not pydantic private attributes: set once by ``build``
    __slots__ = ("_lock", "_pending")

    if not TYPE_CHECKING:  # hidden from type checkers, as pydantic hides its own: a misspelt
        # field must stay an error for them

        def __getattr__(self, name: str) -> Any:
            # runs only for names not found: a pending field (the usual case), or a pydantic slot
            # that ``build`` left for later
            try:
                pending: dict[str, Thunk] | None = _get_pending(self)
            except AttributeError:
                pending = None
            thunk = pending.get(name) if pending else None
            if thunk is not None:
                lock = _lock_of(self)
                if lock is None:
                    value = _compute(thunk)
                else:
                    with lock:
                        value = _compute(thunk)
                # stored before the thunk is dropped: a reader racing on another thread recomputes
                self.__dict__[name] = value
                pending.pop(name, None)  # type: ignore[union-attr]
                return value
            if name == "__pydantic_fields_set__":
                # a set of its own per model: pydantic updates it in model_copy(update=...)
                fields_set = set(type(self).__pydantic_fields__)
                _set(self, name, fields_set)
                return fields_set
            if name in ("__pydantic_extra__", "__pydantic_private__"):
                _set(self, name, None)
                return None
            return super().__getattr__(name)  # type: ignore[misc]

    def pending_fields(self) -> frozenset[str]:
        """The names of the fields not computed yet."""
        try:
            return frozenset(_get_pending(self) or ())
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
_set_lock = LazyModel.__dict__["_lock"].__set__
_get_lock = LazyModel.__dict__["_lock"].__get__


def _lock_of(model: LazyModel) -> Any:
    try:
        return _get_lock(model)
    except AttributeError:
        return None


def build(
    cls: type[ModelT], fields: dict[str, Any], lazy: dict[str, Thunk] | None = None, lock: Any = None
) -> ModelT:
    """A model of ``cls`` without validation: ``fields`` as they are, ``lazy`` pending.

    This is the pipeline's fast path, called for every event: ``fields`` must hold every field
    that is not in ``lazy``, with a value of the declared type. ``lock``, if given, is taken while
    a pending field is computed.
    """
    model = _new(cls)
    _set(model, "__dict__", fields)
    if lazy:
        _set_pending(model, lazy)
        if lock is not None:
            _set_lock(model, lock)
    return model


def derive(
    model: ModelT, fields: dict[str, Any] | None = None, lazy: dict[str, Thunk] | None = None
) -> ModelT:
    """A copy of ``model`` with ``fields`` replaced and ``lazy`` made pending (see ``LazyModel.evolve``)."""
    new_fields = dict(model.__dict__)
    try:
        pending = _get_pending(model)
    except AttributeError:
        pending = None
    new_lazy = dict(pending) if pending else {}
    if fields:
        for name in fields:
            new_lazy.pop(name, None)
        new_fields.update(fields)
    if lazy:
        for name in lazy:
            new_fields.pop(name, None)
        new_lazy.update(lazy)
    return build(type(model), new_fields, new_lazy, _lock_of(model))
