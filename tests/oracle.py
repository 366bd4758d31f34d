"""openai's own ChatCompletionStreamState as the oracle: the project's tests use the public helper."""

from __future__ import annotations

from deltaflow.testing import OPENAI_EVENT_FIELDS, Run, assert_same, run_openai
from deltaflow.testing import run_chat_stream as run_deltaflow

__all__ = ["OPENAI_EVENT_FIELDS", "Run", "assert_same", "run_deltaflow", "run_openai"]
