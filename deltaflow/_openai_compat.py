"""The few openai-python internals deltaflow relies on, in one place.

openai builds its snapshot models with ``construct_type``: nested models without validation, so a
provider's unexpected value (an unknown ``finish_reason``, say) survives instead of failing the
stream. deltaflow builds snapshots the same way, so they compare equal to openai's field for field.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from openai._models import construct_type

__all__ = ["construct"]

ModelT = TypeVar("ModelT")


def construct(model: type[ModelT], data: dict[str, Any]) -> ModelT:
    """Build ``model`` from ``data`` recursively, without validation (as openai does)."""
    return cast(ModelT, construct_type(type_=model, value=data))
