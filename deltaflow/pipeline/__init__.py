"""Sources, the pull driver and the ``ChatStream`` facades."""

from deltaflow.pipeline._chat_stream import AsyncChatStream, ChatStream, ParseErrors
from deltaflow.pipeline._chunks import chunk_from_dict, chunk_from_json
from deltaflow.pipeline._http import DEFAULT_IDLE_TIMEOUT, AsyncChunkRequest, ChunkRequest, Transport
from deltaflow.pipeline._live import astream, request_params, stream
from deltaflow.pipeline._sources import (
    achunks_from_sse,
    chunks_from_jsonl,
    chunks_from_sse,
    from_async_iterable,
    from_chunks,
    from_iterable,
    from_jsonl,
    from_sse,
)
from deltaflow.pipeline._sse import ServerSentEvent, SSEDecoder, aiter_sse, iter_sse

__all__ = [
    "DEFAULT_IDLE_TIMEOUT",
    "AsyncChatStream",
    "AsyncChunkRequest",
    "ChatStream",
    "ChunkRequest",
    "ParseErrors",
    "SSEDecoder",
    "ServerSentEvent",
    "Transport",
    "achunks_from_sse",
    "aiter_sse",
    "astream",
    "chunk_from_dict",
    "chunk_from_json",
    "chunks_from_jsonl",
    "chunks_from_sse",
    "from_async_iterable",
    "from_chunks",
    "from_iterable",
    "from_jsonl",
    "from_sse",
    "iter_sse",
    "request_params",
    "stream",
]
