"""The running state of one Responses stream: openai's helper events out, and the chat view of each event.

``ResponseState.handle`` takes one raw event (openai's typed ``ResponseStreamEvent``, or deltaflow's
``UnknownResponseEvent``) and returns what openai's ``ResponseStreamState.handle_event`` returns for it
(the same classes and fields: ``snapshot`` on text and argument deltas, ``parsed`` on text done, the
parsed response on ``response.completed``), while it puts in ``chunks`` the chat-completion chunk dicts
that say the same thing, which deltaflow's own operators turn into its semantic events.

With ``direct`` set (``DirectEvents``, the stream's choice), text, reasoning and argument deltas that may
go direct become deltaflow's events there, not chunks; ``unsent_chunks`` catches the chat view up later.

Where openai's helper raises a bare ``RuntimeError`` or ``AssertionError`` on a stream that bends the
contract, this one tolerates what it can (events before ``response.created``, ``output_item.added``
missing or with a null item, deltas for an unknown output index, content parts never announced,
out-of-order lifecycle events) and raises ``ResponseContractError`` for the rest.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Any, cast

from openai import omit
from openai.lib._parsing._responses import parse_response, parse_text
from openai.lib.streaming.responses import (
    ResponseFunctionCallArgumentsDeltaEvent,
    ResponseTextDeltaEvent,
    ResponseTextDoneEvent,
)
from openai.lib.streaming.responses._events import ResponseCompletedEvent
from openai.types.chat import ChatCompletionChunk
from openai.types.chat.chat_completion_chunk import Choice, ChoiceDelta
from openai.types.responses import ParsedResponse
from openai.types.responses.parsed_response import (
    ParsedContent,
    ParsedResponseFunctionToolCall,
    ParsedResponseOutputMessage,
)
from pydantic import BaseModel as PydanticBaseModel

from deltaflow._openai_compat import construct
from deltaflow.errors import ContentInvalidError
from deltaflow.responses._direct import DirectEvents
from deltaflow.responses._errors import ResponseContractError

__all__ = ["ResponseState"]

_LIFECYCLE = frozenset(
    {
        "response.created",
        "response.queued",
        "response.in_progress",
        "response.completed",
        "response.failed",
        "response.incomplete",
    }
)
_TEXT_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta",
    }
)
_REASONING_DELTAS = frozenset(
    {
        "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta",
        # vLLM (vllm-project/vllm#24938) streams reasoning as reasoning_part deltas too
        "response.reasoning_part.delta",
    }
)


def _fields(event: Any) -> dict[str, Any]:
    """An event's fields and the extras openai keeps (``obfuscation``, a provider's own keys)."""
    return {**vars(event), **(getattr(event, "__pydantic_extra__", None) or {})}


_TEXT_DELTA = ("content_index", "delta", "item_id", "output_index", "sequence_number", "logprobs", "type")
_TEXT_DONE = ("content_index", "item_id", "output_index", "sequence_number", "logprobs", "type", "text")
_ARGUMENTS_DELTA = ("delta", "item_id", "output_index", "sequence_number", "type")
_COMPLETED = ("sequence_number", "type")


_NEW_OBJECT = object.__new__
_RESTORE = PydanticBaseModel.__setstate__
# every field of a chunk and of its parts, None: a chunk built directly has them all, as one openai builds
# does (a field missing from ``__dict__`` is an ``AttributeError`` raised and caught on every read of it)
_CHUNK_FIELDS = dict.fromkeys(ChatCompletionChunk.model_fields)
_CHOICE_FIELDS = dict.fromkeys(Choice.model_fields)
_DELTA_FIELDS = dict.fromkeys(ChoiceDelta.model_fields)


def _pick(event: Any, names: tuple[str, ...]) -> dict[str, Any]:
    fields = vars(event)
    return {name: fields.get(name) for name in names}


def _new(cls: type[Any], fields: dict[str, Any], fields_set: set[str] | None = None) -> Any:
    """One of openai's models from fields already typed, without validation or openai's ``construct``.

    Built through pydantic's state protocol (``__setstate__``, what ``copy`` and ``pickle`` rebuild a
    model with), with the state ``model_construct`` leaves, as ``deltaflow._lazy.build`` builds events:
    openai's ``construct`` re-types every field (about 10 µs an event), and these fields come typed from
    an event openai's types already built.
    """
    model = _NEW_OBJECT(cls)
    _RESTORE(
        model,
        {
            "__dict__": fields,
            "__pydantic_fields_set__": set(fields) if fields_set is None else fields_set,
            "__pydantic_extra__": {},
            "__pydantic_private__": None,
        },
    )
    return model


class ResponseState:
    """Accumulates one response; see the module's docstring.

    Attributes:
        snapshot: the response so far (openai's ``ParsedResponse``, built leniently).
        completed: the parsed final response once ``response.completed`` arrived.
        ended: the lifecycle event that ended the stream (completed, failed, incomplete), if any.
        chunks: the chat-completion chunk dicts of the last event handled (cleared by the reader).
        direct: where the deltas that may go direct become deltaflow's events (set by the stream before
            the first event; None: every delta is a chunk).
    """

    def __init__(
        self,
        *,
        text_format: object = None,
        input_tools: Iterable[Mapping[str, Any]] = (),
        raise_parse_errors: bool = False,
        chat_view: bool = True,
    ) -> None:
        self.snapshot: ParsedResponse[object] | None = None
        self.completed: ParsedResponse[object] | None = None
        self.ended: Any = None
        self.chunks: list[Any] = []
        self._raise_parse_errors = raise_parse_errors
        self._chat_view = chat_view
        """Put the chat chunks in ``chunks``: False when no operator reads them (openai's events only)."""
        """No operator chain reads the chunks to report a parse failure: raise it here, typed, as openai."""
        self._text_format: Any = text_format if inspect.isclass(text_format) else None
        self._input_tools = list(input_tools)
        self._items: dict[int, Any] = {}
        """The output items being accumulated, by output index."""
        self._done_items: dict[int, Any] = {}
        self._displaced: list[tuple[Any, Any]] = []
        """``(item, successor)``: an item another one took the output index of (Ollama's text then call)."""
        """The items as ``response.output_item.done`` sent them, by output index."""
        self._tool_index: dict[int, int] = {}
        """A function call's index among the function calls (its chat ``index``), by output index."""
        self._announced = False
        self._open_texts: dict[tuple[int, int], dict[str, Any]] = {}
        """The fields of the text parts deltas have gone to, by output and content index: the fast path."""
        self._template: dict[str, Any] | None = None
        """The fields every chunk of this response shares, for the chunks built directly."""
        self.direct: DirectEvents | None = None
        self._finished = False
        """The chat view's choice has its finish reason."""

    # -- the chat view ------------------------------------------------------------------------------

    def _chunk(self, delta: dict[str, Any] | None = None, finish_reason: str | None = None) -> None:
        if not self._chat_view:
            return
        snapshot = self.snapshot
        chunk: dict[str, Any] = {
            "id": getattr(snapshot, "id", None) or "resp",
            "object": "chat.completion.chunk",
            "created": int(getattr(snapshot, "created_at", 0) or 0),
            "model": getattr(snapshot, "model", None) or "",
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish_reason}],
        }
        if not self._announced:
            chunk["choices"][0]["delta"] = {"role": "assistant", **(delta or {})}
            self._announced = True
            fields = {key: chunk[key] for key in ("id", "object", "created", "model")}
            self._template = {**fields, "service_tier": None, "system_fingerprint": None, "usage": None}
        if self.direct is not None and delta:
            self.direct.track(delta)
        self.chunks.append(chunk)

    def _going_direct(self) -> DirectEvents | None:
        """Where a delta may go direct now: the chat choice open, not finished, no chunk of this event yet."""
        direct = self.direct
        if direct is not None and direct.on and self._announced and not self._finished and not self.chunks:
            return direct
        return None

    def _content(self, text: str) -> None:
        direct = self._going_direct()
        if direct is None or not direct.content(text):
            self._content_chunk(text)

    def _reasoning_delta(self, text: str) -> None:
        direct = self._going_direct()
        if direct is None or not direct.reasoning(text):
            self._chunk({"reasoning_content": text})

    def _arguments(self, index: int, text: str) -> None:
        direct = self._going_direct()
        if direct is None or not direct.arguments(index, text):
            self._chunk({"tool_calls": [{"index": index, "function": {"arguments": text}}]})

    def unsent_chunks(self) -> list[Any]:
        """The chunks that bring the chat view up to the events built directly, once."""
        if self.direct is None:
            return []
        chunks: list[Any] = []
        for delta in self.direct.take_unsent():
            content = delta.get("content")
            if content is not None:
                chunks.append(self._text_chunk(content))
            else:
                choice = {"index": 0, "delta": delta, "finish_reason": None}
                chunks.append({**cast("dict[str, Any]", self._template), "choices": [choice]})
        return chunks

    def _content_chunk(self, text: str) -> None:
        """The chunk of one text delta, the commonest by far: built directly, not validated from a dict."""
        if not self._chat_view:
            return
        if not self._announced or self._template is None:
            self._chunk({"content": text})
            return
        if self.direct is not None:
            self.direct.track({"content": text})
        self.chunks.append(self._text_chunk(text))

    def _text_chunk(self, text: str) -> ChatCompletionChunk:
        delta = _new(ChoiceDelta, {**_DELTA_FIELDS, "content": text}, {"content"})  # as validated from it
        choice = _new(Choice, {**_CHOICE_FIELDS, "delta": delta, "index": 0})
        template = cast("dict[str, Any]", self._template)
        fields = {**_CHUNK_FIELDS, **template, "choices": [choice]}
        return cast("ChatCompletionChunk", _new(ChatCompletionChunk, fields, {*template, "choices"}))

    def _finish_chunks(self, response: Any, finish_reason: str) -> None:
        if finish_reason == "stop" and self._tool_index:
            finish_reason = "tool_calls"
        self._chunk(finish_reason=finish_reason)
        self._finished = True
        usage = getattr(response, "usage", None)
        if usage is not None and self._chat_view:
            chunk = dict(self.chunks[-1], choices=[], usage=_chat_usage(usage))
            self.chunks.append(chunk)

    # -- one event ----------------------------------------------------------------------------------

    def handle(self, event: Any) -> list[Any]:
        """Take one event; return the events openai's helper yields for it (chat chunks go to ``chunks``)."""
        fields = event.__dict__
        if fields.get("type") == "response.output_text.delta":
            # most events: more text for a part already open (its indexes checked when it opened)
            part = self._open_texts.get((fields.get("output_index"), fields.get("content_index")))
            delta = fields.get("delta")
            if part is not None and type(delta) is str:
                text = part["text"] = part["text"] + delta
                if self._chat_view:  # openai's events only: not even a call
                    self._content(delta)
                if len(fields) == len(_TEXT_DELTA):
                    # exactly openai's fields (extras live apart), the usual case: taken as they are
                    return [_new(ResponseTextDeltaEvent, {**fields, "snapshot": text})]
                return [
                    _new(
                        ResponseTextDeltaEvent,
                        {**{name: fields.get(name) for name in _TEXT_DELTA}, "snapshot": text},
                    )
                ]
        return self._handle(event)

    def _handle(self, event: Any) -> list[Any]:
        kind = event.type
        _check_indexes(event)
        if kind in ("response.output_item.added", "response.output_item.done"):
            # as openai: the item and the output index typed whatever the provider left out
            event = _new(type(event), {**_fields(event), "item": getattr(event, "item", None)})
        if self.snapshot is None:
            self._start(event)
        if kind == "response.output_text.delta":
            part = self._text_part(event, "output_text")
            fields = part.__dict__
            # straight into the model's fields: pydantic's __setattr__ costs more than the rest of the event
            text = fields["text"] = (fields.get("text") or "") + event.delta
            self._content(event.delta)
            # the fields openai's helper builds it with, no more (it drops obfuscation and extras)
            return [_new(ResponseTextDeltaEvent, {**_pick(event, _TEXT_DELTA), "snapshot": text})]
        if kind == "response.function_call_arguments.delta":
            item = self._function_call(event)
            fields = item.__dict__
            arguments = fields["arguments"] = (fields.get("arguments") or "") + event.delta
            self._arguments(self._tool_index[event.output_index], event.delta)
            return [
                _new(
                    ResponseFunctionCallArgumentsDeltaEvent,
                    {**_pick(event, _ARGUMENTS_DELTA), "snapshot": arguments},
                )
            ]
        if kind in _REASONING_DELTAS:
            self._reasoning_delta(getattr(event, "delta", None) or "")
            return [event]
        if kind == "response.refusal.delta":
            part = self._text_part(event, "refusal")
            fields = part.__dict__
            fields["refusal"] = (fields.get("refusal") or "") + event.delta
            self._chunk({"refusal": event.delta})
            return [event]
        if kind == "response.output_text.done":
            return self._text_done(event)
        if kind == "response.function_call_arguments.done":
            self._catch_up_arguments(event)
            return [event]
        if kind == "response.output_item.added":
            self._item_added(event)
            if event.item is None:
                return []  # as openai: an empty item is not handed out
            return [event]
        if kind == "response.output_item.done":
            if event.item is not None:
                self._done_items[event.output_index] = event.item
            return [event]
        if kind == "response.content_part.added":
            self._open_texts.clear()  # a part inserted: the indexes of those after it moved
            item = self._items.get(event.output_index)
            if item is None:
                item = self._message(event)
            if item.type == "message" and getattr(event, "part", None) is not None:
                content = item.content
                while len(content) < event.content_index:
                    content.append(
                        construct(
                            cast("type[Any]", ParsedContent),
                            {"type": "output_text", "text": "", "annotations": []},
                        )
                    )
                content.insert(
                    event.content_index, construct(cast("type[Any]", ParsedContent), event.part.to_dict())
                )
            return [event]
        if kind in _LIFECYCLE:
            return self._lifecycle(event)
        return [event]

    def _start(self, event: Any) -> None:
        """The first event: a snapshot from ``response.created``, or from nothing if a provider skipped it."""
        response = getattr(event, "response", None)
        data = response.to_dict() if response is not None and hasattr(response, "to_dict") else {}
        data.setdefault("id", "")
        data.setdefault("object", "response")
        snapshot = construct(cast("type[ParsedResponse[object]]", ParsedResponse), data)
        if getattr(snapshot, "output", None) is None:
            snapshot.output = []
        self.snapshot = snapshot
        # as openai: items a lifecycle event already carries keep their positions
        self._items = dict(enumerate(snapshot.output))
        for index, item in self._items.items():
            if item.type == "function_call":
                self._tool_index[index] = len(self._tool_index)
        self._chunk()

    def _lifecycle(self, event: Any) -> list[Any]:
        kind = event.type
        response = getattr(event, "response", None)
        if kind == "response.completed":
            self.ended = event
            final = self._final_response(response)
            self.completed = final
            self._finish_chunks(response, "stop")
            return [_new(ResponseCompletedEvent, {**_pick(event, _COMPLETED), "response": final})]
        if kind in ("response.failed", "response.incomplete"):
            self.ended = event
            if response is not None and getattr(response, "output", None) is None:
                event = event.model_copy(deep=True)
                event.response.output = [item.model_copy(deep=True) for item in self._partial_output()]
            if kind == "response.incomplete":
                reason = getattr(getattr(response, "incomplete_details", None), "reason", None)
                self._finish_chunks(response, "content_filter" if reason == "content_filter" else "length")
            return [event]
        if response is not None and getattr(response, "output", None) is None:
            event = event.model_copy(deep=True)
            event.response.output = []
        return [event]

    def _final_response(self, response: Any) -> ParsedResponse[object]:
        """The parsed response of ``response.completed``; its output recovered from the items when missing."""
        if response is None:
            response = self.snapshot
        if getattr(response, "output", None) is None:
            # deltas can omit a final status, annotations or refusals: the finished items have them
            response = response.model_copy()
            response.output = self._partial_output()
        elif self._displaced and (output := _with_displaced(response.output, self._displaced)):
            # Ollama leaves a streamed message out of the completed output when a tool call follows it
            response = response.model_copy()
            response.output = output
        try:
            return cast(
                "ParsedResponse[object]",
                parse_response(
                    text_format=self._format(), response=response, input_tools=cast("Any", self._input_tools)
                ),
            )
        except ValueError as error:
            # content or arguments that do not parse: deltaflow's operators report it, typed, with the text
            if self._raise_parse_errors:
                raise _content_invalid(getattr(response, "output_text", ""), error) from error
            return cast(
                "ParsedResponse[object]",
                parse_response(text_format=omit, response=response, input_tools=()),
            )

    def _partial_output(self) -> list[Any]:
        indexes = sorted(
            self._items.keys() | self._done_items.keys(), key=lambda index: (type(index) is not int, index)
        )
        return [self._done_items.get(index, self._items.get(index)) for index in indexes]

    def partial_response(self) -> ParsedResponse[object] | None:
        """The response as received so far, every output item in it (for errors)."""
        if self.snapshot is None:
            return None
        partial = self.snapshot.model_copy()
        partial.output = self._partial_output()
        return partial

    def _format(self) -> Any:
        return self._text_format if self._text_format is not None else omit

    # -- output items -------------------------------------------------------------------------------

    def _item_added(self, event: Any) -> None:
        item = event.item
        if item is None:
            return  # openai-python#3125: a provider sent an empty item
        typed: Any
        if item.type == "function_call":
            typed = construct(ParsedResponseFunctionToolCall, item.to_dict())
        elif item.type == "message":
            typed = construct(ParsedResponseOutputMessage, item.to_dict())
        else:
            typed = item
        self._place(event.output_index, typed)

    def _place(self, output_index: int, item: Any) -> None:
        assert self.snapshot is not None  # noqa: S101 - _start ran first
        self._open_texts.clear()  # an item replaced: its parts are no longer where text goes
        previous = self._items.get(output_index)
        if previous is not None and previous in self.snapshot.output:
            if _same_item(previous, item):
                self.snapshot.output[self.snapshot.output.index(previous)] = item
            else:
                # another item at the same index (Ollama's tool call after its text): both stay
                self._displaced.append((previous, item))
                self.snapshot.output.append(item)
        else:
            self.snapshot.output.append(item)
        self._items[output_index] = item
        if item.type == "function_call":
            index = self._tool_index.setdefault(output_index, len(self._tool_index))
            call = {"index": index, "id": item.call_id, "type": "function"}
            self._chunk({"tool_calls": [{**call, "function": {"name": item.name, "arguments": ""}}]})
            if item.arguments:
                self._chunk({"tool_calls": [{"index": index, "function": {"arguments": item.arguments}}]})

    def _message(self, event: Any) -> Any:
        """The message item a content event is for; made up when ``output_item.added`` never came."""
        item = self._items.get(event.output_index)
        if item is None:
            made_up = {"id": getattr(event, "item_id", None) or "", "type": "message", "role": "assistant"}
            item = construct(ParsedResponseOutputMessage, {**made_up, "status": "in_progress", "content": []})
            self._place(event.output_index, item)
        if item.type != "message":
            raise ResponseContractError(
                f"a {event.type} event for output {event.output_index}, a {item.type}, not a message",
                event=event,
                response=self.partial_response(),
            )
        return item

    def _text_part(self, event: Any, part_type: str) -> Any:
        item = self._message(event)
        content = item.content
        while len(content) <= event.content_index:
            # content_part.added never came for this part: a provider's shortcut, tolerated
            blank = {"type": part_type, "text": "", "annotations": []} if part_type == "output_text" else {}
            content.append(
                construct(cast("type[Any]", ParsedContent), blank or {"type": "refusal", "refusal": ""})
            )
        part = content[event.content_index]
        if part.type != part_type:
            raise ResponseContractError(
                f"a {event.type} event for content part {event.content_index}, which is {part.type}",
                event=event,
                response=self.partial_response(),
            )
        if part_type == "output_text" and type(part.__dict__.get("text")) is str:
            self._open_texts[event.output_index, event.content_index] = part.__dict__
        return part

    def _text_done(self, event: Any) -> list[Any]:
        """``output_text.done``: the text parsed into ``text_format`` as openai's helper parses it."""
        item = self._message(event)
        self._catch_up_text(event)
        try:
            parsed = parse_text(event.text, text_format=self._format(), phase=getattr(item, "phase", None))
        except ValueError as error:
            # openai's helper raises here, mid-stream; deltaflow's operators report it typed, at the end
            if self._raise_parse_errors:
                raise _content_invalid(event.text, error) from error
            parsed = None
        return [_new(ResponseTextDoneEvent, {**_pick(event, _TEXT_DONE), "parsed": parsed})]

    def _catch_up_text(self, event: Any) -> None:
        """``output_text.done`` with text the deltas never brought (a server that sends no deltas): the rest.

        Some servers stream only ``created``, ``output_text.done`` and ``completed``
        (Sophomoresty/gemini-web2api#57); the text is in the snapshot and the chat view all the same.
        """
        text = event.text
        if type(text) is not str:
            return
        part = self._text_part(event, "output_text")
        fields = part.__dict__
        so_far = fields.get("text") or ""
        if len(text) > len(so_far) and text.startswith(so_far):
            fields["text"] = text
            self._chunk({"content": text[len(so_far) :]})

    def _catch_up_arguments(self, event: Any) -> None:
        """``function_call_arguments.done`` with arguments no delta brought: the rest, as one delta."""
        arguments = getattr(event, "arguments", None)
        if type(arguments) is not str:
            return
        item = self._function_call(event)
        fields = item.__dict__
        so_far = fields.get("arguments") or ""
        if len(arguments) > len(so_far) and arguments.startswith(so_far):
            fields["arguments"] = arguments
            index = self._tool_index[event.output_index]
            self._chunk(
                {"tool_calls": [{"index": index, "function": {"arguments": arguments[len(so_far) :]}}]}
            )

    def _function_call(self, event: Any) -> Any:
        item = self._items.get(event.output_index)
        if item is None:
            made_up = {"id": getattr(event, "item_id", None), "type": "function_call", "arguments": ""}
            item = construct(ParsedResponseFunctionToolCall, {**made_up, "call_id": "", "name": ""})
            self._place(event.output_index, item)
        if item.type != "function_call":
            raise ResponseContractError(
                f"arguments for output {event.output_index}, which is a {item.type}, not a function call",
                event=event,
                response=self.partial_response(),
            )
        return item


