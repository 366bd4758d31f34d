"""The ``deltaflow`` command: demo, chat, replay, record, serve and relay.

Every error a user can hit (no key, an unreachable base URL, an unknown dialect, a bad schema file,
a missing recording) prints one line on stderr and exits non-zero, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import openai
import structlog

from deltaflow.errors import DeltaflowError
from deltaflow.events import BaseEvent
from deltaflow.pipeline import ChatStream, chunks_from_jsonl, chunks_from_sse, stream

__all__ = ["CommandError", "main"]


class CommandError(Exception):
    """A problem the user can fix, reported as one line."""


def _json_logger() -> Any:
    """A structlog logger writing JSON lines to stderr, without touching the global configuration."""
    return structlog.wrap_logger(
        structlog.PrintLogger(file=sys.stderr),
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.processors.JSONRenderer(),
        ],
    )


def _sinks_for(output: str) -> list[Any]:
    from deltaflow import sinks  # noqa: PLC0415 - rich is imported only when a console is drawn

    if output == "text":
        return [sinks.console()]
    if output == "logs":
        return [sinks.log(_json_logger(), include_content=True, content_level="info")]
    return [sinks.callback(_print_event)]


def _print_event(event: BaseEvent) -> None:
    data = event.model_dump(mode="json", exclude={"snapshot", "chunk", "exception"})
    kind = data.pop("type")
    fields = " ".join(f"{key}={json.dumps(value, ensure_ascii=False)}" for key, value in data.items())
    print(f"{kind:<36} {fields}"[:400])


def _schema_format(path: str | None) -> dict[str, Any] | None:
    if path is None:
        return None
    try:
        schema = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise CommandError(f"schema file not found: {path}") from error
    except (OSError, ValueError) as error:
        raise CommandError(f"schema file {path} is not valid JSON: {error}") from error
    if not isinstance(schema, dict):
        raise CommandError(f"schema file {path} must hold a JSON object (a JSON schema)")
    return {"type": "json_schema", "json_schema": {"name": Path(path).stem, "schema": schema, "strict": True}}


def _client(base_url: str | None) -> openai.OpenAI:
    if not os.environ.get("OPENAI_API_KEY"):
        raise CommandError("OPENAI_API_KEY is not set: export it (and OPENAI_BASE_URL for another provider)")
    return openai.OpenAI(base_url=base_url or os.environ.get("OPENAI_BASE_URL") or None)


def _drive(chat: ChatStream[Any], observers: Sequence[Any]) -> None:
    from deltaflow import sinks  # noqa: PLC0415

    with chat.subscribe(sinks.fan_out(*observers)) as running:
        running.until_done()


def _live(arguments: argparse.Namespace, extra_observers: Sequence[Any] = ()) -> None:
    messages = []
    if arguments.system:
        messages.append({"role": "system", "content": arguments.system})
    messages.append({"role": "user", "content": arguments.prompt})
    chat: ChatStream[Any] = stream(
        _client(arguments.base_url),
        model=arguments.model,
        messages=messages,
        response_format=_schema_format(getattr(arguments, "schema", None)),
        dialect=arguments.dialect,
    )
    observers = [*_sinks_for("text"), *extra_observers]
    if getattr(arguments, "log_json", False):
        observers.append(_sinks_for("logs")[0])
    _drive(chat, observers)


def chat(arguments: argparse.Namespace) -> int:
    """Stream one answer from a real provider to the terminal."""
    _live(arguments)
    return 0


def record(arguments: argparse.Namespace) -> int:
    """Stream one answer to the terminal and save its raw chunks as JSONL."""
    from deltaflow import sinks  # noqa: PLC0415

    _live(arguments, [sinks.jsonl(arguments.output, what="chunks")])
    print(f"recorded to {arguments.output}", file=sys.stderr)
    return 0


def _recording(path: str) -> Iterator[Any]:
    file = Path(path)
    if not file.is_file():
        raise CommandError(f"recording not found: {path}")
    if file.suffix == ".sse":
        return chunks_from_sse(file.read_bytes())
    return chunks_from_jsonl(file)


def replay(arguments: argparse.Namespace) -> int:
    """Run a recording (SSE or JSONL) through the pipeline and print events, text or logs."""
    _drive(ChatStream(_recording(arguments.file), dialect=arguments.dialect), _sinks_for(arguments.output))
    return 0


def serve(arguments: argparse.Namespace) -> int:
    """Serve recordings as an OpenAI-compatible endpoint on loopback, keyed by file name."""
    from deltaflow.replay import Scenario, serve  # noqa: PLC0415 - the replay extra is optional

    scenarios = {}
    for path in arguments.files:
        if not Path(path).is_file():
            raise CommandError(f"recording not found: {path}")
        scenarios[Path(path).stem] = Scenario.from_file(path)
    print(
        f"serving {', '.join(scenarios)} at http://{arguments.host}:{arguments.port}/v1 (model = file name)",
        file=sys.stderr,
    )
    serve(
        scenarios if len(scenarios) > 1 else next(iter(scenarios.values())),
        host=arguments.host,
        port=arguments.port,
    )
    return 0


def demo(arguments: argparse.Namespace) -> int:
    """Stream scripted answers from the embedded replay server: no key, no network."""
    from deltaflow._demo import run_demo  # noqa: PLC0415

    return run_demo(fast=arguments.fast)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="deltaflow", description="Streamed chat completions as typed events."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler: Callable[[argparse.Namespace], int]) -> argparse.ArgumentParser:
        summary = (handler.__doc__ or "").strip().splitlines()[0]
        command = commands.add_parser(name, help=summary, description=summary)
        command.set_defaults(handler=handler)
        return command

    def live_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("prompt", help="the user message")
        command.add_argument("--model", default="gpt-4o-mini", help="the model (default: %(default)s)")
        command.add_argument(
            "--base-url", help="an OpenAI-compatible endpoint (default: $OPENAI_BASE_URL or OpenAI)"
        )
        command.add_argument("--dialect", help="the provider's dialect (default: detected from the base URL)")
        command.add_argument("--system", help="a system message")

    demo_command = add("demo", demo)
    demo_command.add_argument("--fast", action="store_true", help="no pacing (for tests)")
    chat_command = add("chat", chat)
    live_options(chat_command)
    chat_command.add_argument("--schema", help="a JSON schema file: structured output, drawn as it fills in")
    chat_command.add_argument(
        "--log-json", action="store_true", help="also log the stream as JSON lines to stderr"
    )
    record_command = add("record", record)
    live_options(record_command)
    record_command.add_argument("--output", "-o", required=True, help="the JSONL file to write")
    replay_command = add("replay", replay)
    replay_command.add_argument("file", help="a recording: .sse (raw body) or .jsonl (one chunk per line)")
    replay_command.add_argument("--dialect", help="the provider's dialect (default: generic)")
    replay_command.add_argument(
        "--output",
        choices=["events", "text", "logs"],
        default="events",
        help="what to print (default: %(default)s)",
    )
    serve_command = add("serve", serve)
    serve_command.add_argument("files", nargs="+", help="recordings to serve (.sse or .jsonl)")
    serve_command.add_argument("--host", default="127.0.0.1", help="interface (default: %(default)s)")
    serve_command.add_argument("--port", type=int, default=8000, help="port (default: %(default)s)")
    from deltaflow.durable._command import add_relay_command  # noqa: PLC0415 - the durable relay's own module

    add_relay_command(add)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deltaflow`` command."""
    arguments = _parser().parse_args(argv)
    try:
        return int(arguments.handler(arguments))
    except CommandError as error:
        message = str(error)
    except openai.APIConnectionError as error:
        message = f"cannot reach the API: {error.message} ({error.request.url})"
    except openai.APIStatusError as error:
        message = f"the API answered {error.status_code}: {error.message}"
    except (DeltaflowError, openai.OpenAIError) as error:
        message = f"{type(error).__name__}: {error}"
    except ValueError as error:  # an unknown dialect, a bad parameter
        message = str(error)
    except OSError as error:  # a file that cannot be written or read
        message = f"{error.strerror or error}: {error.filename}" if error.filename else str(error)
    except KeyboardInterrupt:
        return 130
    print(f"deltaflow: error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
