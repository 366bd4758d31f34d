"""``deltaflow chat`` and ``deltaflow record``: one answer from a real provider."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ._command import Command
from ._errors import CommandError, describe, missing_module

__all__ = ["CHAT", "RECORD", "check_base_url", "positive_seconds"]


def check_base_url(url: str) -> str:
    """``url`` if it is an absolute http(s) URL without whitespace.

    Raises:
        ValueError: it is not, with one line saying why.
    """
    if not url or any(character.isspace() for character in url):
        raise ValueError(f"base URL {url!r} must not be empty or contain spaces")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - reading the port validates it
    except ValueError as error:
        raise ValueError(f"base URL {url!r} is not a URL: {error}") from error
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(
            f"base URL {url!r} needs http:// or https:// and a host, e.g. http://127.0.0.1:8000/v1"
        )
    return url


def _base_url_argument(url: str) -> str:
    try:
        return check_base_url(url)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _positive_int(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


CONNECT_TIMEOUT = 10.0
"""Seconds to connect (TCP and TLS): at a terminal, a server that is not there is told at once."""
IDLE_TIMEOUT = 300.0
"""Seconds without a chunk before giving up: room for a reasoning model thinking behind keep-alives."""


def positive_seconds(text: str) -> float:
    """``text`` as a positive, finite number of seconds: an option's type (a usage error otherwise)."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return seconds


def _live_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("prompt", help="the user message")
    parser.add_argument("--model", default="gpt-4o-mini", help="the model (default: %(default)s)")
    parser.add_argument(
        "--base-url",
        type=_base_url_argument,
        help="an OpenAI-compatible endpoint such as http://127.0.0.1:8000/v1 (default: $OPENAI_BASE_URL)",
    )
    parser.add_argument("--dialect", help="the provider's dialect (default: detected from the base URL)")
    parser.add_argument("--system", help="a system message")
    parser.add_argument("-n", type=_positive_int, default=1, help="how many choices to ask for (default: 1)")
    parser.add_argument("--schema", help="a JSON schema file: structured output, drawn as it fills in")
    parser.add_argument("--log-json", action="store_true", help="also log the stream as JSON lines to stderr")
    parser.add_argument(
        "--timeout",
        type=positive_seconds,
        default=CONNECT_TIMEOUT,
        help="seconds to connect to the API (default: %(default)g)",
    )
    parser.add_argument(
        "--idle-timeout",
        type=positive_seconds,
        default=IDLE_TIMEOUT,
        help="seconds without a chunk before giving up, the first one included; keep-alive comments and "
        "pings do not count; after 5 s a line on stderr says what is awaited (default: %(default)g)",
    )
    parser.add_argument(
        "--api",
        choices=["chat", "responses"],
        default="chat",
        help="POST /v1/chat/completions or /v1/responses (default: %(default)s)",
    )


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


def _client(base_url: str | None, *, connect_timeout: float, idle_timeout: float) -> Any:
    import openai  # noqa: PLC0415 - the command line starts before openai is imported

    if not os.environ.get("OPENAI_API_KEY"):
        raise CommandError("OPENAI_API_KEY is not set: export it (and OPENAI_BASE_URL for another provider)")
    url = base_url or os.environ.get("OPENAI_BASE_URL") or None
    if url is not None:
        try:
            check_base_url(url)
        except ValueError as error:
            raise CommandError(f"{error} (from OPENAI_BASE_URL)") from error
    # a read waits as long as the idle timeout: a silent server is given up on then, not after openai's 600 s
    timeout = openai.Timeout(idle_timeout, connect=connect_timeout)
    return openai.OpenAI(base_url=url, timeout=timeout)


def _schema_validator(schema: dict[str, Any] | None) -> Any:
    """A validator for the schema file, built before the request so a missing extra costs no tokens."""
    if schema is None:
        return None
    try:
        import jsonschema  # noqa: PLC0415 - the schema extra
    except ModuleNotFoundError as error:
        raise CommandError(missing_module("jsonschema", "chat --schema")) from error
    body = schema["json_schema"]["schema"]
    validator_class = jsonschema.validators.validator_for(body)
    try:
        validator_class.check_schema(body)
    except jsonschema.SchemaError as error:
        raise CommandError(f"the schema file is not a valid JSON schema: {error.message}") from error
    return validator_class(body)


def _schema_problem(completion: Any, validator: Any) -> str | None:
    """Why an answer is not JSON valid against the schema, or None: deltaflow parses, not validates."""
    if validator is None:
        return None
    import jsonschema  # noqa: PLC0415

    for choice in completion.choices:
        message = choice.message
        if message.refusal and not message.content:
            return f"choice {choice.index}: the model refused: {message.refusal}"
        try:
            answer = json.loads(message.content or "")
        except ValueError as error:
            return f"choice {choice.index}: the answer is not JSON: {error}"
        problem = jsonschema.exceptions.best_match(validator.iter_errors(answer))
        if problem is not None:
            where = "".join(f"[{part!r}]" for part in problem.absolute_path) or "the answer"
            return f"choice {choice.index}: {where} does not match the schema: {problem.message}"
    return None


