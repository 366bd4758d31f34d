"""Provider dialects: how OpenAI-compatible providers bend the chat-completion stream.

A ``Dialect`` holds one provider family's quirks as data and small steps; ``operators.normalize``
applies it, turning the provider's chunks into the shape OpenAI sends, which the rest of the
pipeline reads. ``generic`` tolerates every quirk known here and leaves conformant streams alone.

Example::

    dialect = dialects.detect_dialect(str(client.base_url))
    deltaflow.from_chunks(stream).pipe(ops.normalize(dialect), ops.to_events())
"""

from deltaflow.dialects._dialect import Dialect, Step
from deltaflow.dialects._normalizer import Outcome, StreamNormalizer
from deltaflow.dialects._registry import DIALECTS, detect_dialect, get_dialect, known_dialects

__all__ = [
    "DIALECTS",
    "Dialect",
    "Outcome",
    "Step",
    "StreamNormalizer",
    "detect_dialect",
    "get_dialect",
    "known_dialects",
]
