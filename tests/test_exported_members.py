"""The public surface, pinned: a change to it is deliberate, never a side effect."""

from __future__ import annotations

import importlib

import pytest

PUBLIC = {
    "deltaflow": [
        "AsyncChatStream", "AsyncChunkRequest", "ChatStream", "ChunkRequest", "astream", "chunks_from_jsonl",
        "chunks_from_sse", "dialects", "errors", "events", "from_chunks", "from_jsonl", "from_sse", "operators",
        "recipes", "sinks", "stream",
    ],
    "deltaflow.operators": [
        "ChoiceStream", "RefusalMode", "accumulate", "assemble_tool_calls", "check_finish_reasons",
        "filter_refusals", "normalize", "parse_partial_json", "split_by_choice", "to_events",
    ],
    "deltaflow.events": [
        "BaseEvent", "ChoiceDone", "ChunkReceived", "CompletionDone", "ContentDelta", "ContentDone",
        "ContentParsedDelta", "ContentParsedDone", "ErrorReported", "Event", "EventType", "LogprobsContentDelta",
        "LogprobsContentDone", "LogprobsRefusalDelta", "LogprobsRefusalDone", "ReasoningDelta", "ReasoningDone",
        "RefusalDelta", "RefusalDone", "ToolCallDelta", "ToolCallDone", "UsageReported",
    ],
    "deltaflow.durable": [
        "AppendResult", "DurableEndpoint", "EventLog", "Lease", "LogEntry", "MemoryEventLog", "RedisEventLog",
        "StreamInfo", "durable_endpoint", "produce",
    ],
    "deltaflow.errors": [
        "ContentFilterFinishReasonError", "DeltaflowError", "EventLogError", "EventLogUnavailable",
        "EventsTrimmed", "JsonLimitError", "JsonParseError", "LeaseConflict", "LeaseLost", "LengthFinishReasonError",
        "ProviderError", "RefusalError", "StreamAborted", "StreamContractError", "StreamInterrupted",
        "StreamNotFound", "StreamTimeout", "ToolArgumentsError",
    ],
    "deltaflow.dialects": [
        "DIALECTS", "Dialect", "Outcome", "Step", "StreamNormalizer", "detect_dialect", "get_dialect",
        "known_dialects",
    ],
    "deltaflow.recipes": [
        "PartialResult", "ReasoningResult", "RelayEndpoint", "RelayError", "StreamFactory", "ToolEntry",
        "ToolLoopLimitError", "ToolLoopResult", "aprint_stream", "areasoning", "arelay_events", "ashow_reasoning",
        "astructured_output", "atool_loop", "partial_model", "print_stream", "reasoning", "relay_endpoint",
        "relay_events", "show_reasoning", "structured_output", "tool_loop",
    ],
    "deltaflow.sinks": [
        "CallbackSink", "ConsoleSink", "FanOut", "JsonlSink", "LogSink", "MetricsSink", "Policy", "Sink", "Stall",
        "StreamMetrics", "callback", "console", "fan_out", "jsonl", "log", "metrics", "redact", "redact_processor",
    ],
}  # fmt: skip


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_public_names_are_pinned_and_importable(module_name: str) -> None:
    """__all__ is exactly the pinned list, sorted, and every name in it exists."""
    module = importlib.import_module(module_name)
    assert module.__all__ == PUBLIC[module_name]
    assert module.__all__ == sorted(module.__all__)
    for name in module.__all__:
        assert hasattr(module, name), name


def test_errors_raised_mid_stream_share_one_base() -> None:
    """Every deltaflow error derives from DeltaflowError; openai's own finish errors are re-exported as is."""
    import openai  # noqa: PLC0415

    from deltaflow import errors  # noqa: PLC0415

    ours = [
        getattr(errors, name)
        for name in errors.__all__
        if name not in ("LengthFinishReasonError", "ContentFilterFinishReasonError")
    ]
    assert all(issubclass(kind, errors.DeltaflowError) for kind in ours)
    assert errors.LengthFinishReasonError is openai.LengthFinishReasonError
