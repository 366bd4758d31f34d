"""deltaflow.recipes: every public function documents an example (tests/test_exported_members.py pins the names)."""

from __future__ import annotations

import deltaflow.recipes as recipes


def test_every_function_documents_a_usage_example() -> None:
    """Each public function's docstring carries an ``Example::`` block for the README to quote."""
    for name in recipes.__all__:
        value = getattr(recipes, name)
        if callable(value) and not isinstance(value, type) and name[0].islower():
            assert "Example::" in (value.__doc__ or ""), name
