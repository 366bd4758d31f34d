"""``tool_loop``: call the model, run the tools it asks for as they stream in, repeat until it answers."""

from __future__ import annotations

import asyncio
import inspect
import re
import typing
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias, TypeVar

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
from deltaflow.errors import StreamContractError, ToolLoopLimitError
from deltaflow.events import BaseEvent, Event, ToolCallDone, ToolCallResult
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
    step's events in order (each step ending with its ``completion.done``), then one
    ``tool_calls.function.result`` event (``ToolCallResult``) per call, in the order of the tool
    messages, errors included (``is_error``); then ``on_completed`` once when the loop ends, or
    ``on_error`` when it fails. ``tool_loop_stream`` yields the same events, for a relay.

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
    conversation = prepare(
        client, messages, tools, max_steps, observers,
        asynchronous=False, caller="tool_loop", instead="await atool_loop(client, ...)",
    )  # fmt: skip
    for _ in run_steps(conversation, client, model, create_params):
        pass
    return conversation.result()


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
    conversation = prepare(
        client, messages, tools, max_steps, observers,
        asynchronous=True, caller="atool_loop", instead="tool_loop(client, ...)",
    )  # fmt: skip
    async for _ in arun_steps(conversation, client, model, create_params):
        pass
    return conversation.result()


def prepare(
    client: object,
    messages: Iterable[Mapping[str, Any]],
    tools: Mapping[str, ToolEntry],
    max_steps: int,
    observers: Sequence[abc.ObserverBase[BaseEvent]],
    *,
    asynchronous: bool,
    caller: str,
    instead: str,
) -> Conversation:
    """A loop's conversation, its arguments checked before any request.

    ``caller`` names the function for the errors, ``instead`` is how to call its twin.
    """
    check_tool_functions(tools, caller=caller)
    conversation = Conversation(messages, _Toolbox(tools, asynchronous=asynchronous), observers, max_steps)
    check_client(client, asynchronous=asynchronous, caller=caller, instead=instead)
    if max_steps < 1:
        raise ValueError(f"max_steps must be at least 1, not {max_steps}")
    return conversation


def run_steps(
    conversation: Conversation, client: openai.OpenAI, model: str, create_params: Mapping[str, Any]
) -> Generator[Event, None, None]:
    """The loop: each step's events as they stream (a tool runs as its call completes), then its results."""
    try:
        for step in range(1, conversation.max_steps + 1):
            answers: dict[str, tuple[int, _Answer]] = {}
            stream = conversation.subscribe(
                pipeline.stream(client, **conversation.request(model, create_params))
            )
            with stream:
                for event in stream:
                    if type(event) is ToolCallDone and event.choice_index == 0:
                        answers[event.tool_call.id] = (event.index, conversation.toolbox.run(event))
                    yield event
                if conversation.stopped:
                    break
                completion = stream.get_final_completion()
            for result in conversation.advance(completion, answers, step):
                conversation.tell(result)
                yield result
            if conversation.done or conversation.stopped:
                break
    except GeneratorExit:
        conversation.close()
        raise
    except Exception as error:
        conversation.end(error)
        raise
    if conversation.stopped:
        conversation.close()
        return
    conversation.finish()


async def arun_steps(
    conversation: Conversation, client: openai.AsyncOpenAI, model: str, create_params: Mapping[str, Any]
) -> AsyncGenerator[Event, None]:
    """The async ``run_steps``: a step's tools run as tasks, all awaited before its results."""
    try:
        for step in range(1, conversation.max_steps + 1):
            tasks: dict[str, tuple[int, asyncio.Task[_Answer]]] = {}
            try:
                stream = conversation.subscribe(
                    pipeline.astream(client, **conversation.request(model, create_params))
                )
                async with stream:
                    async for event in stream:
                        if type(event) is ToolCallDone and event.choice_index == 0:
                            task = asyncio.create_task(conversation.toolbox.arun(event))
                            tasks[event.tool_call.id] = (event.index, task)
                        yield event
                    if conversation.stopped:
                        break
                    completion = await stream.get_final_completion()
                done = await asyncio.gather(*(task for _, task in tasks.values()))
                answers = {
                    call_id: (index, answer)
                    for (call_id, (index, _)), answer in zip(tasks.items(), done, strict=True)
                }
            finally:
                # on failure (or cancellation, or the stream closed) no tool may outlive its step
                pending = [task for _, task in tasks.values() if not task.done()]
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            for result in conversation.advance(completion, answers, step):
                conversation.tell(result)
                yield result
            if conversation.done or conversation.stopped:
                break
    except (GeneratorExit, asyncio.CancelledError):
        # closed, or its task cancelled (a reader leaving a relay): observers are closed, as by ChatStream
        conversation.close()
        raise
    except Exception as error:
        conversation.end(error)
        raise
    if conversation.stopped:
        conversation.close()
        return
    conversation.finish()


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

    def run(self, event: ToolCallDone) -> _Answer:
        """Run the call's tool now: its result, or the error, as the tool message's content."""
        prepared = self._prepare(event)
        if isinstance(prepared, _Answer):
            return prepared
        tool, arguments = prepared
        try:
            return _Answer(_content(tool.call(arguments)))
        except Exception as error:  # noqa: BLE001 - the model is told, and the loop goes on
            return _failed(error)

    async def arun(self, event: ToolCallDone) -> _Answer:
        """The async ``run``: await async tools, run sync ones in a worker thread."""
        prepared = self._prepare(event)
        if isinstance(prepared, _Answer):
            return prepared
        tool, arguments = prepared
        try:
            if inspect.iscoroutinefunction(tool.function):
                result = await tool.call(arguments)
            else:
                result = await asyncio.to_thread(tool.call, arguments)
                if inspect.isawaitable(result):
                    result = await result
            return _Answer(_content(result))
        except Exception as error:  # noqa: BLE001 - the model is told, and the loop goes on
            return _failed(error)

    def _prepare(self, event: ToolCallDone) -> tuple[_Tool, BaseModel] | _Answer:
        tool = self._tools.get(event.name)
        if tool is None:
            text = f"Error: there is no tool named {event.name!r}; the tools are: {', '.join(self._tools)}"
            return _Answer(text, "tool_unknown")
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
            return _Answer(f"Error: invalid arguments for {event.name}: {problems}", "tool_arguments_invalid")


