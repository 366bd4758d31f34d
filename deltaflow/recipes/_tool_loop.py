"""``tool_loop``: call the model, run the tools it asks for as they stream in, repeat until it answers."""

from __future__ import annotations

import asyncio
import inspect
import re
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias, TypeVar

import openai
import pydantic_core
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ParsedChatCompletion,
    ParsedChatCompletionMessage,
)
from pydantic import BaseModel, ValidationError, create_model
from reactivex import abc

from deltaflow import pipeline
from deltaflow._arguments import check_client, check_tool_functions
from deltaflow.errors import ToolLoopLimitError
from deltaflow.events import BaseEvent, ToolCallDone
from deltaflow.pipeline import AsyncChatStream, ChatStream

__all__ = ["ToolEntry", "ToolLoopLimitError", "ToolLoopResult", "atool_loop", "tool_loop"]

ToolEntry: TypeAlias = Callable[..., Any] | tuple[type[BaseModel], Callable[[Any], Any]]
"""One tool of ``tool_loop``'s ``tools`` mapping: a function whose type-hinted parameters are the
tool's arguments, or ``(Model, function)`` where ``function`` takes the validated ``Model``."""


@dataclass(frozen=True, slots=True)
class ToolLoopResult:
    """How a tool loop ended: the model answered without asking for a tool.

    Attributes:
        completion: the final completion (the answer).
        messages: the whole conversation: the messages given, then each step's assistant message
            and tool results, then the final assistant message; ready to continue with.
        steps: how many requests were made.
    """

    completion: ParsedChatCompletion[Any]
    messages: list[dict[str, Any]]
    steps: int

    @property
    def content(self) -> str | None:
        """The answer's text (choice 0)."""
        return self.completion.choices[0].message.content


def tool_loop(
    client: openai.OpenAI,
    messages: Iterable[Mapping[str, Any]],
    tools: Mapping[str, ToolEntry],
    *,
    model: str,
    max_steps: int = 8,
    observers: Sequence[abc.ObserverBase[BaseEvent]] = (),
    **create_params: Any,
) -> ToolLoopResult:
    """Stream requests, running each tool the model calls, until it answers without tool calls.

    Each step streams one request with ``deltaflow.stream``. A tool runs as soon as its call is
    complete (its ``tool_calls.function.arguments.done`` event), while the model may still be
    streaming the next call. Then the assistant message and one ``{"role": "tool", ...}`` message per
    call are appended, and the next step starts.

    Tools are given by name, either as a function whose parameters, with their type hints (and
    ``Annotated[..., Field(description=...)]``), become the arguments' schema and whose docstring
    becomes the description; or as ``(Model, function)``, a pydantic model for the arguments and a
    function taking the validated model. Either way the request's tool is
    ``openai.pydantic_function_tool`` (strict). A tool's result goes back as is when a string,
    else as JSON (pydantic models, dataclasses and containers included).

    A tool that raises does not stop the loop: ``"Error: <ExceptionType>: <message>"`` goes back to
    the model as that call's result, so it can retry or explain. Arguments that fail validation and
    calls to unknown tools are answered the same way.

    Observers (``sinks``, any Rx observer of events) see one continuous stream across steps: every
    step's events in order (each step ending with its ``completion.done``), then ``on_completed``
    once when the loop ends, or ``on_error`` when it fails.

    Only choice 0 is followed. A cut-off answer raises openai's ``LengthFinishReasonError``, as
    ``get_final_completion`` does.

    Example::

        import openai
        from deltaflow.recipes import tool_loop

        def get_weather(city: str, unit: str = "celsius") -> dict[str, object]:
            \"\"\"The current weather in a city.\"\"\"
            return {"city": city, "temperature": 21, "unit": unit}

        client = openai.OpenAI()
        messages = [{"role": "user", "content": "Weather in Paris and Oslo?"}]
        result = tool_loop(client, messages, {"get_weather": get_weather}, model="gpt-4o-mini")
        print(result.content, f"({result.steps} requests)")

    Args:
        client: an ``openai.OpenAI`` client.
        messages: the conversation so far; not modified.
        tools: tool name to function, or to ``(Model, function)``.
        model: the model name.
        max_steps: the most requests to make.
        observers: Rx observers (sinks) to subscribe to each step's stream.
        **create_params: anything else for ``deltaflow.stream`` / ``chat.completions.create``
            (``temperature``, ``tool_choice``, ``dialect``...).

    Returns:
        The final completion, the whole conversation and the number of steps.

    Raises:
        ToolLoopLimitError: the model still asked for tools after ``max_steps`` steps.
        TypeError: ``tools`` is not a mapping of name to function, a tool is async (use
            ``atool_loop``) or lacks type hints, or ``client`` is not an ``openai.OpenAI``.
    """
    check_tool_functions(tools, caller="tool_loop")
    conversation = _Conversation(messages, _Toolbox(tools, asynchronous=False), observers)
    check_client(client, asynchronous=False, caller="tool_loop", instead="await atool_loop(client, ...)")
    result: ToolLoopResult | None = None
    try:
        for step in range(1, _check_steps(max_steps) + 1):
            results: dict[str, str] = {}
            stream = conversation.subscribe(
                pipeline.stream(client, **conversation.request(model, create_params))
            )
            with stream:
                for event in stream:
                    if type(event) is ToolCallDone and event.choice_index == 0:
                        results[event.tool_call.id] = conversation.toolbox.run(event)
                completion = stream.get_final_completion()
            result = conversation.advance(completion, results, step)
            if result is not None:
                break
    except Exception as error:
        conversation.end(error)
        raise
    return conversation.finish(result, max_steps)


