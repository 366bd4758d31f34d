"""``structured_output``: a pydantic model filling in as its JSON streams, then the validated model."""

from __future__ import annotations

import collections.abc
import types
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, ForwardRef, Union, get_args, get_origin

import openai
from pydantic import (
    BaseModel,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    create_model,
)

from deltaflow import pipeline
from deltaflow.errors import StreamContractError
from deltaflow.events import BaseEvent, ContentDelta, ErrorReported

__all__ = ["PartialResult", "astructured_output", "partial_model", "structured_output"]

# typing's special forms, subscripted at runtime with computed types (which type checkers refuse)
_ANNOTATED: Any = Annotated
_UNION: Any = Union


@dataclass(frozen=True, slots=True)
class PartialResult:
    """One step of a structured answer: a partial value while it streams, the validated model last.

    Attributes:
        value: while streaming (``done`` False), an instance of ``partial_model(Model)``: the same
            field names, every field optional and None until it has arrived (and while its value is
            still incomplete, e.g. a string not yet closed), nested models partial too. Last
            (``done`` True), the validated ``Model`` instance, exactly as
            ``completion.choices[0].message.parsed``.
        done: True for the last result only.
    """

    value: Any
    done: bool = False


def structured_output(
    client: openai.OpenAI,
    *,
    response_format: type[BaseModel],
    **create_params: Any,
) -> Iterator[PartialResult]:
    """Stream a structured answer as progressively more complete, validated, partial objects.

    Each ``content.delta`` carries the partial JSON value parsed so far (``event.parsed``; a string
    appears once it is closed). It is validated leniently into ``partial_model(response_format)``,
    and a ``PartialResult`` is yielded whenever the validated value changed. The last result has
    ``done=True`` and the real model instance.

    A refusal raises ``deltaflow.errors.RefusalError`` (the stream is made with ``refusals="raise"``
    unless ``create_params`` says otherwise); a cut-off raises openai's ``LengthFinishReasonError``;
    content that fails the model raises the ``ValidationError`` (or ``JsonParseError``) the pipeline
    reported. Stopping the iteration early (``break``, then the generator closed or collected)
    closes the HTTP response.

    Example::

        import openai
        from pydantic import BaseModel
        from deltaflow.recipes import structured_output

        class Recipe(BaseModel):
            title: str
            ingredients: list[str]

        client = openai.OpenAI()
        messages = [{"role": "user", "content": "A pancake recipe"}]
        results = structured_output(client, response_format=Recipe, model="gpt-4o-mini", messages=messages)
        for result in results:
            # value.title is None until the title has arrived
            print("final:" if result.done else "so far:", result.value)
        recipe: Recipe = result.value

    Args:
        client: an ``openai.OpenAI`` client.
        response_format: the pydantic model the answer must follow (sent as a strict JSON schema).
        **create_params: everything else for ``deltaflow.stream`` (``model``, ``messages``...).

    Yields:
        Partial results as they change, then the final one (``done=True``).

    Raises:
        TypeError: ``response_format`` is not a pydantic model class.
    """
    follower = _Follower(response_format)
    create_params.setdefault("refusals", "raise")
    with pipeline.stream(client, response_format=response_format, **create_params) as stream:
        for event in stream:
            partial = follower.handle(event)
            if partial is not None:
                yield partial
        completion = stream.get_final_completion()
    yield follower.final(completion.choices[0].message.parsed)


async def astructured_output(
    client: openai.AsyncOpenAI,
    *,
    response_format: type[BaseModel],
    **create_params: Any,
) -> AsyncIterator[PartialResult]:
    """The async twin of ``structured_output``, for ``openai.AsyncOpenAI``.

    Example::

        import openai
        from pydantic import BaseModel
        from deltaflow.recipes import astructured_output

        class Recipe(BaseModel):
            title: str
            ingredients: list[str]

        async def main() -> None:
            messages = [{"role": "user", "content": "A pancake recipe"}]
            async for result in astructured_output(
                openai.AsyncOpenAI(), response_format=Recipe, model="gpt-4o-mini", messages=messages
            ):
                render(result.value)   # e.g. push to a web page; result.done marks the final Recipe

    Args:
        client: an ``openai.AsyncOpenAI`` client.
        response_format: the pydantic model the answer must follow.
        **create_params: everything else for ``deltaflow.astream``.

    Yields:
        Partial results as they change, then the final one (``done=True``).

    Raises:
        TypeError: ``response_format`` is not a pydantic model class.
    """
    follower = _Follower(response_format)
    create_params.setdefault("refusals", "raise")
    async with pipeline.astream(client, response_format=response_format, **create_params) as stream:
        async for event in stream:
            partial = follower.handle(event)
            if partial is not None:
                yield partial
        completion = await stream.get_final_completion()
    yield follower.final(completion.choices[0].message.parsed)


