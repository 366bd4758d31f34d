"""The accumulation state behind the operators: append-only buffers and per-choice state."""

from deltaflow.state._buffers import History, TextBuffer, TrackedList
from deltaflow.state._completion import LATEST, ChoiceState, CompletionState, ToolCallState
from deltaflow.state._rejected import RejectedChunk

__all__ = [
    "LATEST",
    "ChoiceState",
    "CompletionState",
    "History",
    "RejectedChunk",
    "TextBuffer",
    "ToolCallState",
    "TrackedList",
]