_ErrorCode: TypeAlias = Literal["tool_failed", "tool_arguments_invalid", "tool_unknown"]


@dataclass(frozen=True, slots=True)
class _Answer:
    """What a call's tool message says, and why when it is an error."""

    content: str
    error_code: _ErrorCode | None = None
    exception: Exception | None = None


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


def _failed(error: Exception) -> _Answer:
    return _Answer(f"Error: {type(error).__name__}: {error}", "tool_failed", error)


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

    def close(self) -> None:
        """The loop was closed before its end: as from ``ChatStream``, an observer's ``close()`` is called."""
        if self.ended:
            return
        self.ended = True
        close = getattr(self._observer, "close", None)
        if callable(close):
            close()

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


class Conversation:
    """The state both loop twins share: the messages so far, the tools, the observers."""

    def __init__(
        self,
        messages: Iterable[Mapping[str, Any]],
        toolbox: _Toolbox,
        observers: Iterable[abc.ObserverBase[BaseEvent]],
        max_steps: int,
    ) -> None:
        self.history = [dict(message) for message in messages]
        self.toolbox = toolbox
        self.max_steps = max_steps
        self.stream: ChatStream[Any] | AsyncChatStream[Any] | None = None
        self._relays = [_StepRelay(observer) for observer in observers]
        self._last: ParsedChatCompletion[Any] | None = None
        self._result: ToolLoopResult | None = None
        self.stopped = False
        """A stop was asked while the loop ran (``stop``): it makes no further request."""

    @property
    def done(self) -> bool:
        """The model answered: the loop has its result."""
        return self._result is not None

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
        self.stream = stream
        return stream

    def snapshot(self) -> ParsedChatCompletion[Any]:
        """The running step's completion so far, else the last finished step's.

        Raises:
            StreamContractError: no chunk has arrived yet.
        """
        if self.stream is None:
            raise StreamContractError("no chunk has arrived yet")
        try:
            return self.stream.current_completion_snapshot
        except StreamContractError:
            # a later step failed before its first chunk: the loop's partial answer is the last step's
            if self._last is None:
                raise
            return self._last

    def stop(self) -> None:
        """Stop from an observer or another thread: the running step's stream closes, no request follows."""
        self.stopped = True
        if isinstance(self.stream, ChatStream):
            self.stream.close()

    async def astop(self) -> None:
        """The async ``stop``: from a handler or another task."""
        self.stopped = True
        if isinstance(self.stream, AsyncChatStream):
            await self.stream.close()

    def advance(
        self, completion: ParsedChatCompletion[Any], answers: Mapping[str, tuple[int, _Answer]], step: int
    ) -> list[ToolCallResult]:
        """Record a finished step: its tool results, for ``tell`` (none when the model answered)."""
        self._last = completion
        message = completion.choices[0].message
        self.history.append(_assistant_message(message))
        if not message.tool_calls:
            self._result = ToolLoopResult(completion=completion, messages=self.history, steps=step)
            return []
        results: list[ToolCallResult] = []
        for position, call in enumerate(message.tool_calls):
            # every call of choice 0 had its done event, so its answer is there
            index, answer = answers.get(
                call.id, (position, _Answer("Error: the call did not run", "tool_failed"))
            )
            self.history.append(_tool_message(call.id, answer.content))
            result = ToolCallResult(
                choice_index=0,
                index=index,
                tool_call_id=call.id,
                name=call.function.name,
                content=answer.content,
                is_error=answer.error_code is not None,
                error_code=answer.error_code,
                error_type=type(answer.exception).__name__ if answer.exception is not None else None,
                exception=answer.exception,
            )
            results.append(result)
        return results

    def tell(self, result: ToolCallResult) -> None:
        """Hand a tool result to the observers, as the loop yields it."""
        for relay in self._relays:
            relay.on_next(result)

    def finish(self) -> None:
        """End the observers: completed when the model answered, else with the step limit's error."""
        if self._result is None:
            error = ToolLoopLimitError(self.max_steps, messages=self.history, completion=self._last)
            self.end(error)
            raise error
        self.end(None)

    def result(self) -> ToolLoopResult:
        """How the loop ended.

        Raises:
            StreamContractError: it has not ended with an answer.
        """
        if self._result is None:
            raise StreamContractError("the tool loop has not answered")
        return self._result

    def end(self, error: Exception | None) -> None:
        for relay in self._relays:
            relay.end(error)

    def close(self) -> None:
        for relay in self._relays:
            relay.close()
