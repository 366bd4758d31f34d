"""The accumulation state behind ``operators.accumulate``: append-only buffers and per-choice state.

Internal: the operators use its private modules directly. ``RejectedChunk``, the record a dialect
makes of a payload it cannot read, is its one public name (it flows between ``normalize`` and
``accumulate``, where a user's own operator may meet it).
"""

from deltaflow.state._rejected import RejectedChunk

__all__ = ["RejectedChunk"]
