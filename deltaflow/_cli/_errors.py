"""What the command prints when something fails: one line, whatever failed."""

from __future__ import annotations

import importlib.metadata
import re
from typing import Any

__all__ = ["CommandError", "describe"]


class CommandError(Exception):
    """A problem the user can fix, reported as one line."""


def describe(error: BaseException, command: str) -> str:
    """One line for ``error``, raised while running ``deltaflow <command>``, without a traceback."""
    import openai  # noqa: PLC0415 - imported by the time anything can fail: the command imports it

    if isinstance(error, ModuleNotFoundError) and error.name:
        return missing_module(error.name, command)
    if isinstance(error, openai.APIStatusError):
        return f"the API answered {error.status_code}: {_status_detail(error)}"
    if isinstance(error, openai.APIConnectionError):
        return f"cannot reach the API at {error.request.url}: {error.message}"
    if isinstance(error, OSError) and error.filename:
        return f"{error.strerror or error}: {error.filename}"
    text = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, CommandError | ValueError):
        return text
    return f"{type(error).__name__}: {text}"


def _status_detail(error: Any) -> str:
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("message"), str) and body["message"].strip():
        return " ".join(body["message"].split())
    # openai's message repeats the status: "Error code: 401 - {...}"
    return re.sub(r"^Error code: \d+\s*-?\s*", "", " ".join(str(error.message).split())) or "no detail"


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
