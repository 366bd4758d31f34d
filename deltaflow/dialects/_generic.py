"""The generic dialect: every known quirk tolerated; the default for unknown base URLs.

On an OpenAI-conformant stream it changes nothing: every chunk passes through as the same object.
It also serves LM Studio (``name: ""`` on continuations, ``delta.reasoning``), llama.cpp's
server (``reasoning_content``, a ``timings`` object, usage by default), Snowflake Cortex
(``refusal: ""`` beside the content on every delta) and SambaNova (a fractional ``created``),
which need no dialect of their own.
"""

from __future__ import annotations

from deltaflow.dialects._azure import hold_prompt_filter
from deltaflow.dialects._dialect import Dialect
from deltaflow.dialects._fixes import (
    drop_delta_fields,
    drop_empty_refusal,
    fix_tool_calls,
    integer_created,
    lift_choice_usage,
    move_reasoning,
    one_role_per_choice,
    release_usage_once,
    repair_choices,
    split_tool_call_finish,
)
from deltaflow.dialects._groq import lift_x_groq_usage
from deltaflow.dialects._mistral import split_content_parts
from deltaflow.dialects._openrouter import collect_reasoning_details

__all__ = ["GENERIC"]

GENERIC = Dialect(
    name="generic",
    # the canonical order: every other dialect lists a subsequence of it
    steps=(
        hold_prompt_filter,
        integer_created,
        repair_choices,
        lift_choice_usage,
        lift_x_groq_usage,
        split_content_parts,
        move_reasoning("reasoning"),
        collect_reasoning_details,
        drop_delta_fields("index", "channel"),
        drop_empty_refusal,
        one_role_per_choice,
        fix_tool_calls,
        release_usage_once,
        split_tool_call_finish,
    ),
    base_urls=(),
    # unknown servers may reject the field with 400 / 422 (Mistral, LM Studio, older Ollama)
    include_usage=False,
    aliases=("lmstudio", "llamacpp", "llama.cpp", "openai-compatible"),
    quirks=(
        "every quirk of the other dialects",
        '`refusal: ""` beside the content on every delta (Snowflake Cortex): dropped',
        "`created` as a float (SambaNova): whole seconds",
    ),
)
