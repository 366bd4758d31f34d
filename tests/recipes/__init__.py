"""Tests of deltaflow.recipes: the real openai client against the replay server on loopback."""

from __future__ import annotations

from typing import Any

import openai
from reactivex import abc

from deltaflow.events import BaseEvent
from deltaflow.replay import ReplayServer

MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "hi"}]


def client(server: ReplayServer) -> openai.OpenAI:
    """A real openai client on the replay server, without retries (a fault must show)."""
    return openai.OpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


def aclient(server: ReplayServer) -> openai.AsyncOpenAI:
    """The async twin of ``client``."""
    return openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)


class Recorder(abc.ObserverBase[BaseEvent]):
    """An Rx observer that keeps what it is told: events, completions and errors."""

    def __init__(self) -> None:
        self.events: list[BaseEvent] = []
        self.completed = 0
        self.errors: list[Exception] = []

    def on_next(self, value: BaseEvent) -> None:
        self.events.append(value)

    def on_error(self, error: Exception) -> None:
        self.errors.append(error)

    def on_completed(self) -> None:
        self.completed += 1

    @property
    def types(self) -> list[str]:
        return [event.type for event in self.events]
