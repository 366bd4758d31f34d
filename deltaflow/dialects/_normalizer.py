"""``StreamNormalizer``: one stream's chunks in, OpenAI-shaped chunks out.

The fast path reads only the attributes a provider can get wrong and hands a conformant chunk on
as the same object. A chunk it flags is dumped to JSON, rewritten by the dialect's steps, and
built again; if no step changed it, the original object goes on after all.
"""

from __future__ import annotations

from typing import Any

from openai.types.chat import ChatCompletionChunk

from deltaflow._openai_compat import build_chunk
from deltaflow._shown import shown
from deltaflow.dialects._dialect import Dialect
from deltaflow.dialects._fixes import (
    REASONING_FIELD,
    drop_empty_refusal,
    fix_tool_calls,
    integer_created,
    one_role_per_choice,
    split_tool_call_finish,
)
from deltaflow.dialects._state import StreamState, ToolCalls, Unrecognized
from deltaflow.errors import ProviderError
from deltaflow.state import RejectedChunk

__all__ = ["Outcome", "StreamNormalizer"]

Outcome = ChatCompletionChunk | RejectedChunk | ProviderError
"""What one input turns into: chunks to pass on, payloads rejected, or the error ending the stream."""

# top-level keys that may need a step: a mid-stream error (OpenRouter), Groq's usage, Azure's filter
_TOP_LEVEL_QUIRKS = frozenset({"error", "x_groq", "prompt_filter_results", "prompt_annotations"})
_BASE_FIELDS = ("id", "object", "created", "model")
_TEXT_FIELDS = ("content", "refusal", "role", REASONING_FIELD)


