"""``deltaflow serve``: recordings served as an OpenAI-compatible endpoint, with pacing and faults."""

from __future__ import annotations

import argparse
import errno
import sys
import threading
from pathlib import Path
from typing import Any

from ._command import Command
from ._errors import CommandError

__all__ = ["SERVE"]

FAULTS_HELP = """\
faults:
  --fault SPEC injects a fault into every answer; a request's X-Replay-Fault header overrides it
  (the value "none" turns it off for that request). SPEC is one of:
    drop-after=N                       close the connection mid-body after N events
    stall-after=N;stall=SECONDS        go silent for SECONDS (default 10) after N events, then carry on
    malformed-after=N                  send one data: line that is not JSON after N events
    error-after=N;error-code=C;error-message=TEXT
                                       send a provider error chunk after N events, then [DONE]
  e.g. curl ... -H 'X-Replay-Fault: error-after=2;error-code=429;error-message=Rate limited'
"""


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also false for NaN
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative number")
    return value


class _AnyModel:
    """One recording for every model; ``/v1/models`` lists it under its file's name."""

    def __init__(self, scenario: Any, name: str) -> None:
        self._scenario = scenario
        self.models = (name,)

    def __call__(self, _request: dict[str, Any]) -> Any:
        return self._scenario


def _source(arguments: argparse.Namespace, options: dict[str, Any]) -> tuple[Any, str, str]:
    """What to serve, how the start line names it, and which models it answers to."""
    from deltaflow.replay import Samples, Scenario  # noqa: PLC0415

    if not arguments.files:
        samples = Samples(**options)
        return (
            samples,
            "deltaflow's sample recordings",
            (
                f"models: {', '.join(samples.models)}; any other model gets the sample its request asks for "
                "(tools: tool-call, then tool-answer; response_format: structured; else reasoning)"
            ),
        )
    scenarios = {}
    for path in arguments.files:
        if not Path(path).is_file():
            raise CommandError(f"recording not found: {path}")
        scenarios[Path(path).stem] = Scenario.from_file(path, **options)
    if len(scenarios) == 1:
        ((name, scenario),) = scenarios.items()
        return _AnyModel(scenario, name), arguments.files[0], "any model"
    return scenarios, ", ".join(arguments.files), f"model = file name: {', '.join(scenarios)}"


def serve(arguments: argparse.Namespace) -> int:
    """Serve recordings (by default deltaflow's samples) as an OpenAI-compatible endpoint on loopback."""
    from deltaflow.replay import Fault, ReplayServer  # noqa: PLC0415

    try:
        fault = None if arguments.fault is None else Fault.parse(arguments.fault)
    except ValueError as error:
        raise CommandError(f"bad --fault {arguments.fault!r}: {error}") from error
    options = {"ttft": arguments.ttft, "tokens_per_second": arguments.tokens_per_second, "fault": fault}
    source, served, models = _source(arguments, options)
    server = ReplayServer(source, host=arguments.host, port=arguments.port, api_key=arguments.api_key)
    try:
        server.start()
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise CommandError(f"port {arguments.port} on {arguments.host} is already in use") from error
        raise CommandError(f"cannot listen on {arguments.host}:{arguments.port}: {error.strerror}") from error
    try:
        print(f"serving {served} at {server.base_url}; Ctrl+C stops")
        print(models)
        sys.stdout.flush()
        threading.Event().wait()
    finally:
        server.stop()
    return 0


def _configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "files",
        nargs="*",
        help="recordings to serve (.sse or .jsonl; model = file name); none: deltaflow's samples",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8000, help="port; 0 picks a free one (default: %(default)s)"
    )
    parser.add_argument(
        "--tokens-per-second",
        type=_non_negative,
        help="pace events at this rate after the first (default: as fast as possible)",
    )
    parser.add_argument(
        "--ttft", type=_non_negative, default=0.0, help="seconds before the first event (default: 0)"
    )
    parser.add_argument("--fault", metavar="SPEC", help="a fault for every answer (see below)")
    parser.add_argument("--api-key", help="answer 401 to requests without this key (default: accept any)")


SERVE = Command("serve", serve, _configure, epilog=FAULTS_HELP)
