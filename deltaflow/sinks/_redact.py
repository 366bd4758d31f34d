"""Scrubbing credentials out of anything about to be logged: API keys and Authorization headers."""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

__all__ = ["REDACTED", "redact", "redact_processor", "redact_text"]

REDACTED = "[REDACTED]"

# OpenAI (sk-..., sk-proj-...), Anthropic (sk-ant-...), DeepSeek and most gateways use sk-; Groq gsk_,
# xAI xai-, Google AIza, OpenRouter sk-or-, Hugging Face hf_, Replicate r8_. `*` is kept in the class
# because openai's own error messages quote a masked key ("sk-test-****ET")
_SECRET_KEY = re.compile(r"\b(?:sk-|gsk_|xai-|AIza|hf_|r8_)[A-Za-z0-9_\-*]{6,}")
_BEARER = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=\-*]+", re.IGNORECASE)
# `api_key=...` / `"Authorization": "..."` inside free text: a URL query, a repr, a dumped header line
_NAMED = re.compile(
    r"""((?:proxy-)?authorization|x-api-key|api[_-]?key)(["']?\s*[:=]\s*["']?)(?!\[REDACTED\])"""
    r"""(?!(?:Bearer|Basic)\s)[^\s"'&,;)}\]]+""",
    re.IGNORECASE,
)
_MAX_DEPTH = 8
_PLAIN = (int, float, bool, type(None))


def redact_text(text: str) -> str:
    """``text`` with ``sk-...`` keys, ``Bearer ...`` tokens and ``api_key=...`` values replaced.

    Example::

        >>> redact_text("Authorization: Bearer sk-abc123def456")
        'Authorization: Bearer [REDACTED]'
    """
    if "sk-" not in text and not _might_name_a_secret(text):
        return text  # the common case, a content line or a model name, costs two scans and no regex
    text = _SECRET_KEY.sub(REDACTED, text)
    text = _BEARER.sub(lambda match: f"{match.group(1)} {REDACTED}", text)
    return _NAMED.sub(lambda match: f"{match.group(1)}{match.group(2)}{REDACTED}", text)


def is_secret_name(key: object) -> bool:
    """A mapping key whose value is a credential whatever it looks like: authorization, api_key..."""
    if not isinstance(key, str):
        return False
    name = key.lower().replace("-", "_")
    return name.endswith(("authorization", "api_key")) or name in {"apikey", "x_api_key"}


def redact(value: Any, _depth: int = 0) -> Any:
    """A copy of ``value`` safe to log: secrets in strings, mappings and sequences replaced.

    Strings are scrubbed with ``redact_text``; a mapping's values under keys such as
    ``Authorization``, ``api_key`` or ``x-api-key`` become ``"[REDACTED]"``; lists, tuples and sets
    are scrubbed item by item. Any other object is kept as it is unless its ``repr`` carries a
    secret, in which case the scrubbed ``repr`` takes its place (renderers fall back to ``repr``).

    Example::

        >>> redact({"headers": {"Authorization": "Bearer sk-abc123def456"}, "model": "gpt-4o"})
        {'headers': {'Authorization': '[REDACTED]'}, 'model': 'gpt-4o'}
    """
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, _PLAIN):
        return value
    if _depth >= _MAX_DEPTH:
        return _redact_object(value)
    if isinstance(value, Mapping):
        return {
            key: REDACTED if is_secret_name(key) else redact(item, _depth + 1) for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        items = [redact(item, _depth + 1) for item in value]
        # renderers show a list and a set alike; only a plain tuple keeps its type (not a NamedTuple)
        return tuple(items) if type(value) is tuple else items
    return _redact_object(value)


def redact_processor(logger: Any, method_name: str, event_dict: MutableMapping[str, Any]) -> Any:
    """A structlog processor applying ``redact`` to every value of a record.

    ``sinks.log`` scrubs its own records and the logger's bound context; put this in your structlog
    configuration as well to scrub what other processors add (``merge_contextvars`` above all),
    before the renderer.

    Example::

        structlog.configure(processors=[structlog.contextvars.merge_contextvars,
                                        sinks.redact_processor, structlog.processors.JSONRenderer()])
    """
    # exc_info stays an exception (or tuple) for format_exc_info further down the chain
    return {
        key: item if key == "exc_info" else REDACTED if is_secret_name(key) else redact(item)
        for key, item in event_dict.items()
    }


def _redact_object(value: Any) -> Any:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not break logging; its value goes unseen
        return f"<{type(value).__qualname__}>"
    clean = redact_text(text)
    return value if clean == text else clean


def _might_name_a_secret(text: str) -> bool:
    lowered = text.lower()
    return "bearer" in lowered or "basic " in lowered or "authorization" in lowered or "key" in lowered
