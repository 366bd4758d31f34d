"""Front-end wire formats: deltaflow's events as the AI SDK's UI Message Stream and as AG-UI events.

The relays (``recipes.relay_endpoint``, ``durable.durable_endpoint``) speak them when given
``wire="ai-sdk"`` or ``wire="ag-ui"`` (or a request's ``?wire=``); the encoders and request parsers
here are what they use, for other servers.

- ``AiSdkEncoder``: events as UI message chunks, for ``useChat`` and ``readUIMessageStream``.
- ``AgUiEncoder``: events as one AG-UI run, for ``@ag-ui/client``'s ``HttpAgent``.
- ``ai_sdk_request`` / ``ag_ui_request``: each protocol's request body with its messages as
  OpenAI chat messages.
"""

from deltaflow.wire._ag_ui import AgUiEncoder
from deltaflow.wire._ai_sdk import AiSdkEncoder
from deltaflow.wire._encoder import WireEncoder, WireFormat, sse_data
from deltaflow.wire._requests import ag_ui_request, ai_sdk_request

__all__ = [
    "AgUiEncoder",
    "AiSdkEncoder",
    "WireEncoder",
    "WireFormat",
    "ag_ui_request",
    "ai_sdk_request",
    "sse_data",
]
