"""The GenAI client metrics of one set of conventions, recorded once per stream at its end."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from deltaflow.sinks._otel_conventions import DURATION_BUCKETS, TOKEN_BUCKETS, MetricNames

if TYPE_CHECKING:
    from opentelemetry.metrics import Counter, Histogram, Meter

__all__ = ["GenAiMetrics"]

_INPUT = "gen_ai.usage.input_tokens"
_OUTPUT = "gen_ai.usage.output_tokens"


class GenAiMetrics:
    """The instruments of one set of conventions, made on ``meter``.

    Every instrument takes the stream's common attributes (operation, provider, models, server);
    the duration adds ``error.type`` when the stream failed.
    """

    def __init__(self, meter: Meter, names: MetricNames) -> None:
        self._duration = _seconds(meter, names.duration, "GenAI client inference operation duration.")
        self._time_to_first_chunk = _seconds(
            meter, names.time_to_first_chunk, "Time from the request to the first chunk of the response."
        )
        self._time_per_output_chunk = _seconds(
            meter, names.time_per_output_chunk, "Time per output chunk after the first one."
        )
        self._token_usage = _tokens(meter, names.token_usage, "Number of input and output tokens used.")
        self._input_tokens = _tokens(meter, names.input_tokens, "Input tokens per inference operation.")
        self._output_tokens = _tokens(meter, names.output_tokens, "Output tokens per inference operation.")
        self._counters: dict[str, Counter] = {
            usage: meter.create_counter(name, unit="{token}", description=f"Tokens counted in {usage}.")
            for usage, name in names.usage_counters.items()
        }

    def record(
        self,
        common: Mapping[str, Any],
        *,
        duration: float,
        error_type: str | None,
        time_to_first_chunk: float | None,
        chunk_times: Iterable[float],
        usage: Mapping[str, int],
    ) -> None:
        """Record one stream's figures.

        Args:
            common: the attributes every instrument takes.
            duration: seconds from the request to the end.
            error_type: the ``error.type`` of a failed stream, else None.
            time_to_first_chunk: seconds to the first chunk, None when none arrived.
            chunk_times: the time per output chunk values to record.
            usage: the ``gen_ai.usage.*`` counts the provider reported.
        """
        # the duration and the per-operation token histograms say how the operation ended
        ended = common if error_type is None else {**common, "error.type": error_type}
        self._duration.record(duration, ended)
        if time_to_first_chunk is not None:
            self._time_to_first_chunk.record(time_to_first_chunk, common)
        for seconds in chunk_times:
            self._time_per_output_chunk.record(seconds, common)
        for token_type, name in (("input", _INPUT), ("output", _OUTPUT)):
            if self._token_usage is not None and name in usage:
                self._token_usage.record(usage[name], {**common, "gen_ai.token.type": token_type})
        # the latest conventions count every operation, failed ones too: 0 when no usage arrived
        if self._input_tokens is not None:
            self._input_tokens.record(usage.get(_INPUT, 0), ended)
        if self._output_tokens is not None:
            self._output_tokens.record(usage.get(_OUTPUT, 0), ended)
        if self._counters:
            # the provider does not split chat usage by modality: `unknown`, as the conventions say
            counted = {**common, "gen_ai.token.modality": "unknown"}
            for name, counter in self._counters.items():
                if name in usage or name in {_INPUT, _OUTPUT}:
                    counter.add(usage.get(name, 0), counted)


def _seconds(meter: Meter, name: str, description: str) -> Histogram:
    return meter.create_histogram(
        name, unit="s", description=description, explicit_bucket_boundaries_advisory=DURATION_BUCKETS
    )


def _tokens(meter: Meter, name: str | None, description: str) -> Histogram | None:
    if name is None:
        return None
    return meter.create_histogram(
        name, unit="{token}", description=description, explicit_bucket_boundaries_advisory=TOKEN_BUCKETS
    )
