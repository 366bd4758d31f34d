"""Recipes: small, documented compositions of deltaflow's public API for common integrations.

- ``print_stream`` / ``aprint_stream``: a stream printed to a terminal, nothing left unsaid.
- ``tool_loop`` / ``atool_loop``: run the tools the model calls as they stream in, until it answers;
  ``tool_loop_stream`` / ``atool_loop_stream``: the same loop as a stream of its events (tool results
  included), for a relay.
- ``structured_output`` / ``astructured_output``: a pydantic model filling in as its JSON streams.
- ``reasoning`` / ``show_reasoning`` (and async twins): a reasoning model's thinking kept apart.
- ``relay_endpoint`` / ``relay_events`` / ``arelay_events``: a stream relayed over HTTP as SSE (deltaflow's
  events, or with ``wire=`` the AI SDK's UI Message Stream or AG-UI events: ``deltaflow.wire``).

Each is a few dozen lines over ``deltaflow.stream`` / ``astream`` and the events: read the source
to adapt one.
"""

from deltaflow.recipes._print_stream import aprint_stream, print_stream
from deltaflow.recipes._reasoning import (
    ReasoningResult,
    areasoning,
    ashow_reasoning,
    reasoning,
    show_reasoning,
)
from deltaflow.recipes._relay import RelayEndpoint, StreamFactory, relay_endpoint
from deltaflow.recipes._relay_client import RelayError, arelay_events, relay_events
from deltaflow.recipes._structured_output import (
    PartialResult,
    astructured_output,
    partial_model,
    structured_output,
)
from deltaflow.recipes._tool_loop import (
    ToolEntry,
    ToolLoopLimitError,
    ToolLoopResult,
    atool_loop,
    tool_loop,
)
from deltaflow.recipes._tool_loop_stream import (
    AsyncToolLoopStream,
    ToolLoopStream,
    atool_loop_stream,
    tool_loop_stream,
)

__all__ = [
    "AsyncToolLoopStream",
    "PartialResult",
    "ReasoningResult",
    "RelayEndpoint",
    "RelayError",
    "StreamFactory",
    "ToolEntry",
    "ToolLoopLimitError",
    "ToolLoopResult",
    "ToolLoopStream",
    "aprint_stream",
    "areasoning",
    "arelay_events",
    "ashow_reasoning",
    "astructured_output",
    "atool_loop",
    "atool_loop_stream",
    "partial_model",
    "print_stream",
    "reasoning",
    "relay_endpoint",
    "relay_events",
    "show_reasoning",
    "structured_output",
    "tool_loop",
    "tool_loop_stream",
]