async def atool_loop(
    client: openai.AsyncOpenAI,
    messages: Iterable[Mapping[str, Any]],
    tools: Mapping[str, ToolEntry],
    *,
    model: str,
    max_steps: int = 8,
    observers: Sequence[abc.ObserverBase[BaseEvent]] = (),
    **create_params: Any,
) -> ToolLoopResult:
    """The async twin of ``tool_loop``: tools of one step run concurrently.

    Each tool starts as a task the moment its call is complete, so it runs while the model streams
    the next call and alongside the step's other tools; all of them are awaited before the next
    request. Tools may be ``async def`` functions; plain functions run in a worker thread
    (``asyncio.to_thread``) so they do not block the event loop. If the step fails, its unfinished
    tool tasks are cancelled.

    Example::

        import asyncio
        import openai
        from deltaflow.recipes import atool_loop

        async def search(query: str) -> list[str]:
            \"\"\"Search the web.\"\"\"
            await asyncio.sleep(1)
            return [f"result for {query}"]

        async def main() -> None:
            messages = [{"role": "user", "content": "Compare asyncio and trio"}]
            result = await atool_loop(openai.AsyncOpenAI(), messages, {"search": search}, model="gpt-4o")
            print(result.content)

    Args:
        client: an ``openai.AsyncOpenAI`` client.
        messages: the conversation so far; not modified.
        tools: tool name to function (sync or async), or to ``(Model, function)``.
        model: the model name.
        max_steps: the most requests to make.
        observers: Rx observers (sinks) to subscribe to each step's stream.
        **create_params: anything else for ``deltaflow.astream`` / ``chat.completions.create``.

    Returns:
        The final completion, the whole conversation and the number of steps.

    Raises:
        ToolLoopLimitError: the model still asked for tools after ``max_steps`` steps.
        TypeError: ``tools`` is not a mapping of name to function, a tool lacks type hints, or
            ``client`` is not an ``openai.AsyncOpenAI``.
    """
    check_tool_functions(tools, caller="atool_loop")
    conversation = _Conversation(messages, _Toolbox(tools, asynchronous=True), observers)
    check_client(client, asynchronous=True, caller="atool_loop", instead="tool_loop(client, ...)")
    result: ToolLoopResult | None = None
    try:
        for step in range(1, _check_steps(max_steps) + 1):
            tasks: dict[str, asyncio.Task[str]] = {}
            try:
                stream = conversation.subscribe(
                    pipeline.astream(client, **conversation.request(model, create_params))
                )
                async with stream:
                    async for event in stream:
                        if type(event) is ToolCallDone and event.choice_index == 0:
                            tasks[event.tool_call.id] = asyncio.create_task(conversation.toolbox.arun(event))
                    completion = await stream.get_final_completion()
                results = dict(zip(tasks, await asyncio.gather(*tasks.values()), strict=True))
            finally:
                # on failure (or cancellation) no tool may outlive its step
                pending = [task for task in tasks.values() if not task.done()]
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            result = conversation.advance(completion, results, step)
            if result is not None:
                break
    except Exception as error:
        conversation.end(error)
        raise
    return conversation.finish(result, max_steps)


