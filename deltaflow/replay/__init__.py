"""An OpenAI-compatible chat-completions server on loopback that replays recorded or scripted streams.

Tests drive the real ``openai`` client against it over real HTTP, and ``deltaflow demo`` runs on it
without an API key or network. Faults (dropped connections, stalls, malformed lines, mid-stream
provider errors) come from a scenario or from a request's ``X-Replay-Fault`` header. ``Samples`` serves the
recordings packaged with deltaflow (``deltaflow serve`` given no file).
"""

from ._app import ReplayApp, ScenarioSource
from ._fault import FAULT_HEADER, Fault, FaultKind
from ._journal import RecordedRequest
from ._recordings import load_recording
from ._responses import scripted_response
from ._samples import SAMPLE_SCRIPTS, Samples, sample_text
from ._scenario import Scenario, ScenarioOptions
from ._scripted import scripted_chunks
from ._server import ReplayServer, serve
from ._wire import Comment, ReplayItem

__all__ = [
    "FAULT_HEADER",
    "SAMPLE_SCRIPTS",
    "Comment",
    "Fault",
    "FaultKind",
    "RecordedRequest",
    "ReplayApp",
    "ReplayItem",
    "ReplayServer",
    "Samples",
    "Scenario",
    "ScenarioOptions",
    "ScenarioSource",
    "load_recording",
    "sample_text",
    "scripted_chunks",
    "scripted_response",
    "serve",
]
