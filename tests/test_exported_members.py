"""The public surface, pinned: a change to it is deliberate, never a side effect."""

from __future__ import annotations

import importlib
import inspect

import pytest

PUBLIC = {
    "deltaflow": [
        "AsyncChatStream", "AsyncChunkRequest", "ChatStream", "ChunkRequest", "achunks_from_sse", "astream",
        "chunks_from_jsonl", "chunks_from_sse", "dialects", "errors", "events", "from_chunks", "from_jsonl",
        "from_sse", "operators", "recipes", "responses", "sinks", "stream",
    ],
    "deltaflow.responses": [
        "AsyncResponseRequest", "AsyncResponseStream", "ResponseContractError", "ResponseFailed",
        "ResponseIncomplete", "ResponseRequest", "ResponseState", "ResponseStream", "UnknownResponseEvent", "astream",
        "event_from_dict", "event_from_json", "request_params", "stream",
    ],
    "deltaflow.operators": [
        "ChoiceStream", "RefusalMode", "accumulate", "assemble_tool_calls", "check_finish_reasons", "filter",
        "filter_refusals", "map", "normalize", "parse_partial_json", "split_by_choice", "to_events",
    ],
    "deltaflow.events": [
        "EVENT_ALIASES", "BaseEvent", "ChoiceDone", "ChunkReceived", "CompletionDone", "ContentDelta", "ContentDone",
        "ContentParsedDelta", "ContentParsedDone", "ErrorReported", "Event", "EventType", "LogprobsContentDelta",
        "LogprobsContentDone", "LogprobsRefusalDelta", "LogprobsRefusalDone", "PathItem", "ReasoningDelta",
        "ReasoningDone",
        "RefusalDelta", "RefusalDone", "ToolCallDelta", "ToolCallDone", "ToolCallResult", "UsageReported",
    ],
    "deltaflow.durable": [
        "AppendResult", "DurableEndpoint", "EventLog", "Lease", "LogEntry", "MemoryEventLog", "RedisEventLog",
        "StreamInfo", "durable_endpoint", "produce",
    ],
    "deltaflow.wire": [
        "AgUiEncoder", "AiSdkEncoder", "WireEncoder", "WireFormat", "ag_ui_request", "ai_sdk_request", "sse_data",
    ],
    "deltaflow.errors": [
        "ContentFilterFinishReasonError", "ContentInvalidError", "DeltaflowError", "EventLogError",
        "EventLogUnavailable", "EventsTrimmed", "JsonLimitError", "JsonParseError", "LeaseConflict", "LeaseLost",
        "LengthFinishReasonError", "ParseError", "ProviderError", "RefusalError", "RelayError", "StreamAborted",
        "StreamClosedError", "StreamContractError", "StreamInterrupted", "StreamNotFound", "StreamTimeout",
        "ToolArgumentsError", "ToolLoopLimitError",
    ],
    "deltaflow.dialects": [
        "DIALECTS", "Dialect", "Outcome", "Step", "StreamNormalizer", "detect_dialect", "get_dialect",
        "known_dialects",
    ],
    "deltaflow.recipes": [
        "AsyncToolLoopStream", "PartialResult", "ReasoningResult", "RelayEndpoint", "RelayError", "StreamFactory",
        "ToolEntry", "ToolLoopLimitError", "ToolLoopResult", "ToolLoopStream", "aprint_stream", "areasoning",
        "arelay_events", "ashow_reasoning", "astructured_output", "atool_loop", "atool_loop_stream", "partial_model",
        "print_stream", "reasoning", "relay_endpoint", "relay_events", "show_reasoning", "structured_output",
        "tool_loop", "tool_loop_stream",
    ],
    "deltaflow.pipeline": [
        "DEFAULT_IDLE_TIMEOUT", "AsyncChatStream", "AsyncChunkRequest", "ChatStream", "ChunkRequest", "ParseErrors",
        "SSEDecoder",
        "ServerSentEvent", "Transport", "achunks_from_sse", "aiter_sse", "astream", "chunk_from_dict",
        "chunk_from_json", "chunks_from_jsonl", "chunks_from_sse", "from_async_iterable", "from_chunks",
        "from_iterable", "from_jsonl", "from_sse", "iter_sse", "request_params", "stream",
    ],
    "deltaflow.partial_json": ["IncrementalJsonParser", "JsonOp", "OpKind", "apply_ops"],
    "deltaflow.replay": [
        "FAULT_HEADER", "SAMPLE_SCRIPTS", "Comment", "Fault", "FaultKind", "RecordedRequest", "ReplayApp", "ReplayItem",
        "ReplayServer", "Samples", "Scenario", "ScenarioOptions", "ScenarioSource", "load_recording", "sample_text",
        "scripted_chunks", "scripted_response", "serve",
    ],
    "deltaflow.cli": ["main"],
    "deltaflow.state": ["RejectedChunk"],
    "deltaflow.testing": [
        "OPENAI_EVENT_FIELDS", "CapturedEvents", "Run", "assert_same", "capture_events", "chat_chunks", "run_chain",
        "run_chat_stream", "run_openai",
    ],
    "deltaflow.sinks": [
        "CallbackSink", "ConsoleSink", "FanOut", "JsonlSink", "LogSink", "MetricsSink", "OtelSink", "Policy", "Sink",
        "Stall", "StreamMetrics", "callback", "console", "fan_out", "jsonl", "log", "metrics", "otel", "redact",
        "redact_processor",
    ],
}  # fmt: skip


