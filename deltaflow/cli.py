"""The ``deltaflow`` command: ``deltaflow demo`` streams from the embedded replay server, no key needed."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from pydantic import BaseModel

from deltaflow.events import BaseEvent
from deltaflow.pipeline import ChatStream

__all__ = ["main"]


class Forecast(BaseModel):
    """The structured answer of the demo's second request."""

    city: str
    celsius: float
    summary: str


def _describe(event: BaseEvent) -> str | None:
    kind = event.type
    if kind in ("content.delta", "reasoning.delta", "refusal.delta"):
        return f"{kind:<22} {event.delta!r}"
    if kind == "content.parsed.delta":
        return f"{kind:<22} {event.op} {list(event.path)} {event.value!r}"
    if kind == "content.done":
        return f"{kind:<22} parsed={event.parsed!r}"
    if kind == "reasoning.done":
        return f"{kind:<22} {event.reasoning!r}"
    if kind == "choice.done":
        return f"{kind:<22} finish_reason={event.finish_reason}"
    if kind == "usage":
        return f"{kind:<22} {event.usage.total_tokens} tokens"
    return None


def demo() -> int:
    """Replay two scripted answers through the real openai client and the full pipeline."""
    import openai  # noqa: PLC0415 - only the demo needs the client and the server

    from deltaflow.replay import ReplayServer, Scenario  # noqa: PLC0415

    scenarios = {
        "replay-reasoning": Scenario.scripted(
            "Paris is the capital of France.",
            reasoning="The user asks for a capital. Easy.",
            model="replay-reasoning",
        ),
        "replay-structured": Scenario.scripted(
            Forecast(city="Oslo", celsius=-3.5, summary="Clear and cold").model_dump_json(),
            model="replay-structured",
        ),
    }
    with ReplayServer(scenarios) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="demo-key-not-sent-anywhere")
        for model, response_format in (("replay-reasoning", None), ("replay-structured", Forecast)):
            print(f"== {model} ({server.base_url})")
            chunks = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "demo"}], stream=True
            )
            with ChatStream(chunks, response_format=response_format) as stream:
                for event in stream:
                    line = _describe(event)
                    if line is not None:
                        print("  " + line)
                completion = stream.get_final_completion()
            print(
                f"  final: {completion.choices[0].message.parsed or completion.choices[0].message.content!r}"
            )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``deltaflow`` command."""
    parser = argparse.ArgumentParser(prog="deltaflow", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser(
        "demo", help="stream scripted answers from the embedded replay server", description=demo.__doc__
    )
    arguments = parser.parse_args(argv)
    if arguments.command == "demo":
        return demo()
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
