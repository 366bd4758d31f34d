"""Incremental partial-JSON parsing: each delta parsed once, snapshots as of any earlier delta.

``IncrementalJsonParser`` replaces re-parsing the accumulated text with
``jiter.from_json(..., partial_mode=True)`` on every delta (O(n^2) per stream) by work proportional
to each delta, with the same values.
"""

from deltaflow.partial_json._ops import JsonOp, OpKind, apply_ops
from deltaflow.partial_json._parser import IncrementalJsonParser

__all__ = ["IncrementalJsonParser", "JsonOp", "OpKind", "apply_ops"]