class _Follower:
    """Turns choice 0's content deltas into partial results, yielding only changes."""

    def __init__(self, response_format: type[BaseModel]) -> None:
        self._partial = partial_model(response_format)
        self._previous: BaseModel | None = None
        self._content_error: BaseException | None = None

    def handle(self, event: BaseEvent) -> PartialResult | None:
        if type(event) is ErrorReported and event.code == "content_invalid":
            self._content_error = event.exception
            return None
        if type(event) is not ContentDelta or event.choice_index != 0 or event.parsed is None:
            return None
        value = self._partial.model_validate(event.parsed)
        if value == self._previous:
            return None
        self._previous = value
        return PartialResult(value)

    def final(self, parsed: object) -> PartialResult:
        if parsed is None:
            # the pipeline reported why the content did not validate: raise that, it says most
            if self._content_error is not None:
                raise self._content_error
            raise StreamContractError("the answer has no parsed content")
        return PartialResult(parsed, done=True)


def partial_model(model: type[BaseModel]) -> type[BaseModel]:
    """The lenient, all-optional twin of ``model`` that partial JSON is validated into.

    Every field is optional with a None default and keeps its alias; nested models become their
    partial twins (inside lists, dicts and unions too); constraints (``Annotated`` metadata) and
    validators are dropped, since incomplete values cannot meet them yet. A field whose value does
    not validate yet (a ``Literal`` or enum still being typed, a list whose last item is
    incomplete) becomes None, or, for a list, the list without its last item.

    Example::

        from pydantic import BaseModel
        from deltaflow.recipes import partial_model

        class Step(BaseModel):
            text: str
            minutes: int

        class Recipe(BaseModel):
            title: str
            steps: list[Step]

        PartialRecipe = partial_model(Recipe)
        print(PartialRecipe.model_validate({"steps": [{"text": "Whisk"}]}))
        # title=None steps=[PartialStep(text='Whisk', minutes=None)]

    Args:
        model: a pydantic model class.

    Returns:
        A new pydantic model class named ``Partial<Model>``.

    Raises:
        TypeError: ``model`` is not a pydantic model class.
    """
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"response_format must be a pydantic model class, not {model!r}")
    return _PartialModels().build(model)


class _PartialModels:
    """Builds partial twins for one root model; the memo makes a shared nested model built once."""

    def __init__(self) -> None:
        self._built: dict[type[BaseModel], type[BaseModel]] = {}
        self._building: set[type[BaseModel]] = set()
        self._recursive = False

    def build(self, model: type[BaseModel]) -> type[BaseModel]:
        partial = self.model(model)
        if self._recursive:
            # a model inside itself was named before its twin existed: resolve those names now
            namespace = {twin.__name__: twin for twin in self._built.values()}
            for twin in self._built.values():
                twin.model_rebuild(_types_namespace=namespace)
        return partial

    def model(self, model: type[BaseModel]) -> type[BaseModel]:
        if model in self._built:
            return self._built[model]
        self._building.add(model)
        fields: dict[str, Any] = {}
        for name, field in model.model_fields.items():
            annotation = _ANNOTATED[self.annotation(field.annotation) | None, WrapValidator(_lenient)]
            alias = field.validation_alias if isinstance(field.validation_alias, str) else field.alias
            fields[name] = (annotation, Field(default=None, alias=alias))
        partial = create_model(_twin_name(model), __doc__=f"A partial {model.__name__}.", **fields)
        self._building.discard(model)
        self._built[model] = partial
        return partial

    def annotation(self, annotation: Any) -> Any:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation in self._building:
                # a model inside itself: its twin is not built yet, so it is named, resolved later
                self._recursive = True
                return ForwardRef(_twin_name(annotation))
            return self.model(annotation)
        origin, args = get_origin(annotation), get_args(annotation)
        if origin is Annotated:
            return self.annotation(args[0])
        if origin is Union or origin is types.UnionType:
            return _UNION[tuple(self.annotation(arg) for arg in args)]
        if origin in (list, collections.abc.Sequence, collections.abc.MutableSequence):
            return types.GenericAlias(list, (self.annotation(args[0]) if args else Any,))
        if origin is tuple:
            # a fixed-size tuple arrives item by item: a list until complete
            item = self.annotation(args[0]) if len(args) == 2 and args[1] is Ellipsis else Any
            return types.GenericAlias(list, (item,))
        if origin in (dict, collections.abc.Mapping, collections.abc.MutableMapping) and len(args) == 2:
            return types.GenericAlias(dict, (args[0], self.annotation(args[1])))
        # scalars, Literal, enums, sets...: kept; _lenient drops a value that is not valid yet
        return annotation


def _twin_name(model: type[BaseModel]) -> str:
    return f"Partial{model.__name__}"


def _lenient(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
    """Validate, or fall back: a list without its incomplete last item, else None."""
    try:
        return handler(value)
    except ValidationError:
        pass
    if isinstance(value, list) and value:
        try:
            return handler(value[:-1])
        except ValidationError:
            pass
    return None
