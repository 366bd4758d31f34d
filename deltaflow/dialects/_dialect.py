"""``Dialect``: how one provider family bends the chat-completion stream, as data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from deltaflow.dialects._normalizer import StreamNormalizer
    from deltaflow.dialects._state import StreamState

__all__ = ["Dialect", "Step"]

Step = Callable[[dict[str, Any], "StreamState"], None]
"""One normalisation step: rewrites a chunk's JSON in place, keeping what it must in the stream state.

Steps run only on chunks the fast path flagged, in the order the dialect lists them.
"""


@dataclass(frozen=True, slots=True)
class Dialect:
    """A provider family's streaming quirks and how to turn them into OpenAI-shaped chunks.

    Attributes:
        name: the canonical name (``get_dialect`` accepts it and the aliases).
        steps: the normalisation steps, in order; an empty tuple passes chunks through untouched.
        base_urls: ``fnmatch`` patterns matched against the base URL's ``host`` and ``host:port``,
            for ``detect_dialect``.
        include_usage: whether the provider accepts ``stream_options={"include_usage": True}``
            (some reject the unknown field with HTTP 400/422).
        aliases: other names for the dialect.
        quirks: one line per quirk handled, naming the shape the provider sends.
    """

    name: str
    steps: tuple[Step, ...] = ()
    base_urls: tuple[str, ...] = ()
    include_usage: bool = False
    aliases: tuple[str, ...] = ()
    quirks: tuple[str, ...] = ()

    def normalizer(self) -> StreamNormalizer:
        """A fresh per-stream normaliser: one per subscription, never shared between streams."""
        from deltaflow.dialects._normalizer import StreamNormalizer  # noqa: PLC0415 - import cycle

        return StreamNormalizer(self)

    def matches(self, base_url: str) -> bool:
        """Whether ``base_url`` (scheme optional) points at this provider."""
        parts = urlsplit(base_url if "//" in base_url else f"//{base_url}")
        host = (parts.hostname or "").lower()
        if not host:
            return False
        try:
            port = parts.port
        except ValueError:
            port = None
        netloc = f"{host}:{port}" if port is not None else host
        return any(fnmatchcase(host, pattern) or fnmatchcase(netloc, pattern) for pattern in self.base_urls)
