"""The models of a ``response_format`` type by JSON path: ``content.parsed.done`` values validated into them.

Reflection on the type only (pydantic fields and their validation aliases, dataclasses, TypedDicts,
unions, ``Annotated``, aliases, containers), worked out lazily per position the content reaches.
"""

from __future__ import annotations

import collections
import collections.abc
import dataclasses
import json
import types
import typing
from typing import Any, Final

from pydantic import AliasChoices, AliasPath, BaseModel, TypeAdapter, ValidationError

__all__ = ["PathItem", "SubModels"]

_UNSET: Any = object()
PathItem = str | int

_SEQUENCES: Final = frozenset(
    {
        list,
        set,
        frozenset,
        collections.deque,
        collections.abc.Sequence,
        collections.abc.MutableSequence,
        collections.abc.Set,
        collections.abc.MutableSet,
        collections.abc.Collection,
        collections.abc.Iterable,
    }
)
_MAPPINGS: Final = frozenset(
    {
        dict,
        collections.OrderedDict,
        collections.defaultdict,
        collections.abc.Mapping,
        collections.abc.MutableMapping,
    }
)
# nesting of Annotated / unions / aliases unwrapped before giving up (guards self-referencing aliases)
_MAX_UNWRAP: Final = 32


def _flatten(annotation: Any, out: list[Any], depth: int = 0) -> None:
    """The alternatives an annotation allows: unions split, ``Annotated`` and aliases unwrapped."""
    if depth > _MAX_UNWRAP:
        return
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        _flatten(typing.get_args(annotation)[0], out, depth + 1)
    elif origin is typing.Union or origin is types.UnionType:
        for argument in typing.get_args(annotation):
            _flatten(argument, out, depth + 1)
    elif type(annotation).__name__ == "TypeAliasType":  # ``type X = ...`` (typing or typing_extensions)
        _flatten(annotation.__value__, out, depth + 1)
    elif isinstance(annotation, typing.NewType):
        _flatten(annotation.__supertype__, out, depth + 1)
    elif annotation not in out:
        out.append(annotation)


def _is_model(annotation: Any) -> bool:
    """A type a JSON object validates into: a pydantic model or a dataclass."""
    return isinstance(annotation, type) and (
        issubclass(annotation, BaseModel) or dataclasses.is_dataclass(annotation)
    )


def _field_keys(name: str, field: Any, config: Any) -> list[str]:
    """The JSON keys pydantic reads a field from (its validation alias, or its name)."""
    keys: list[str] = []
    by_alias = config.get("validate_by_alias", True)
    if by_alias:
        alias = field.validation_alias if field.validation_alias is not None else field.alias
        if alias is None:
            keys.append(name)
        for choice in alias.choices if isinstance(alias, AliasChoices) else (alias,):
            if isinstance(choice, str):
                keys.append(choice)
            elif isinstance(choice, AliasPath) and len(choice.path) == 1 and isinstance(choice.path[0], str):
                keys.append(choice.path[0])
            # a longer AliasPath reads the field from deeper down: not mapped (arrives unvalidated)
    if not by_alias or config.get("validate_by_name") or config.get("populate_by_name"):
        keys.append(name)
    return keys


def _object_fields(annotation: Any) -> list[tuple[list[str], Any]]:
    """(JSON keys, annotation) of each field of a model, dataclass or TypedDict; [] otherwise."""
    if not isinstance(annotation, type):
        return []
    fields = getattr(annotation, "__pydantic_fields__", None)
    if isinstance(fields, dict):  # pydantic models and pydantic dataclasses
        config = getattr(annotation, "model_config", None) or getattr(annotation, "__pydantic_config__", {})
        return [(_field_keys(name, field, config), field.annotation) for name, field in fields.items()]
    if dataclasses.is_dataclass(annotation) or typing.is_typeddict(annotation):
        try:
            hints = typing.get_type_hints(annotation)
        except Exception:  # noqa: BLE001 - unresolvable forward references: nothing to map
            return []
        names = (
            [field.name for field in dataclasses.fields(annotation)]
            if dataclasses.is_dataclass(annotation)
            else list(hints)
        )
        return [([name], hints[name]) for name in names if name in hints]
    return []


