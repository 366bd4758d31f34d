"""OpenAI's Responses API (``POST /v1/responses``) as a second source of deltaflow's events.

``stream`` / ``astream`` are drop-ins for ``client.responses.stream(...)``: the same parameters, the
same events and fields as openai's helper (``response.output_text.delta`` with ``snapshot``,
``get_final_response()`` with ``output_parsed``), and beside them deltaflow's own events, the same as
for Chat Completions, so every operator and sink works on a Responses stream unchanged.
``ResponseStream`` / ``AsyncResponseStream`` are the same facade over any (async) iterable of events.
"""

from deltaflow.responses._errors import ResponseContractError, ResponseFailed, ResponseIncomplete
from deltaflow.responses._events import UnknownResponseEvent, event_from_dict, event_from_json
from deltaflow.responses._live import astream, stream
from deltaflow.responses._request import AsyncResponseRequest, ResponseRequest, request_params
from deltaflow.responses._state import ResponseState
from deltaflow.responses._stream import AsyncResponseStream, ResponseStream

__all__ = [
    "AsyncResponseRequest",
    "AsyncResponseStream",
    "ResponseContractError",
    "ResponseFailed",
    "ResponseIncomplete",
    "ResponseRequest",
    "ResponseState",
    "ResponseStream",
    "UnknownResponseEvent",
    "astream",
    "event_from_dict",
    "event_from_json",
    "request_params",
    "stream",
]
