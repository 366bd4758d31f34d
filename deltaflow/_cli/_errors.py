"""What the command prints when something fails: one line, whatever failed."""

from __future__ import annotations

import importlib.metadata
import re
import socket
from typing import Any

__all__ = ["CommandError", "describe"]


class CommandError(Exception):
    """A problem the user can fix, reported as one line."""


def describe(error: BaseException, command: str) -> str:
    """One line for ``error``, raised while running ``deltaflow <command>``, without a traceback.

    Never raises: an error whose description fails (a field missing where one was expected) is still
    one line, its class and message.
    """
    try:
        return _describe(error, command)
    except Exception:  # noqa: BLE001 - the one line must come whatever the error holds
        try:
            return f"{type(error).__name__}: {_one_line(error)}"
        except Exception:  # noqa: BLE001 - even an error whose str() fails
            return type(error).__name__


def _describe(error: BaseException, command: str) -> str:
    import openai  # noqa: PLC0415 - imported by the time anything can fail: the command imports it

    from deltaflow.errors import (  # noqa: PLC0415
        JsonParseError,
        ProviderError,
        StreamContractError,
        StreamInterrupted,
        StreamTimeout,
    )

    if isinstance(error, ModuleNotFoundError) and error.name:
        return missing_module(error.name, command)
    if isinstance(error, openai.APIStatusError):
        return f"the API answered {error.status_code}: {_status_detail(error)}"
    if isinstance(error, StreamTimeout):
        return (
            f"the API{_at(error)} sent no chunk for {error.timeout:g} s{_partial(error)} (see --idle-timeout)"
        )
    if isinstance(error, StreamInterrupted):
        return f"the stream from the API{_at(error)} was cut short: {error.message}{_partial(error)}"
    if isinstance(error, openai.APIConnectionError):
        return f"cannot reach the API{_at(error)}: {_connection_failure(error)}"
    if isinstance(error, openai.LengthFinishReasonError | openai.ContentFilterFinishReasonError):
        return _finish_reason_failure(error)
    if isinstance(error, JsonParseError):
        read = _excerpt(error.text)
        return f"the answer is not valid JSON, which the schema asks for ({error}); it reads {read}"
    if isinstance(error, StreamContractError):
        return f"the API sent what is not a chat-completion stream: {_one_line(error)}{_partial(error)}"
    if isinstance(error, ProviderError):
        return f"the provider reported an error mid-stream{_provider_code(error.error)}: {_one_line(error)}"
    if isinstance(error, OSError) and error.filename:
        return f"{error.strerror or error}: {error.filename}"
    text = _one_line(error) or type(error).__name__
    if isinstance(error, CommandError | ValueError):
        return text
    return f"{type(error).__name__}: {text}"


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def _at(error: Any) -> str:
    """`` at <url>`` for an error that kept its request, else nothing (a stream not read over HTTP)."""
    request = getattr(error, "request", None)
    url = getattr(request, "url", None)
    return f" at {url}" if url is not None else ""


def _partial(error: Any) -> str:
    completion = getattr(error, "completion", None)
    if completion is None or not completion.choices:
        return ""
    received = sum(len(choice.message.content or "") for choice in completion.choices)
    return f" (after {received} characters of the answer)" if received else ""


def _connection_failure(error: BaseException) -> str:
    """What failed to connect, from the transport's exception openai wraps as "Connection error."."""
    import openai  # noqa: PLC0415

    causes: list[BaseException] = []
    cause: BaseException | None = error.__cause__ or error.__context__
    while cause is not None and len(causes) < 10:
        causes.append(cause)
        cause = cause.__cause__ or cause.__context__
    names = {type(cause).__name__ for cause in causes}
    if any(isinstance(cause, socket.gaierror) for cause in causes):
        return "the host name could not be resolved (DNS): check the base URL"
    if any(isinstance(cause, ConnectionRefusedError) for cause in causes) or any(
        "refused" in str(cause).lower() for cause in causes
    ):
        return "the connection was refused: nothing listens there (is the server running, the port right?)"
    if "ConnectTimeout" in names:
        return "timed out connecting (see --timeout)"
    if isinstance(error, openai.APITimeoutError) or names & {
        "ReadTimeout",
        "TimeoutException",
        "PoolTimeout",
    }:
        return "timed out waiting for the answer (see --idle-timeout)"
    detail = next((_one_line(cause) for cause in reversed(causes) if str(cause).strip()), "")
    return detail or _one_line(error) or type(error).__name__


def _finish_reason_failure(error: Any) -> str:
    import openai  # noqa: PLC0415

    if isinstance(error, openai.ContentFilterFinishReasonError):
        return "the provider's content filter stopped the answer before it could be parsed"
    usage = getattr(getattr(error, "completion", None), "usage", None)
    tokens = getattr(usage, "completion_tokens", None)
    spent = f" after {tokens} tokens" if tokens is not None else ""
    return f"the answer reached the length limit{spent} before it could be parsed: raise max_tokens"


def _provider_code(payload: object) -> str:
    """`` (429)`` for the code or status a provider's error payload names (OpenRouter: ``error.code``)."""
    error = payload.get("error", payload) if isinstance(payload, dict) else None
    if not isinstance(error, dict):
        return ""
    for key in ("code", "status", "status_code", "type"):
        value = error.get(key)
        if isinstance(value, int | str) and not isinstance(value, bool) and str(value).strip():
            return f" ({' '.join(str(value).split())[:40]})"
    return ""


def _excerpt(text: str, limit: int = 80) -> str:
    flat = " ".join(text.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "...")


def _status_detail(error: Any) -> str:
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"].strip():
        return " ".join(body["message"].split())
    # openai's message repeats the status: "Error code: 401 - {...}"
    detail = re.sub(r"^Error code: \d+\s*-?\s*", "", " ".join(str(error.message).split()))
    url = getattr(getattr(error, "request", None), "url", None)
    path = getattr(url, "path", "") or ""
    if error.status_code == 404 and path.count("/chat/completions") > 1:
        # openai appends /chat/completions to the base URL: one given with it asks for it twice
        return (
            f"{detail or 'not found'} at {url}: the base URL must stop before /chat/completions "
            "(e.g. http://127.0.0.1:8000/v1): drop that path"
        )
    return detail or "no detail"


def missing_module(module: str, command: str) -> str:
    """Name what to install when ``module`` cannot be imported: the extra that brings it, else itself."""
    top = module.partition(".")[0]
    distribution = top.replace("_", "-").lower()
    extra = _extra_providing(distribution)
    if extra is not None:
        return f"deltaflow {command} needs {top}: pip install 'deltaflow[{extra}]'"
    return f"deltaflow {command} needs {top}, which is not installed: pip install {distribution}"


def _extra_providing(distribution: str) -> str | None:
    """The first extra of the installed deltaflow that requires ``distribution`` and is not a core need."""
    try:
        requirements = importlib.metadata.requires("deltaflow") or []
    except importlib.metadata.PackageNotFoundError:
        return None
    pattern = re.compile(r"^\s*([A-Za-z0-9._-]+)[^;]*(?:;\s*extra\s*==\s*['\"]([^'\"]+)['\"])?")
    extras = []
    for requirement in requirements:
        match = pattern.match(requirement)
        if match is None or match.group(1).replace("_", "-").lower() != distribution:
            continue
        if match.group(2) is None:
            return None  # a core dependency: an extra would not bring it back
        extras.append(match.group(2))
    return next((extra for extra in extras if extra != "dev"), None)
