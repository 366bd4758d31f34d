"""The durable page in headless Chromium (Debian's, driven by Playwright), through a balancer that cuts
the page's EventSource connection mid-stream: the page shows the whole answer exactly once."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deltaflow.replay import ReplayServer, Scenario
from tests.durable.balancer import CuttingBalancer
from tests.durable.instances import RelayProcess
from tests.durable.redis_server import RedisServer

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"
)

ARTIFACTS = Path(__file__).parent / "artifacts"
SCREENSHOT_COPY = Path("/work/durable-screenshot.png")
ANSWER = (
    "Durable streams keep every event in a log, so a cut connection resumes from the next event "
    "on any instance, and the answer is shown exactly once."
)
REASONING = "The user asks about resumption; explain it briefly."
ARGUMENTS = {"topic": "durable streams", "limit": 3}
STRUCTURED = {"title": "Durable streams", "points": ["resume", "replay", "stop"], "meta": {"instances": 2}}
SCENARIOS = {
    "browser": Scenario.scripted(
        ANSWER,
        reasoning=REASONING,
        tool_calls=[{"name": "lookup", "arguments": ARGUMENTS}],
        tokens_per_second=40,
    ),
    "structured": Scenario.scripted(json.dumps(STRUCTURED), tokens_per_second=60),
    "long": Scenario.scripted("word " * 500, chunk_size=5, tokens_per_second=40),
}
SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "summary", "schema": {"type": "object"}},
}


@pytest.fixture(scope="module")
def site(redis_server: RedisServer) -> Iterator[CuttingBalancer]:
    """Two relay processes on one Redis, behind the cutting balancer."""
    with ReplayServer(SCENARIOS) as upstream:
        arguments = [
            "--redis", redis_server.url, "--base-url", upstream.base_url,
            "--model", "browser", "--allow-model", "structured", "--allow-model", "long",
        ]  # fmt: skip
        with (
            RelayProcess(*arguments) as first,
            RelayProcess(*arguments) as second,
            CuttingBalancer([first.port, second.port]) as balancer,
        ):
            yield balancer


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run",
            ],
        )  # fmt: skip
        yield chromium
        chromium.close()


def test_the_page_shows_the_whole_answer_once_after_a_cut(site: CuttingBalancer, browser: Any) -> None:
    """The EventSource connection is cut after 15 events, inside a frame; the browser reconnects with
    Last-Event-ID by itself and the page ends with every part exactly once; a reload replays it from the log."""
    page = browser.new_page(viewport={"width": 900, "height": 900})
    site.cut_next(15, into=5)
    cuts, carried = site.cuts, len(site.event_backends)
    page.goto(site.url + "/chat/")
    page.fill("#prompt", "How do durable streams work?")
    page.click("#start")
    page.wait_for_selector("body[data-outcome]", timeout=30_000)
    assert site.cuts == cuts + 1
    # the cut connection, then the browser's own reconnection carried the rest (round robin usually sends it
    # to the other instance, but Chromium may reuse an idle connection: which one is not asserted)
    assert len(site.event_backends[carried:]) == 2
    assert page.get_attribute("body", "data-outcome") == "done"
    assert page.inner_text("#content") == ANSWER
    assert page.inner_text("#reasoning") == REASONING
    assert page.inner_text(".tool .arguments") == json.dumps(ARGUMENTS)
    assert page.inner_text(".tool strong") == "lookup("
    assert "tokens" in page.inner_text("#usage")
    assert "resumed 1x" in page.inner_text("#status")
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / "durable-page.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 0
    if SCREENSHOT_COPY.parent.is_dir():
        shutil.copyfile(screenshot, SCREENSHOT_COPY)

    page.reload()  # the stream id is in the address: the answer comes back whole from the log
    page.wait_for_selector("body[data-outcome]", timeout=30_000)
    assert page.inner_text("#content") == ANSWER
    assert page.inner_text("#reasoning") == REASONING
    page.close()


def test_structured_output_grows_as_a_tree(site: CuttingBalancer, browser: Any) -> None:
    """With a JSON schema, the parsed value's ops build a tree on the page, cut mid-stream and resumed."""
    page = browser.new_page()
    page.goto(site.url + "/chat/")
    site.cut_next(10)
    cuts = site.cuts
    body = {
        "model": "structured",
        "messages": [{"role": "user", "content": "summarise"}],
        "response_format": SCHEMA,
    }
    page.evaluate("body => window.deltaflowStart(body)", body)
    page.wait_for_selector("body[data-outcome]", timeout=30_000)
    assert page.get_attribute("body", "data-outcome") == "done"
    assert page.inner_text("#content") == json.dumps(STRUCTURED)
    tree = page.inner_text("#tree")
    for text in ("title:", '"Durable streams"', "points:", '"replay"', "meta:", "instances:", "2"):
        assert text in tree
    assert page.locator("#tree li").count() == 7  # title, points and its 3 items, meta and its 1 key
    assert site.cuts == cuts + 1
    page.close()


def test_the_stop_button_ends_the_generation_on_any_instance(site: CuttingBalancer, browser: Any) -> None:
    """Stop while the answer streams: the page ends with `aborted (stopped)` and keeps what was generated."""
    page = browser.new_page()
    page.goto(site.url + "/chat/")
    page.evaluate(
        "body => window.deltaflowStart(body)",
        {"model": "long", "messages": [{"role": "user", "content": "go"}]},
    )
    page.wait_for_function("document.getElementById('content').textContent.length > 20", timeout=30_000)
    page.click("#stop")
    page.wait_for_selector("body[data-outcome]", timeout=30_000)
    assert page.get_attribute("body", "data-outcome") == "aborted (stopped)"
    shown = page.inner_text("#content")
    assert shown.startswith("word word")
    assert len(shown) < len("word " * 500)
    page.close()