@pytest.mark.parametrize("module_name", sorted(PUBLIC))
def test_public_names_are_pinned_and_importable(module_name: str) -> None:
    """__all__ is exactly the pinned list (in ruff's order, which ruff checks), and every name in it exists."""
    module = importlib.import_module(module_name)
    assert module.__all__ == PUBLIC[module_name]
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


def _modules() -> list[str]:
    """Every public module of the package: no part of its dotted name starts with an underscore."""
    import pkgutil  # noqa: PLC0415

    import deltaflow  # noqa: PLC0415

    names = ["deltaflow"]
    for info in pkgutil.walk_packages(deltaflow.__path__, "deltaflow."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            names.append(info.name)
    return sorted(names)


def _defined_public_names(module_name: str) -> set[str]:
    """The public names a module binds at top level: its defs, classes and assignments, and, for a
    package, what it imports from its own private modules (and its public subpackages)."""
    import ast  # noqa: PLC0415

    module = importlib.import_module(module_name)
    source = inspect.getsource(module)
    is_package = hasattr(module, "__path__")
    names: set[str] = set()
    nodes = list(ast.parse(source).body)
    for node in list(nodes):
        # a package whose public names are imported on first use declares them under TYPE_CHECKING
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            nodes.extend(node.body)
    for node in nodes:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(target.id for target in node.targets if isinstance(target, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom) and is_package:
            own = (
                node.level > 0
                or (node.module or "").startswith(f"{module_name}.")
                or node.module == module_name
            )
            if own:
                names.update(alias.asname or alias.name for alias in node.names)
    return {name for name in names if not name.startswith("_")}


def test_every_public_module_is_pinned_by_name() -> None:
    """A new public module is a deliberate change too: it needs its row above."""
    assert sorted(set(_modules()) - set(PUBLIC)) == []


@pytest.mark.parametrize("module_name", _modules())
def test_all_is_exactly_what_a_public_module_defines(module_name: str) -> None:
    """httpx's rule: a public module's __all__ lists every public name it defines, and nothing else."""
    module = importlib.import_module(module_name)
    assert sorted(module.__all__) == sorted(_defined_public_names(module_name))


def test_version_comes_from_the_package_metadata() -> None:
    from importlib.metadata import version  # noqa: PLC0415

    import deltaflow  # noqa: PLC0415

    assert deltaflow.__version__ == version("deltaflow")