def _check_steps(max_steps: int) -> int:
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, not {max_steps}")
    return max_steps


@dataclass(frozen=True, slots=True)
class _Tool:
    name: str
    model: type[BaseModel]
    function: Callable[..., Any]
    # (Model, function) tools take the model; plain functions take its fields as keywords
    takes_model: bool

    def call(self, arguments: BaseModel) -> Any:
        if self.takes_model:
            return self.function(arguments)
        # attributes, not model_dump(): nested models reach the function as models
        return self.function(**{name: getattr(arguments, name) for name in type(arguments).model_fields})


class _Toolbox:
    """The tools of one loop: their request params, and running a finished call."""

    def __init__(self, tools: Mapping[str, ToolEntry], *, asynchronous: bool) -> None:
        self._tools = {name: _tool(name, entry) for name, entry in tools.items()}
        if not asynchronous:
            for tool in self._tools.values():
                if inspect.iscoroutinefunction(tool.function):
                    raise TypeError(f"tool {tool.name!r} is async: use atool_loop")
        self.params: list[ChatCompletionFunctionToolParam] = [
            openai.pydantic_function_tool(tool.model, name=tool.name, description=_description(tool))
            for tool in self._tools.values()
        ]

    def run(self, event: ToolCallDone) -> str:
        """Run the call's tool now; its result, or the error, as the tool message's content."""
        prepared = self._prepare(event)
        if isinstance(prepared, str):
            return prepared
        tool, arguments = prepared
        try:
            return _content(tool.call(arguments))
        except Exception as error:  # noqa: BLE001 - the model is told, and the loop goes on
            return _error_text(error)

    async def arun(self, event: ToolCallDone) -> str:
        """The async ``run``: await async tools, run sync ones in a worker thread."""
        prepared = self._prepare(event)
        if isinstance(prepared, str):
            return prepared
        tool, arguments = prepared
        try:
            if inspect.iscoroutinefunction(tool.function):
                result = await tool.call(arguments)
            else:
                result = await asyncio.to_thread(tool.call, arguments)
                if inspect.isawaitable(result):
                    result = await result
            return _content(result)
        except Exception as error:  # noqa: BLE001 - the model is told, and the loop goes on
            return _error_text(error)

    def _prepare(self, event: ToolCallDone) -> tuple[_Tool, BaseModel] | str:
        tool = self._tools.get(event.name)
        if tool is None:
            return f"Error: there is no tool named {event.name!r}; the tools are: {', '.join(self._tools)}"
        # the pipeline already validated strict tools' arguments; it leaves None when they failed
        if isinstance(event.parsed_arguments, tool.model):
            return tool, event.parsed_arguments
        try:
            return tool, tool.model.model_validate_json(event.arguments or "{}")
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(map(str, problem['loc'])) or 'arguments'}: {problem['msg']}"
                for problem in error.errors(include_url=False)
            )
            return f"Error: invalid arguments for {event.name}: {problems}"


def _tool(name: str, entry: ToolEntry) -> _Tool:
    if isinstance(entry, tuple):
        model, function = entry
        if not (inspect.isclass(model) and issubclass(model, BaseModel)) or not callable(function):
            raise TypeError(f"tool {name!r}: expected (pydantic model class, function), got {entry!r}")
        return _Tool(name, model, function, takes_model=True)
    if not callable(entry):
        raise TypeError(f"tool {name!r}: expected a function or (model, function), got {entry!r}")
    return _Tool(name, _arguments_model(name, entry), entry, takes_model=False)


def _arguments_model(name: str, function: Callable[..., Any]) -> type[BaseModel]:
    """A pydantic model of ``function``'s parameters, from their type hints and defaults."""
    hints = typing.get_type_hints(function, include_extras=True)
    fields: dict[str, Any] = {}
    for parameter in inspect.signature(function).parameters.values():
        if parameter.kind not in (parameter.POSITIONAL_OR_KEYWORD, parameter.KEYWORD_ONLY):
            raise TypeError(f"tool {name!r}: parameter {parameter.name!r} must be passable by keyword")
        if parameter.name not in hints:
            raise TypeError(f"tool {name!r}: parameter {parameter.name!r} needs a type hint")
        default = ... if parameter.default is parameter.empty else parameter.default
        fields[parameter.name] = (hints[parameter.name], default)
    class_name = "".join(part.capitalize() for part in re.split(r"[^0-9A-Za-z]+", name)) or "Arguments"
    return create_model(class_name, **fields)


