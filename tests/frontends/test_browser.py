"""A page on ``useChat`` from ``@ai-sdk/react`` (bundled here with esbuild), served with the durable
endpoint in the AI SDK's format, in Debian's Chromium: it renders text, reasoning, tool calls and the
growing JSON tree, and a reload mid-stream resumes the answer with nothing lost or repeated; a tool loop's
outputs and errors show in its tool parts."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route

import deltaflow
from deltaflow.durable import MemoryEventLog, durable_endpoint
from deltaflow.recipes import AsyncToolLoopStream, atool_loop_stream
from deltaflow.replay import ReplayServer
from tests.frontends.scenario import (
    LOOP_ANSWER,
    LOOP_RESULTS,
    LOOP_TOOLS,
    REASONING,
    STRUCTURED,
    TOOL_CALLS,
    TOOLS,
    Summary,
    scenarios,
    tool_loop_route,
)
from tests.recipes import aclient
from tests.recipes.test_relay import AppServer

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.once,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
]

ARTIFACTS = Path(__file__).parent / "artifacts"
PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>useChat on deltaflow</title><style>
body { font: 15px system-ui, sans-serif; margin: 2rem; max-width: 52rem; }
.user { background: #eef; padding: .5rem 1rem; border-radius: .5rem; }
.reasoning { color: #666; font-style: italic; } .tool { margin: .3rem 0; color: #064; }
.text { white-space: pre-wrap; background: #f6f6f6; padding: .5rem; }
.partial, .final { border-left: 3px solid #9ac; padding-left: 1rem; } .key { font-weight: 600; }
.tool .output, .tool .error { margin-left: .6rem; } .tool .error { color: #a00; }
</style></head><body><div id="root"></div><script type="module" src="/page.js"></script></body></html>"""


@pytest.fixture(scope="module")
def bundle(node_modules: Path) -> bytes:
    """The page's script: use_chat_page.jsx with React, @ai-sdk/react and ai, bundled by esbuild."""
    esbuild = node_modules / "node_modules" / ".bin" / "esbuild"
    out = node_modules / "page.js"
    subprocess.run(
        [
            str(esbuild), "use_chat_page.jsx", "--bundle", "--format=esm", "--jsx=automatic", "--minify",
            "--define:process.env.NODE_ENV=\"production\"", f"--outfile={out}", "--log-level=warning",
        ],
        cwd=node_modules, check=True, timeout=120,
    )  # fmt: skip
    return out.read_bytes()


@pytest.fixture(scope="module")
def site(bundle: bytes) -> Iterator[str]:
    """The page and the durable endpoints (AI SDK format) in one app: ``/api/chat`` on a paced upstream,
    ``/api/loop`` a tool loop (``atool_loop_stream``)."""
    with (
        ReplayServer(scenarios(tokens_per_second=18)) as upstream,
        ReplayServer(tool_loop_route()) as loop_upstream,
    ):
        async_client = aclient(upstream)

        def make_stream(body: dict[str, Any]) -> deltaflow.AsyncChatStream[Any]:
            return deltaflow.astream(
                async_client, model="full", messages=body["messages"], tools=TOOLS, response_format=Summary
            )

        def make_loop(body: dict[str, Any]) -> AsyncToolLoopStream:
            return atool_loop_stream(aclient(loop_upstream), body["messages"], LOOP_TOOLS, model="loop")

        chat = durable_endpoint(make_stream, MemoryEventLog(), wire="ai-sdk", keep_alive=1)
        loop = durable_endpoint(make_loop, MemoryEventLog(), wire="ai-sdk", keep_alive=1)
        routes = [
            Route("/", lambda request: HTMLResponse(PAGE)),
            Route("/page.js", lambda request: Response(bundle, media_type="text/javascript")),
            Mount("/api/chat", app=chat),
            Mount("/api/loop", app=loop),
        ]
        with AppServer(Starlette(routes=routes)) as server:
            yield server.url


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync",
            ],
        )  # fmt: skip
        yield chromium
        chromium.close()


def shown(page: Any) -> dict[str, Any]:
    """What the page renders of the assistant's message."""
    return {
        "reasoning": page.locator(".assistant .reasoning p").all_inner_texts(),
        "text": page.locator(".assistant .text").all_inner_texts(),
        "tools": [
            (tool.locator("strong").inner_text(), json.loads(tool.locator(".input").inner_text()), tool.get_attribute("data-state"))
            for tool in page.locator(".assistant .tool").all()
        ],
        "final": page.locator(".assistant .final").all_inner_texts(),
    }  # fmt: skip


def test_use_chat_renders_the_answer_and_a_reload_mid_stream_resumes_it(site: str, browser: Any) -> None:
    """The page asks, the answer streams; reloaded while the tool calls stream, useChat resumes the
    chat from the durable log: one reasoning, one text, two tool calls, the validated object, each once."""
    page = browser.new_page(viewport={"width": 900, "height": 1100})
    page.goto(f"{site}/?chat=browser-chat")
    page.wait_for_selector(".assistant .partial li", timeout=30_000)  # the JSON tree has begun
    grown = page.evaluate("window.__partials.length")
    assert not page.locator("main[data-finished]").count(), "the reload comes mid-stream"
    page.reload()
    page.wait_for_selector("main[data-finished]", timeout=60_000)
    assert page.locator(".user").count() == 0, "the page keeps no history: only the answer is resumed"
    rendered = shown(page)
    assert rendered["reasoning"] == [REASONING]
    assert [json.loads(text) for text in rendered["text"]] == [STRUCTURED]
    assert rendered["text"] == [json.dumps(STRUCTURED)], "no delta lost or repeated"
    assert rendered["tools"] == [(call["name"], call["arguments"], "input-available") for call in TOOL_CALLS]
    assert len(rendered["final"]) == 1
    for key in ("title:", '"Front-ends"', "points:", '"useChat"', '"AG-UI"', "meta:", "formats:"):
        assert key in rendered["final"][0]
    assert page.locator(".assistant .final li").count() == 7  # title, points and its 3, meta and its 1
    partials = [json.loads(value) for value in page.evaluate("window.__partials")]
    assert grown >= 1, "the tree was growing when the page was reloaded"
    assert len(partials) >= 3, "the tree grew in steps after the reload too"
    sizes = [len(json.dumps(value)) for value in partials]
    assert sizes == sorted(sizes)
    assert partials[-1] == STRUCTURED
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "use-chat-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 10_000
    page.close()


def test_use_chat_shows_a_tool_loops_outputs_and_errors(site: str, browser: Any) -> None:
    """The tool loop's endpoint: both tool parts rendered with their outcome (the JSON output, the
    error's text), then the answer."""
    page = browser.new_page(viewport={"width": 900, "height": 700})
    page.goto(f"{site}/?chat=loop-chat&api=/api/loop")
    page.wait_for_selector("main[data-finished]", timeout=60_000)
    tools = page.locator(".assistant .tool").all()
    assert [tool.get_attribute("data-state") for tool in tools] == ["output-available", "output-error"]
    assert [tool.locator("strong").inner_text() for tool in tools] == [call["name"] for call in TOOL_CALLS]
    assert json.loads(tools[0].locator(".output").inner_text()) == json.loads(LOOP_RESULTS[0])
    assert tools[1].locator(".error").inner_text() == LOOP_RESULTS[1].removeprefix("Error: ")
    assert page.locator(".assistant .text").all_inner_texts() == [LOOP_ANSWER]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "use-chat-tool-loop.png"), full_page=True)
    page.close()
