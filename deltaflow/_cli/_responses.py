"""``--api responses`` for ``chat`` and ``record``: the answer from ``POST /v1/responses``."""

from __future__ import annotations

import argparse
from collections.abc import Iterable, Iterator
from typing import IO, Any

from ._errors import CommandError

__all__ = ["RawEventRecorder", "responses_stream"]


class RawEventRecorder:
    """Writes each raw Responses event as one JSON line, as received (what ``record`` saves)."""

    def __init__(self, file: IO[str]) -> None:
        self.file = file
        self.lines = 0

    def tee(self, events: Iterable[Any]) -> Iterator[Any]:
        """The events, each written before it is passed on."""
        try:
            for event in events:
                self.file.write(event.model_dump_json(exclude_unset=True, warnings=False) + "\n")
                self.lines += 1
                yield event
        finally:
            close = getattr(events, "close", None)
            if callable(close):
                close()  # the HTTP response, at once: not when the garbage collector gets to it


def responses_stream(
    arguments: argparse.Namespace,
    client: Any,
    messages: list[dict[str, Any]],
    schema: dict[str, Any] | None,
    recorder: RawEventRecorder | None,
) -> Any:
    """A ``ResponseStream`` for the command's arguments; the request goes out on first iteration."""
    from deltaflow.responses import ResponseRequest, ResponseStream, request_params  # noqa: PLC0415

    if arguments.n > 1:
        raise CommandError("-n is not available with --api responses: the Responses API answers once")
    create: dict[str, Any] = {"model": arguments.model, "input": messages[-1]["content"]}
    if messages[0]["role"] == "system":
        create["instructions"] = messages[0]["content"]
    if schema is not None:
        body = schema["json_schema"]
        create["text"] = {
            "format": {"type": "json_schema", "name": body["name"], "schema": body["schema"], "strict": True}
        }
    params, _ = request_params(create, text_format=None, tools=None)
    request = ResponseRequest(client, params)
    events: Iterable[Any] = recorder.tee(request) if recorder is not None else request
    stream: ResponseStream[Any] = ResponseStream(events)
    return stream