class StreamNormalizer:
    """The normaliser of one stream under one dialect; keeps that stream's state.

    ``feed`` each chunk in order, then ``complete`` when the stream ends, or ``fail`` when it
    breaks; each returns what to pass on.
    """

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self._steps = dialect.steps
        self._state = StreamState()
        self._fix_roles = one_role_per_choice in self._steps
        self._fix_tools = fix_tool_calls in self._steps
        self._split_finish = split_tool_call_finish in self._steps
        self._check_created = integer_created in self._steps
        self._drop_empty_refusal = drop_empty_refusal in self._steps
        self._last: ChatCompletionChunk | None = None

    # -- the three entry points ------------------------------------------------------------------

    def feed(self, chunk: object) -> ChatCompletionChunk | list[Outcome]:
        """One input in: the same chunk when it needs nothing, else a list of outcomes.

        This is the hot path: it reads only what a provider can get wrong, and a conformant chunk
        goes on as the same object.
        """
        if type(chunk) is not ChatCompletionChunk:
            return self._feed_other(chunk)
        self._last = chunk
        extra = chunk.__pydantic_extra__
        if extra and not _TOP_LEVEL_QUIRKS.isdisjoint(extra):
            if extra.get("error") is not None:
                # OpenRouter: HTTP 200, then a chunk with a top-level `error` (and usage)
                return self._fail_payload(_readable(chunk, extra), None)
            if self._steps:
                return self._rewrite(chunk)
        if not self._steps:
            return chunk
        state = self._state
        try:
            conforms = chunk.usage is None and not state.force and self._conforms(chunk, state)
        except (AttributeError, LookupError, TypeError, ValueError, RecursionError):
            # openai builds chunks without validation: a value of another type where the fast path
            # looks (a choice that is a list, `tool_calls: 1.5`) is for the slow path to name
            conforms = False
        if not conforms:
            return self._rewrite(chunk)
        state.started = True
        return chunk

    def _conforms(self, chunk: ChatCompletionChunk, state: StreamState) -> bool:
        """Whether every choice is as OpenAI sends it; if so, the state takes note of its role and calls."""
        if self._check_created:
            if type(chunk.created) is not int:
                return False
            # a provider that sends whole seconds first sends them throughout: checked once
            self._check_created = False
        new_roles: list[int] | None = None
        calls: list[tuple[ToolCalls, Any]] | None = None
        for choice in chunk.choices:
            index = choice.index
            delta = choice.delta
            if delta is None or type(index) is not int:
                return False
            choice_extra = choice.__pydantic_extra__
            if choice_extra and "usage" in choice_extra:
                return False
            delta_extra = delta.__pydantic_extra__
            if delta_extra:
                for key, value in delta_extra.items():
                    if key != REASONING_FIELD or (value is not None and type(value) is not str):
                        return False
            content = delta.content
            if content is not None and type(content) is not str:
                return False
            refusal = delta.refusal
            if refusal is not None and self._drop_empty_refusal and refusal == "" and content is not None:
                return False
            if self._fix_roles:
                # the role goes on a choice's first delta, and only there
                if index in state.roles:
                    if delta.role is not None:
                        return False
                elif delta.role is None:
                    return False
                elif new_roles is None:
                    new_roles = [index]
                else:
                    new_roles.append(index)
            fragments = delta.tool_calls
            if fragments is not None:
                if self._split_finish and choice.finish_reason:
                    return False
                if self._fix_tools:
                    if len(fragments) != 1:
                        return False
                    fragment = fragments[0]
                    function = fragment.function
                    tracker = state.tools.get(index) or ToolCalls()
                    name = function.name if function is not None else None
                    if not tracker.conforms(fragment.index, fragment.id, name, fragment.type):
                        return False
                    if calls is None:
                        calls = []
                    calls.append((tracker, fragment))
                    state.tools[index] = tracker
        if new_roles is not None:
            state.roles.update(new_roles)
        if calls is not None:
            for tracker, fragment in calls:
                function = fragment.function
                tracker.accept(fragment.index, fragment.id, function.name if function is not None else None)
        return True

    def complete(self) -> list[Outcome]:
        """The stream ended: what was held back goes out now."""
        state = self._state
        outcomes: list[Outcome] = []
        if state.held_fields is not None and isinstance(state.held_chunk, dict):
            # Azure's prompt-filter chunk with nothing after it
            outcomes.append(build_chunk(state.held_chunk))
            state.held_fields = state.held_chunk = None
        outcomes.extend(self._flush())
        return outcomes

    def fail(self, error: Exception) -> list[Outcome]:
        """The stream broke with ``error``: what it carried, then what was held back, goes out first.

        A ``ProviderError`` raised while decoding an error payload (OpenRouter's error chunk in an
        SSE body) keeps the payload in ``.error``; its usage and content are passed on here.
        """
        if isinstance(error, ProviderError) and isinstance(error.error, dict):
            outcomes = self._fail_payload(error.error, error)
            return [outcome for outcome in outcomes if outcome is not error]
        return self.complete()

    # -- the slow path ---------------------------------------------------------------------------

    def _feed_other(self, chunk: object) -> ChatCompletionChunk | list[Outcome]:
        if isinstance(chunk, ChatCompletionChunk):
            try:
                data = _dump(chunk)
            except (ValueError, RecursionError) as exc:
                return [RejectedChunk(shown(chunk, limit=2000), f"chunk could not be read: {shown(exc)}")]
            return self.feed(build_chunk(data))
        if isinstance(chunk, dict):
            if chunk.get("error") is not None:
                return self._fail_payload(chunk, None)
            if isinstance(chunk.get("choices"), list):
                return self.feed(build_chunk(chunk))
        return [RejectedChunk(chunk, f"not a chat completion chunk: {type(chunk).__name__}")]

    def _rewrite(self, chunk: ChatCompletionChunk) -> ChatCompletionChunk | list[Outcome]:
        try:
            data = _dump(chunk)
        except (ValueError, RecursionError) as exc:
            # extras nested past pydantic's serialisation depth: reported and skipped, not fatal
            return [RejectedChunk(shown(chunk, limit=2000), f"chunk could not be read: {shown(exc)}")]
        try:
            payloads = self._apply(data)
        except Unrecognized as exc:
            return [RejectedChunk(_dump(chunk), str(exc))]
        if payloads is None:
            return chunk
        return [build_chunk(payload) for payload in payloads]

    def _apply(self, data: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Run the steps on one chunk's JSON; None when nothing changed.

        Raises:
            Unrecognized: the chunk is not something any step can read.
        """
        state = self._state
        state.changed = state.drop = False
        state.after = []
        _check_input(data)
        state.base = {key: data[key] for key in _BASE_FIELDS if key in data}
        try:
            for step in self._steps:
                step(data, state)
        except Unrecognized:
            raise
        except (AttributeError, LookupError, TypeError, ValueError, RecursionError) as exc:
            raise Unrecognized(f"could not normalise the chunk: {shown(exc)}") from exc
        if state.drop:
            return []
        _check_output(data)
        state.started = True
        if not state.changed and not state.after:
            return None
        return [data, *state.after]

    def _fail_payload(self, payload: dict[str, Any], error: ProviderError | None) -> list[Outcome]:
        """The outcomes of an error payload: its content and usage, what was held, then the error."""
        if error is None:
            inner = payload.get("error")
            message = inner.get("message") if isinstance(inner, dict) else inner
            error = ProviderError(
                message if type(message) is str and message else shown(inner), error=payload
            )
        rest = {key: value for key, value in payload.items() if key != "error"}
        choices = rest.get("choices")
        if not isinstance(choices, list) or not any(_carries_data(choice) for choice in choices):
            rest["choices"] = []
        outcomes: list[Outcome] = []
        if rest["choices"] or rest.get("usage") is not None:
            for key, value in self._base().items():
                rest.setdefault(key, value)
            if self._steps:
                try:
                    payloads = self._apply(rest)
                except Unrecognized as exc:
                    outcomes.append(RejectedChunk(rest, str(exc)))
                else:
                    items = [rest] if payloads is None else payloads
                    outcomes.extend(build_chunk(item) for item in items)
            else:
                outcomes.append(build_chunk(rest))
        outcomes.extend(self.complete())
        outcomes.append(error)
        return outcomes

    def _flush(self) -> list[Outcome]:
        """Chunks for what the steps held back: OpenRouter reasoning details, cumulative usage."""
        state = self._state
        chunks: list[Outcome] = []
        if not state.reasoning_details and state.held_usage is None:
            return chunks
        state.base = self._base()
        for index, details in sorted(state.reasoning_details.items()):
            if details:
                delta = {"reasoning_details": details}
                chunks.append(build_chunk(state.new_chunk([{"index": index, "delta": delta}])))
        state.reasoning_details = {}
        if state.held_usage is not None:
            if state.sent_usage is None:
                chunks.append(build_chunk(state.new_chunk([], usage=state.held_usage)))
                state.sent_usage = state.held_usage
            state.held_usage = None
        return chunks

    def _base(self) -> dict[str, Any]:
        """The id, object, creation time and model of the latest chunk."""
        last = self._last
        if last is None:
            return dict(self._state.base)
        fields = last.model_fields_set | set(last.__pydantic_extra__ or ())
        base = {key: getattr(last, key) for key in _BASE_FIELDS if key in fields}
        base["object"] = "chat.completion.chunk"
        return base


def _dump(chunk: ChatCompletionChunk) -> dict[str, Any]:
    """A chunk's JSON as it was received: unset fields stay absent, odd values are kept."""
    return chunk.model_dump(mode="json", exclude_unset=True, warnings=False)


def _readable(chunk: ChatCompletionChunk, extra: dict[str, Any]) -> dict[str, Any]:
    """A chunk's JSON, or only its ``error`` when the rest is nested too deep to serialise."""
    try:
        return _dump(chunk)
    except (ValueError, RecursionError):
        return {"error": extra.get("error")}


def _check_input(data: dict[str, Any]) -> None:
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise Unrecognized("the chunk has no `choices` list")
    usage = data.get("usage")
    if usage is not None and not isinstance(usage, dict):
        raise Unrecognized(f"usage must be an object, got {shown(usage)}")
    for choice in choices:
        if not isinstance(choice, dict):
            raise Unrecognized(f"a choice must be an object, got {shown(choice)}")
        delta = choice.get("delta")
        if delta is not None and not isinstance(delta, dict):
            raise Unrecognized(f"a delta must be an object, got {shown(delta)}")


def _check_output(data: dict[str, Any]) -> None:
    """What ``accumulate`` will read must have its OpenAI types by now."""
    for choice in data["choices"]:
        index = choice.get("index")
        if type(index) is not int or index < 0:
            raise Unrecognized(f"choice index must be a non-negative integer, got {shown(index)}")
        delta = choice.get("delta")
        if not isinstance(delta, dict):
            raise Unrecognized(f"choice {index} has no delta")
        for field in _TEXT_FIELDS:
            value = delta.get(field)
            if value is not None and type(value) is not str:
                raise Unrecognized(f"delta.{field} must be a string, got {shown(value)}")


def _carries_data(choice: object) -> bool:
    """Whether an error chunk's choice carries anything beyond an empty delta."""
    if not isinstance(choice, dict):
        return False
    if choice.get("finish_reason"):
        return True
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        return False
    return any(key != "role" and value not in (None, "", [], {}) for key, value in delta.items())
