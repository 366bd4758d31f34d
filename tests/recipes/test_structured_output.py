"""recipes.structured_output: validated partial objects while the JSON streams, then the model."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, Field

from deltaflow.errors import RefusalError
from deltaflow.recipes import PartialResult, astructured_output, partial_model, structured_output
from deltaflow.replay import ReplayServer, Scenario
from tests.recipes import MESSAGES, aclient, client


class Step(BaseModel):
    text: str
    minutes: int = Field(ge=1)


class Recipe(BaseModel):
    title: str
    difficulty: Literal["easy", "hard"]
    steps: list[Step]


RECIPE = Recipe(
    title="Pancakes",
    difficulty="easy",
    steps=[Step(text="Whisk flour, eggs and milk", minutes=5), Step(text="Fry in butter", minutes=10)],
)


def _filled(value: BaseModel) -> int:
    """How many leaf values a partial holds: it only ever grows as the JSON streams."""
    count = 0
    for item in value.__dict__.values():
        if isinstance(item, BaseModel):
            count += _filled(item)
        elif isinstance(item, list):
            count += sum(_filled(element) if isinstance(element, BaseModel) else 1 for element in item)
        elif item is not None:
            count += 1
    return count


def _check_progression(results: list[PartialResult]) -> None:
    *partials, last = results
    assert last.done
    assert last.value == RECIPE
    assert isinstance(last.value, Recipe)
    assert len(partials) >= 4
    assert not any(result.done for result in partials)
    assert all(type(result.value).__name__ == "PartialRecipe" for result in partials)
    # each partial differs from the one before, and holds at least as much
    assert all(before.value != after.value for before, after in zip(partials, partials[1:], strict=False))
    sizes = [_filled(result.value) for result in partials]
    assert sizes == sorted(sizes)
    assert partials[-1].value.model_dump() == RECIPE.model_dump()


class TestStructuredOutput:
    def test_partials_grow_then_the_validated_model(self) -> None:
        """Small chunks yield several growing, validated partials; the last item is the real model."""
        with ReplayServer(Scenario.scripted(RECIPE.model_dump_json(), chunk_size=5)) as server:
            results = list(
                structured_output(client(server), response_format=Recipe, model="m", messages=MESSAGES)
            )
            request = server.requests[-1].body
        _check_progression(results)
        assert request["response_format"]["type"] == "json_schema"
        # a list item shows up partial before it is complete
        assert any(result.value.steps and result.value.steps[0].minutes is None for result in results[:-1])

    async def test_async_twin_yields_the_same(self) -> None:
        """``astructured_output`` yields the same progression over an AsyncOpenAI client."""
        async with ReplayServer(Scenario.scripted(RECIPE.model_dump_json(), chunk_size=5)) as server:
            results = [
                result
                async for result in astructured_output(
                    aclient(server), response_format=Recipe, model="m", messages=MESSAGES
                )
            ]
        _check_progression(results)

    def test_a_refusal_raises(self) -> None:
        """A refused structured answer raises RefusalError instead of yielding a model."""
        with ReplayServer(Scenario.scripted(None, refusal="I can't cook.")) as server:
            results = structured_output(client(server), response_format=Recipe, model="m", messages=MESSAGES)
            with pytest.raises(RefusalError, match="I can't cook"):
                list(results)


class TestPartialModel:
    def test_fields_are_optional_and_lenient(self) -> None:
        """Missing fields are None, an incomplete literal is None, constraints wait for the final model."""
        partial = partial_model(Recipe).model_validate({"difficulty": "ea", "steps": [{"minutes": 0}]})
        assert partial.title is None  # type: ignore[attr-defined]
        assert partial.difficulty is None  # type: ignore[attr-defined]
        assert partial.steps[0].minutes == 0  # type: ignore[attr-defined]

    def test_a_list_drops_its_incomplete_last_item(self) -> None:
        """A list whose last item does not validate yet keeps the items before it."""

        class Tags(BaseModel):
            tags: list[Literal["red", "green"]]

        partial = partial_model(Tags).model_validate({"tags": ["red", "gr"]})
        assert partial.tags == ["red"]  # type: ignore[attr-defined]

    def test_recursive_models_are_partial_at_every_level(self) -> None:
        """A model that contains itself gets partial twins all the way down."""

        class Node(BaseModel):
            label: str
            children: list[Node]

        partial = partial_model(Node).model_validate({"label": "root", "children": [{"label": "leaf"}]})
        child = partial.children[0]  # type: ignore[attr-defined]
        assert type(child).__name__ == "PartialNode"
        assert child.label == "leaf"
        assert child.children is None

    def test_only_pydantic_models(self) -> None:
        """Anything but a pydantic model class is refused."""
        with pytest.raises(TypeError):
            partial_model(dict)  # type: ignore[arg-type]
