"""The known dialects, by name and by base URL."""

from __future__ import annotations

from types import MappingProxyType

from deltaflow.dialects._azure import AZURE
from deltaflow.dialects._deepseek import DEEPSEEK
from deltaflow.dialects._dialect import Dialect
from deltaflow.dialects._gemini import GEMINI
from deltaflow.dialects._generic import GENERIC
from deltaflow.dialects._groq import GROQ
from deltaflow.dialects._mistral import MISTRAL
from deltaflow.dialects._moonshot import MOONSHOT
from deltaflow.dialects._ollama import OLLAMA
from deltaflow.dialects._openai import OPENAI
from deltaflow.dialects._openrouter import OPENROUTER
from deltaflow.dialects._perplexity import PERPLEXITY
from deltaflow.dialects._qwen import QWEN
from deltaflow.dialects._vllm import VLLM
from deltaflow.dialects._xai import XAI
from deltaflow.dialects._zhipu import ZHIPU

__all__ = ["DIALECTS", "detect_dialect", "get_dialect", "known_dialects"]

DIALECTS: MappingProxyType[str, Dialect] = MappingProxyType(
    {
        dialect.name: dialect
        for dialect in (
            OPENAI,
            GENERIC,
            AZURE,
            DEEPSEEK,
            GEMINI,
            GROQ,
            MISTRAL,
            MOONSHOT,
            OLLAMA,
            OPENROUTER,
            PERPLEXITY,
            QWEN,
            VLLM,
            XAI,
            ZHIPU,
        )
    }
)
"""Every dialect by its canonical name (read-only)."""

_BY_NAME: MappingProxyType[str, Dialect] = MappingProxyType(
    {
        **{alias: dialect for dialect in DIALECTS.values() for alias in dialect.aliases},
        **DIALECTS,
    }
)


def known_dialects() -> list[str]:
    """The canonical dialect names, sorted."""
    return sorted(DIALECTS)


def get_dialect(name: str | Dialect) -> Dialect:
    """The dialect called ``name`` (a canonical name or an alias, any case); a ``Dialect`` as is.

    Raises:
        ValueError: no dialect has that name; the message lists the known names.
    """
    if isinstance(name, Dialect):
        return name
    dialect = _BY_NAME.get(name.strip().lower()) if isinstance(name, str) else None
    if dialect is None:
        aliases = sorted(set(_BY_NAME) - set(DIALECTS))
        raise ValueError(
            f"unknown dialect {name!r}; known dialects: {', '.join(known_dialects())} "
            f"(aliases: {', '.join(aliases)})"
        )
    return dialect


def detect_dialect(base_url: str | None) -> Dialect:
    """The dialect for a client's base URL: the provider's own, else ``generic``.

    ``generic`` changes nothing on an OpenAI-conformant stream, so it is the safe default for
    unknown servers (and for ``None``).
    """
    if base_url:
        url = str(base_url)
        for dialect in DIALECTS.values():
            if dialect.matches(url):
                return dialect
    return GENERIC