def _description(tool: _Tool) -> str | None:
    # pydantic_function_tool would take the generated model's docstring: pydantic's own, not the tool's
    source = tool.model if tool.takes_model else tool.function
    return inspect.getdoc(source) if source.__doc__ else None


def _content(result: Any) -> str:
    if isinstance(result, str):
        return result
    return pydantic_core.to_json(result, fallback=str).decode()


def _error_text(error: Exception) -> str:
    return f"Error: {type(error).__name__}: {error}"


def _assistant_message(message: ParsedChatCompletionMessage[Any]) -> dict[str, Any]:
    """The assistant turn to send back: built by hand, since openai's model carries parse-only fields."""
    turn: dict[str, Any] = {"role": "assistant", "content": message.content}
    if message.refusal is not None:
        turn["refusal"] = message.refusal
    if message.tool_calls:
        turn["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments},
            }
            for call in message.tool_calls
        ]
    return turn


def _tool_message(call_id: str, content: str) -> dict[str, Any]:
    return {"role": "tool", "tool_call_id": call_id, "content": content}


class _StepRelay(abc.ObserverBase[BaseEvent]):
    """Forwards each step's events to one observer, holding back the per-step completion.

    ``ChatStream.subscribe`` completes its observers when the step's stream ends; an Rx observer
    would then ignore every later step. The loop ends the observer itself, once.
    """

    def __init__(self, observer: abc.ObserverBase[BaseEvent]) -> None:
        self._observer = observer
        self.ended = False

    def on_next(self, value: BaseEvent) -> None:
        if not self.ended:
            self._observer.on_next(value)

    def on_error(self, error: Exception) -> None:
        self.end(error)

    def on_completed(self) -> None:
        """A step ended: the loop decides whether the observer's stream has."""

    def end(self, error: Exception | None) -> None:
        """End the observer's stream, once: completed, or failed with ``error``."""
        if self.ended:
            return
        self.ended = True
        if error is None:
            self._observer.on_completed()
        else:
            self._observer.on_error(error)


StreamT = TypeVar("StreamT", ChatStream[Any], AsyncChatStream[Any])


class _Conversation:
    """The state both loop twins share: the messages so far, the tools, the observers."""

    def __init__(
        self,
        messages: Iterable[Mapping[str, Any]],
        toolbox: _Toolbox,
        observers: Iterable[abc.ObserverBase[BaseEvent]],
    ) -> None:
        self.history = [dict(message) for message in messages]
        self.toolbox = toolbox
        self._relays = [_StepRelay(observer) for observer in observers]
        self._last: ParsedChatCompletion[Any] | None = None

    def request(self, model: str, create_params: Mapping[str, Any]) -> dict[str, Any]:
        """The next step's parameters; the messages copied, as later steps append to them."""
        # invalid arguments are answered to the model as an error, not raised: keep going
        return {
            **create_params,
            "model": model,
            "messages": list(self.history),
            "tools": self.toolbox.params,
            "parse_errors": "keep",
        }

    def subscribe(self, stream: StreamT) -> StreamT:
        for relay in self._relays:
            stream.subscribe(relay)
        return stream

    def advance(
        self, completion: ParsedChatCompletion[Any], results: Mapping[str, str], step: int
    ) -> ToolLoopResult | None:
        """Record a finished step: the result when the model answered, else None (go on)."""
        self._last = completion
        message = completion.choices[0].message
        self.history.append(_assistant_message(message))
        if not message.tool_calls:
            return ToolLoopResult(completion=completion, messages=self.history, steps=step)
        for call in message.tool_calls:
            # every call of choice 0 had its done event, so its result is there
            self.history.append(_tool_message(call.id, results.get(call.id, "Error: the call did not run")))
        return None

    def finish(self, result: ToolLoopResult | None, max_steps: int) -> ToolLoopResult:
        """End the observers; the result, or the step limit's error when there is none."""
        if result is None:
            error = ToolLoopLimitError(max_steps, messages=self.history, completion=self._last)
            self.end(error)
            raise error
        self.end(None)
        return result

    def end(self, error: Exception | None) -> None:
        for relay in self._relays:
            relay.end(error)
