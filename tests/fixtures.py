"""Loading the recorded streams in ../shared/fixtures (never copied into the repo)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import openai
import pytest
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel, create_model

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
OPENAI_FIXTURES = FIXTURES / "openai-python"
PROVIDER_FIXTURES = FIXTURES / "providers"
MORE_PROVIDER_FIXTURES = FIXTURES / "providers-more"


def require(path: Path) -> Path:
    """Skip (with the reason) when the shared fixtures are not beside the checkout."""
    if not path.exists():
        pytest.skip(f"shared fixtures not found at {path}: clone with shared/ beside the checkout")
    return path


def openai_fixture_names() -> list[str]:
    """Every recorded openai-python stream; one placeholder that skips when the folder is absent."""
    if not OPENAI_FIXTURES.exists():
        return ["<missing>"]
    return sorted(path.stem for path in OPENAI_FIXTURES.glob("*.sse"))


def sse_payloads(body: bytes) -> list[str]:
    """The data payloads of an SSE body, decoded independently of deltaflow's decoder."""
    payloads = []
    for block in body.decode("utf-8").replace("\r\n", "\n").split("\n\n"):
        data = [line[5:].lstrip(" ") for line in block.split("\n") if line.startswith("data:")]
        if data and data != ["[DONE]"]:
            payloads.append("\n".join(data))
    return payloads


_TYPES: dict[str, Any] = {"str": str, "float": float, "int": int, "bool": bool}


def _model(spec: dict[str, Any]) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for name, field in spec["fields"].items():
        if field["type"] == "Literal":
            annotation: Any = Literal[tuple(field["values"])]
        else:
            annotation = _TYPES[field["type"]]
        fields[name] = (annotation, field["default"]) if "default" in field else (annotation, ...)
    model = create_model(spec["name"], **fields)
    if spec.get("docstring"):
        model.__doc__ = spec["docstring"]
    return model


@dataclass
class OpenAIFixture:
    """One recorded stream with the request that produced it and what openai's tests expect."""

    name: str
    body: bytes
    request: dict[str, Any]
    expected: dict[str, Any]
    tools: list[Any] | None
    response_format: Any

    @property
    def chunks(self) -> list[ChatCompletionChunk]:
        """Fresh chunk objects, as openai's client would build them."""
        return [
            ChatCompletionChunk.model_validate(json.loads(payload)) for payload in sse_payloads(self.body)
        ]


def load_openai_fixture(name: str) -> OpenAIFixture:
    """Read ``<name>.sse`` and ``<name>.json``, building the tools and response format they name."""
    require(OPENAI_FIXTURES / f"{name}.sse")
    meta = json.loads((OPENAI_FIXTURES / f"{name}.json").read_text())
    request = meta["request"]
    tools = None
    if "tools" in request:
        tools = []
        for tool in request["tools"]:
            if "pydantic_function_tool" in tool:
                kwargs = {key: tool[key] for key in ("name", "description") if key in tool}
                tools.append(openai.pydantic_function_tool(_model(tool["pydantic_function_tool"]), **kwargs))
            else:
                tools.append(tool)
    response_format = request.get("response_format")
    if meta.get("response_format_model"):
        response_format = _model(meta["response_format_model"])
    return OpenAIFixture(
        name=name,
        body=(OPENAI_FIXTURES / f"{name}.sse").read_bytes(),
        request=request,
        expected=meta["expected"],
        tools=tools,
        response_format=response_format,
    )