class _Shape:
    """What the ``response_format`` type allows at one JSON position.

    Validates a closed object found there into the model(s) allowed, and leads to the shapes below
    it. Those are worked out on first use, so recursive models cost nothing up front and only the
    positions the content reaches are ever looked at.
    """

    __slots__ = (
        "adapter",
        "annotations",
        "any_item",
        "any_key",
        "expanded",
        "items",
        "keys",
        "model",
        "owner",
    )

    def __init__(self, owner: SubModels, annotations: tuple[Any, ...]) -> None:
        self.owner = owner
        self.annotations = annotations
        models = [annotation for annotation in annotations if _is_model(annotation)]
        # a lone pydantic model validates directly; anything else through a TypeAdapter of the union
        # of everything allowed here, so that pydantic's smart union picks as in the final value
        self.model: type[BaseModel] | None = None
        self.adapter: TypeAdapter[Any] | None = None
        if len(annotations) == 1 and models and issubclass(models[0], BaseModel):
            self.model = models[0]
        elif models:
            self.adapter = _UNSET
        self.expanded = False
        self.keys: dict[str, _Shape | None] = {}
        self.any_key: _Shape | None = None
        self.items: dict[int, _Shape | None] = {}
        self.any_item: _Shape | None = None

    def child(self, step: PathItem) -> _Shape | None:
        """The shape at key or index ``step`` below this one, None where nothing is known."""
        if not self.expanded:
            self._expand()
        if type(step) is str:
            shape = self.keys.get(step)
            return shape if shape is not None else self.any_key
        shape = self.items.get(step)  # type: ignore[arg-type]  # not a str: an array index
        return shape if shape is not None else self.any_item

    def _expand(self) -> None:
        self.expanded = True
        keys: dict[str, list[Any]] = {}
        items: dict[int, list[Any]] = {}
        any_key: list[Any] = []
        any_item: list[Any] = []
        for annotation in self.annotations:
            for names, field_annotation in _object_fields(annotation):
                for name in names:
                    keys.setdefault(name, []).append(field_annotation)
            origin = typing.get_origin(annotation)
            arguments = typing.get_args(annotation)
            if origin in _MAPPINGS and len(arguments) == 2:
                any_key.append(arguments[1])
            elif origin is tuple and arguments:
                if len(arguments) == 2 and arguments[1] is Ellipsis:
                    any_item.append(arguments[0])
                else:
                    for position, argument in enumerate(arguments):
                        items.setdefault(position, []).append(argument)
            elif origin in _SEQUENCES and arguments:
                any_item.append(arguments[0])
        # in a union of a model and a mapping, a key may be either's
        owner = self.owner
        self.keys = {name: owner.shape([*found, *any_key]) for name, found in keys.items()}
        self.any_key = owner.shape(any_key)
        self.items = {position: owner.shape([*found, *any_item]) for position, found in items.items()}
        self.any_item = owner.shape(any_item)

    def validate(self, value: dict[str, Any]) -> Any:
        """``value`` validated into the model allowed here; unchanged when none fits."""
        model = self.model
        if model is not None:
            try:
                return model.model_validate(value)
            except ValidationError:
                pass
            try:
                # python mode is stricter for some types (strict models: str to datetime, list to
                # tuple); JSON mode is what the final validation uses
                return model.model_validate_json(json.dumps(value))
            except (ValidationError, ValueError, TypeError):
                return value
        adapter = self.adapter
        if adapter is None:
            return value
        if adapter is _UNSET:
            union: Any = typing.Union[tuple(self.annotations)]  # noqa: UP007 - built from a tuple
            adapter = self.adapter = TypeAdapter(union)
        try:
            return adapter.validate_python(value)
        except ValidationError:
            pass
        try:
            return adapter.validate_json(json.dumps(value))
        except (ValidationError, ValueError, TypeError):
            return value


class SubModels:
    """The models of a ``response_format`` type by JSON path, for ``content.parsed.done``."""

    __slots__ = ("root", "shapes")

    def __init__(self, response_format: object) -> None:
        self.shapes: dict[tuple[Any, ...], _Shape] = {}
        self.root = self.shape([response_format])

    def shape(self, annotations: list[Any]) -> _Shape | None:
        """The shape for these alternatives, shared by every position that allows the same ones."""
        flat: list[Any] = []
        for annotation in annotations:
            _flatten(annotation, flat)
        if not flat:
            return None
        key = tuple(flat)
        try:
            shape = self.shapes.get(key)
        except TypeError:  # an unhashable annotation: a shape of its own
            return _Shape(self, key)
        if shape is None:
            shape = self.shapes[key] = _Shape(self, key)
        return shape

    def validate(self, path: tuple[PathItem, ...], value: dict[str, Any]) -> Any:
        """``value``, closed at ``path``, validated into the model the type has there (if any)."""
        shape = self.root
        for step in path:
            if shape is None:
                return value
            shape = shape.child(step)
        return shape.validate(value) if shape is not None else value
