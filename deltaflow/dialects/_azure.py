"""Azure OpenAI: OpenAI's stream plus content-filter annotations in places OpenAI never sends."""

from __future__ import annotations

from typing import Any

from deltaflow.dialects._dialect import Dialect
from deltaflow.dialects._fixes import repair_choices
from deltaflow.dialects._state import StreamState

__all__ = ["AZURE", "hold_prompt_filter"]

# the top-level fields of Azure's first chunk (older api-versions: ``prompt_annotations``)
PROMPT_FILTER_FIELDS = ("prompt_filter_results", "prompt_annotations")


def hold_prompt_filter(chunk: dict[str, Any], state: StreamState) -> None:
    """Fold Azure's prompt-filter chunk into the first real chunk.

    Azure's first chunk is ``{"choices": [], "id": "", "object": "", "created": 0, "model": "",
    "prompt_filter_results": [...]}``. Taken as the first chunk it would give the completion an
    empty id and model; it is held back and its filter results are carried by the next chunk
    (which the completion takes its id, model and extra fields from). If nothing follows, it is
    released as it came when the stream ends.
    """
    if state.held_fields is not None:
        if not chunk["choices"] and chunk.get("usage") is None:
            return
        for key, value in state.held_fields.items():
            chunk.setdefault(key, value)
        state.held_fields = None
        state.held_chunk = None
        state.force = False
        state.changed = True
        return
    if state.started or chunk["choices"] or chunk.get("usage") is not None:
        return
    fields = {key: chunk[key] for key in PROMPT_FILTER_FIELDS if key in chunk}
    if fields:
        state.held_fields = fields
        state.held_chunk = chunk
        state.force = True
        state.drop = True


AZURE = Dialect(
    name="azure",
    steps=(hold_prompt_filter, repair_choices),
    base_urls=("*.openai.azure.com", "*.cognitiveservices.azure.com", "*.services.ai.azure.com"),
    # accepted since api-version 2024-09-01-preview; the usage chunk has `choices: []` as OpenAI's
    include_usage=True,
    aliases=("azure-openai",),
    quirks=(
        'first chunk `choices: []`, `id: ""`, `model: ""` + `prompt_filter_results`: folded into the '
        "next chunk",
        "asynchronous-filter chunks: a choice with `content_filter_offsets` and no `delta`, even after the "
        "finish: given an empty delta",
    ),
)