def _answer(
    arguments: argparse.Namespace, extra_observers: tuple[Any, ...] = (), raw_events: Any = None
) -> str | None:
    """Stream the answer through the chosen view; return what was wrong with it, if anything.

    What went wrong inside a stream that ended (error events, an answer that fails the schema) is returned
    rather than raised, so that ``record`` can tell a complete recording of a bad answer from a cut one.
    """
    from deltaflow.pipeline import stream  # noqa: PLC0415 - imported once the arguments are known good

    from ._drive import drive  # noqa: PLC0415
    from ._views import ErrorLog, json_logger, views  # noqa: PLC0415
    from ._waiting import WaitNotice  # noqa: PLC0415

    messages = []
    if arguments.system:
        messages.append({"role": "system", "content": arguments.system})
    messages.append({"role": "user", "content": arguments.prompt})
    schema = _schema_format(arguments.schema)
    validator = _schema_validator(schema)
    request: dict[str, Any] = {"n": arguments.n} if arguments.n > 1 else {}
    idle_timeout = arguments.idle_timeout
    client = _client(arguments.base_url, connect_timeout=arguments.timeout, idle_timeout=idle_timeout)
    chat: Any
    if getattr(arguments, "api", "chat") == "responses":
        from ._responses import responses_stream  # noqa: PLC0415

        chat = responses_stream(arguments, client, messages, schema, raw_events)
    else:
        chat = stream(
            client,
            model=arguments.model,
            messages=messages,
            response_format=schema,
            dialect=arguments.dialect,
            idle_timeout=idle_timeout,
            **request,
        )
    errors = ErrorLog()
    notice = WaitNotice(str(client.base_url), idle_timeout)
    observers = [
        *views(getattr(arguments, "output_view", "text"), choices=arguments.n),
        errors,
        notice,
        *extra_observers,
    ]
    if arguments.log_json:
        from deltaflow import sinks  # noqa: PLC0415

        observers.append(sinks.log(json_logger(), include_content=True, content_level="info"))
    try:
        completion = drive(chat, observers)
    finally:
        notice.close()
    return errors.summary() or _schema_problem(completion, validator)


def chat(arguments: argparse.Namespace) -> int:
    """Stream one answer from a provider to the terminal."""
    if (problem := _answer(arguments)) is not None:
        raise CommandError(problem)
    return 0


def _configure_chat(parser: argparse.ArgumentParser) -> None:
    _live_options(parser)
    parser.add_argument(
        "--output",
        dest="output_view",
        choices=["text", "events", "logs"],
        default="text",
        help="the drawn answer, one line per event, or JSON logs on stderr (default: %(default)s)",
    )


def record(arguments: argparse.Namespace) -> int:
    """Stream one answer to the terminal and save its raw chunks as JSONL."""
    from deltaflow import sinks  # noqa: PLC0415

    target = Path(arguments.output)
    if target.suffix != ".jsonl":
        # elsewhere --output is a format (text, events, logs): `record --output events` meant one
        raise CommandError(
            f"record --output is the JSONL file to write, and {arguments.output!r} does not end in .jsonl "
            f"(replay and serve read a recording by its suffix): e.g. --output {target.stem or 'run'}.jsonl"
        )
    if not target.parent.is_dir():
        raise CommandError(f"cannot write {target}: its folder does not exist")
    try:
        # written beside the target and moved there at the end: a failed request leaves no empty file and
        # keeps a previous recording of the same name
        partial = tempfile.NamedTemporaryFile(  # noqa: SIM115 - closed in the finally below
            "w",
            encoding="utf-8",
            dir=target.parent,
            prefix=f".{target.name}.",
            suffix=".partial",
            delete=False,
        )
    except OSError as error:
        raise CommandError(f"cannot write {target}: {error.strerror or error}") from error
    # a temporary file is private (0600); the recording gets the mode any new file would
    Path(partial.name).chmod(0o666 & ~_umask())
    kept = f"the {{}} chunks received are in {target} (a cut-short recording)"
    responses_api = getattr(arguments, "api", "chat") == "responses"
    if responses_api:
        from ._responses import RawEventRecorder  # noqa: PLC0415

        # the Responses API's raw events, not chunks: what the replay server serves on /v1/responses
        recorder: Any = RawEventRecorder(partial)
        observers: tuple[Any, ...] = ()
    else:
        recorder = sinks.jsonl(partial, what="chunks")
        observers = (recorder,)
    try:
        problem = _answer(arguments, observers, recorder if responses_api else None)
    except Exception as error:
        if recorder.lines:
            raise CommandError(describe(error, "record") + "; " + kept.format(recorder.lines)) from error
        raise
    except KeyboardInterrupt:
        if recorder.lines:
            # the chunks are kept (below) as for any cut: Ctrl+C must say so too
            raise KeyboardInterrupt(kept.format(recorder.lines)) from None
        raise
    finally:
        partial.close()
        if recorder.lines:
            Path(partial.name).replace(target)
        else:
            with contextlib.suppress(OSError):
                Path(partial.name).unlink()
    if problem is not None:
        raise CommandError(f"{problem} (the stream is recorded in {target})")
    print(f"recorded {recorder.lines} chunks to {target}", file=sys.stderr)
    return 0


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _configure_record(parser: argparse.ArgumentParser) -> None:
    _live_options(parser)
    parser.add_argument(
        "--output", "-o", required=True, metavar="FILE.jsonl", help="the JSONL file to write (not a format)"
    )


CHAT = Command("chat", chat, _configure_chat)
RECORD = Command("record", record, _configure_record)
