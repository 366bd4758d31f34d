"""The OpenTelemetry GenAI semantic conventions ``sinks.otel`` writes: names, units, buckets, providers.

The conventions are in development and being renamed. Two sets of metric names are known here:

- ``v1.41``: the last release of ``open-telemetry/semantic-conventions`` that held them, the names
  the backends read today: ``gen_ai.client.operation.duration``, ``gen_ai.client.token.usage`` (a
  histogram split by ``gen_ai.token.type``), ``gen_ai.client.operation.time_to_first_chunk`` and
  ``gen_ai.client.operation.time_per_output_chunk``.
- ``latest``: ``open-telemetry/semantic-conventions-genai``, where they moved:
  ``gen_ai.client.inference.{duration,time_to_first_chunk,time_per_output_chunk}``, token counters
  ``gen_ai.client.inference.usage.*`` and per-operation token histograms
  ``gen_ai.client.inference.operation.{input,output}_tokens``.

Span attributes are the same in both sets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Literal, get_args

from deltaflow.dialects import Dialect, get_dialect

__all__ = [
    "DURATION_BUCKETS",
    "OPT_IN_VARIABLE",
    "TOKEN_BUCKETS",
    "Conventions",
    "MetricNames",
    "metric_names",
    "provider_name",
    "resolve_conventions",
]

Conventions = Literal["v1.41", "latest"]

OPT_IN_VARIABLE = "OTEL_SEMCONV_STABILITY_OPT_IN"
# the value the conventions ask instrumentations to honour before switching to the newest names
_OPT_IN_LATEST = "gen_ai_latest_experimental"

# the ExplicitBucketBoundaries advice of both sets: seconds for durations, tokens for usage
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
TOKEN_BUCKETS = tuple(4**power for power in range(14))  # 1, 4, 16, ... 67108864

# deltaflow's dialects to the conventions' well-known gen_ai.provider.name values; a dialect not
# listed here has no well-known value and is reported under its own name (openrouter, qwen, ...)
_PROVIDERS: Mapping[str, str] = MappingProxyType(
    {
        "openai": "openai",
        # an unknown OpenAI-compatible server speaks OpenAI's flavour of the API
        "generic": "openai",
        "azure": "azure.ai.openai",
        "deepseek": "deepseek",
        "gemini": "gcp.gemini",
        "groq": "groq",
        "mistral": "mistral_ai",
        "moonshot": "moonshot_ai",
        "perplexity": "perplexity",
        "xai": "x_ai",
    }
)


@dataclass(frozen=True, slots=True)
class MetricNames:
    """The metric names of one set of conventions.

    Attributes:
        duration: the operation duration histogram.
        time_to_first_chunk: the time to first chunk histogram.
        time_per_output_chunk: the time per output chunk histogram.
        token_usage: the ``v1.41`` token histogram (split by ``gen_ai.token.type``), or None.
        input_tokens: the ``latest`` per-operation input token histogram, or None.
        output_tokens: the ``latest`` per-operation output token histogram, or None.
        usage_counters: the ``latest`` token counters by usage field, empty for ``v1.41``.
    """

    duration: str
    time_to_first_chunk: str
    time_per_output_chunk: str
    token_usage: str | None = None
    input_tokens: str | None = None
    output_tokens: str | None = None
    usage_counters: Mapping[str, str] = field(default_factory=dict)


_V1_41 = MetricNames(
    duration="gen_ai.client.operation.duration",
    time_to_first_chunk="gen_ai.client.operation.time_to_first_chunk",
    time_per_output_chunk="gen_ai.client.operation.time_per_output_chunk",
    token_usage="gen_ai.client.token.usage",  # noqa: S106 - a metric name, not a secret
)
_LATEST = MetricNames(
    duration="gen_ai.client.inference.duration",
    time_to_first_chunk="gen_ai.client.inference.time_to_first_chunk",
    time_per_output_chunk="gen_ai.client.inference.time_per_output_chunk",
    input_tokens="gen_ai.client.inference.operation.input_tokens",
    output_tokens="gen_ai.client.inference.operation.output_tokens",
    usage_counters=MappingProxyType(
        {
            "gen_ai.usage.input_tokens": "gen_ai.client.inference.usage.input_tokens",
            "gen_ai.usage.output_tokens": "gen_ai.client.inference.usage.output_tokens",
            "gen_ai.usage.cache_read.input_tokens": "gen_ai.client.inference.usage.cache_read.input_tokens",
            "gen_ai.usage.reasoning.output_tokens": "gen_ai.client.inference.usage.reasoning.output_tokens",
        }
    ),
)


def resolve_conventions(conventions: Conventions | None) -> Conventions:
    """The set asked for; None reads ``OTEL_SEMCONV_STABILITY_OPT_IN`` (``gen_ai_latest_experimental``).

    Raises:
        ValueError: an unknown set.
    """
    if conventions is None:
        opted_in = os.environ.get(OPT_IN_VARIABLE, "")
        return "latest" if _OPT_IN_LATEST in {part.strip() for part in opted_in.split(",")} else "v1.41"
    if conventions not in get_args(Conventions):
        raise ValueError(f"conventions must be one of {get_args(Conventions)}, got {conventions!r}")
    return conventions


def metric_names(conventions: Conventions) -> MetricNames:
    """The metric names of ``conventions``."""
    return _LATEST if conventions == "latest" else _V1_41


def provider_name(dialect: str | Dialect) -> str:
    """The ``gen_ai.provider.name`` for a dialect: the well-known value, else the dialect's name.

    Raises:
        ValueError: an unknown dialect name.
    """
    name = get_dialect(dialect).name
    return _PROVIDERS.get(name, name)