def _same_item(previous: Any, item: Any) -> bool:
    """Whether ``item`` is ``previous`` again (a later state of it), not another item at its output index."""
    return not previous.id or not item.id or previous.id == item.id


def _with_displaced(completed: list[Any], displaced: list[tuple[Any, Any]]) -> list[Any] | None:
    """The completed output with each displaced item it leaves out put back before its successor, or None.

    Only Ollama's shape: an item whose output index the next item took, missing from the completed
    output while that next item is listed. A completed output that names its items by other ids than the
    stream did (litellm) is taken as it is, as openai's helper takes it.
    """
    output = list(completed)
    for item, successor in displaced:
        ids = [getattr(listed, "id", None) for listed in output]
        if item.id not in ids and successor.id in ids:
            output.insert(ids.index(successor.id), item)
    return output if len(output) > len(completed) else None


def _content_invalid(text: str, error: ValueError) -> ContentInvalidError:
    found = getattr(error, "errors", None)
    errors = found() if callable(found) else []  # pydantic's, when it is one
    return ContentInvalidError(
        f"the output does not parse: {error}", text=text, errors=errors, choice_index=0
    )


def _check_indexes(event: Any) -> None:
    """Indexes and deltas of the types the state relies on; built leniently, an event may carry anything."""
    fields = vars(event)
    for name in ("output_index", "content_index", "summary_index"):
        value = fields.get(name)
        if value is not None and (type(value) is not int or value < 0):
            raise ResponseContractError(f"a {event.type} event with {name} {value!r}", event=event)
    delta = fields.get("delta")
    if delta is not None and type(delta) is not str and event.type in _TEXT_DELTAS:
        raise ResponseContractError(
            f"a {event.type} event with a delta that is not text: {delta!r}", event=event
        )


def _chat_usage(usage: Any) -> dict[str, Any]:
    """Responses usage (``input_tokens``...) as chat usage (``prompt_tokens``...)."""
    chat: dict[str, Any] = {
        "prompt_tokens": getattr(usage, "input_tokens", 0) or 0,
        "completion_tokens": getattr(usage, "output_tokens", 0) or 0,
        "total_tokens": getattr(usage, "total_tokens", 0) or 0,
    }
    cached = getattr(getattr(usage, "input_tokens_details", None), "cached_tokens", None)
    if cached is not None:
        chat["prompt_tokens_details"] = {"cached_tokens": cached}
    reasoning = getattr(getattr(usage, "output_tokens_details", None), "reasoning_tokens", None)
    if reasoning is not None:
        chat["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return chat
