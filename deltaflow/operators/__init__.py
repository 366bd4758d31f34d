"""Operators: each a factory returning a function from one Observable to another (as reactivex).

Compose them with ``Observable.pipe``; ``to_events`` is the standard composition. ``map`` and
``filter`` run a function of yours on each event, fused with the others (how to write an operator
of your own: ``deltaflow/operators/_stage.py``).
"""

from deltaflow.operators._accumulate import accumulate
from deltaflow.operators._assemble_tool_calls import assemble_tool_calls
from deltaflow.operators._check_finish_reasons import check_finish_reasons
from deltaflow.operators._filter import filter
from deltaflow.operators._filter_refusals import RefusalMode, filter_refusals
from deltaflow.operators._map import map
from deltaflow.operators._normalize import normalize
from deltaflow.operators._parse_partial_json import parse_partial_json
from deltaflow.operators._split_by_choice import ChoiceStream, split_by_choice
from deltaflow.operators._to_events import to_events

__all__ = [
    "ChoiceStream",
    "RefusalMode",
    "accumulate",
    "assemble_tool_calls",
    "check_finish_reasons",
    "filter",
    "filter_refusals",
    "map",
    "normalize",
    "parse_partial_json",
    "split_by_choice",
    "to_events",
]
