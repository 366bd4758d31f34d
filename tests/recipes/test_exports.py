"""deltaflow.recipes: the public surface is pinned, sorted, and importable."""

from __future__ import annotations

import deltaflow.recipes as recipes

EXPECTED = [
    "PartialResult",
    "ReasoningResult",
    "RelayEndpoint",
    "RelayError",
    "StreamFactory",
    "ToolEntry",
    "ToolLoopLimitError",
    "ToolLoopResult",
    "aprint_stream",
    "areasoning",
    "arelay_events",
    "ashow_reasoning",
    "astructured_output",
    "atool_loop",
    "partial_model",
    "print_stream",
    "reasoning",
    "relay_endpoint",
    "relay_events",
    "show_reasoning",
    "structured_output",
    "tool_loop",
]


def test_all_is_pinned_and_sorted() -> None:
    """``__all__`` lists exactly the public names, sorted, and each one resolves."""
    assert recipes.__all__ == EXPECTED
    assert sorted(recipes.__all__) == recipes.__all__
    assert all(hasattr(recipes, name) for name in recipes.__all__)


def test_every_function_documents_a_usage_example() -> None:
    """Each public function's docstring carries an ``Example::`` block for the README to quote."""
    for name in recipes.__all__:
        value = getattr(recipes, name)
        if callable(value) and not isinstance(value, type) and name[0].islower():
            assert "Example::" in (value.__doc__ or ""), name
