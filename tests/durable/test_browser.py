"""The durable page in headless Chromium (Debian's, driven by Playwright), through a balancer that cuts
the page's EventSource connection mid-stream: the page shows the whole answer exactly once. Then the page
as a person uses it for a demo or to debug a stream: the question kept by its link on another instance,
a draft kept across a reload, labelled parts, a model and structured output chosen in the form, several
turns, honest failure states and a link to copy; screenshots at desktop and phone widths."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deltaflow.durable._command import DEMO_ANSWER, demo_lookup
from deltaflow.replay import ReplayServer, Scenario
from tests.durable.balancer import CuttingBalancer
from tests.durable.instances import RelayProcess
from tests.durable.redis_server import RedisServer

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
    pytest.mark.once,
]

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
# what the page's "structured output" box asks for: any JSON object, parsed as it streams
STRUCTURED_FORMAT = {"type": "json_schema", "json_schema": {"name": "answer", "schema": {"type": "object"}}}
SCHEMA = {
    "type": "json_schema",
    "json_schema": {"name": "summary", "schema": {"type": "object"}},
}


@dataclass(frozen=True)
class Site:
    """The upstream provider, two relay instances on one Redis, and the cutting balancer in front."""

    upstream: ReplayServer
    first: RelayProcess
    second: RelayProcess
    balancer: CuttingBalancer


@pytest.fixture(scope="module")
def instances(redis_server: RedisServer) -> Iterator[Site]:
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
            yield Site(upstream, first, second, balancer)


@pytest.fixture(scope="module")
def site(instances: Site) -> CuttingBalancer:
    return instances.balancer


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


QUESTION = "How do durable streams resume after a cut?"
SHOTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


def _ask(page: Any, question: str, *, model: str = "", structured: bool = False) -> None:
    """Ask through the form as a person does, and wait for the stream's end."""
    page.fill("#prompt", question)
    if model:
        page.fill("#model", model)
    if structured:
        page.check("#structured")
    page.click("#start")
    page.wait_for_selector("body[data-outcome]", timeout=30_000)


def test_a_link_keeps_the_question_on_another_instance_and_on_reload(instances: Site, browser: Any) -> None:
    """The link carries the question: opened on the other instance, or reloaded, the page shows the question
    asked, labelled, with the answer from the log, and says which instance serves the page."""
    page = browser.new_page()
    page.goto(instances.first.url + "/chat/")
    _ask(page, QUESTION)
    assert page.get_attribute("body", "data-outcome") == "done"
    link = page.evaluate("location.href")
    assert page.input_value("#link") == link
    elsewhere = link.replace(f":{instances.first.port}/", f":{instances.second.port}/")
    other = browser.new_page()
    other.goto(elsewhere)
    other.wait_for_selector("body[data-outcome]", timeout=30_000)
    assert other.inner_text("#question") == QUESTION
    assert other.inner_text("#content") == ANSWER
    assert f"127.0.0.1:{instances.second.port}" in other.inner_text("#served-by")
    assert other.inner_text("#stream-url").startswith(f"http://127.0.0.1:{instances.second.port}/chat/")
    assert other.inner_text("#last-event") != "none"
    assert other.inner_text("#status").startswith("finished")
    labels = other.locator("#turn section:not([hidden]) h3").all_text_contents()
    assert labels == ["Reasoning", "Answer", "Tool calls"]
    assert "its result is not part of this stream" in other.inner_text(".tool .result")
    assert "finish: tool_calls" in other.inner_text("#outcome")
    other.reload()
    other.wait_for_selector("body[data-outcome]", timeout=30_000)
    assert other.inner_text("#question") == QUESTION
    page.close()
    other.close()


def test_typed_text_survives_a_reload(site: CuttingBalancer, browser: Any) -> None:
    """A question typed but not sent is still in the box after a reload; sending it clears the draft."""
    page = browser.new_page()
    page.goto(site.url + "/chat/")
    page.fill("#prompt", "half a question, not sent yet")
    page.reload()
    assert page.input_value("#prompt") == "half a question, not sent yet"
    page.click("#start")
    page.wait_for_selector("body[data-outcome]", timeout=30_000)
    assert page.inner_text("#question") == "half a question, not sent yet"
    page.reload()
    page.wait_for_selector("body[data-outcome]", timeout=30_000)
    assert page.input_value("#prompt") == ""
    page.close()


def test_the_form_asks_a_model_for_structured_output_and_the_tree_grows(
    instances: Site, browser: Any
) -> None:
    """Model and structured output chosen in the form: the request carries both, and the tree is drawn
    while it grows (several sizes seen), ending with every key."""
    page = browser.new_page()
    page.goto(instances.balancer.url + "/chat/")
    page.evaluate(
        """() => {
            window.treeSizes = new Set();
            new MutationObserver(() => window.treeSizes.add(document.querySelectorAll('#tree li').length))
                .observe(document.getElementById('tree'), { childList: true, subtree: true });
        }"""
    )
    _ask(page, "summarise", model="structured", structured=True)
    assert page.get_attribute("body", "data-outcome") == "done"
    request = instances.upstream.requests[-1].body
    assert request is not None
    assert (request["model"], request["response_format"]) == ("structured", STRUCTURED_FORMAT)
    assert page.locator("#tree li").count() == 7
    assert page.evaluate("window.treeSizes.size") > 2
    assert page.locator("#turn section:not([hidden]) h3").all_text_contents() == [
        "Answer",
        "Structured output",
    ]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "durable-page-structured.png"), full_page=True)
    page.close()


def test_several_turns_make_one_conversation(instances: Site, browser: Any) -> None:
    """A second question continues the first: the request holds both turns, the page shows the first above."""
    page = browser.new_page()
    page.goto(instances.balancer.url + "/chat/")
    _ask(page, "first question")
    _ask(page, "and a second one")
    request = instances.upstream.requests[-1].body
    assert request is not None
    assert request["messages"] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": ANSWER},
        {"role": "user", "content": "and a second one"},
    ]
    assert page.locator("#history .turn").count() == 2
    assert page.locator("#history .turn").first.text_content() == "Youfirst question"
    assert page.inner_text("#question") == "and a second one"
    link = page.evaluate("location.href")
    other = browser.new_page()
    other.goto(link)  # the whole conversation travels in the link
    other.wait_for_selector("body[data-outcome]", timeout=30_000)
    assert other.locator("#history .turn").count() == 2
    assert other.inner_text("#question") == "and a second one"
    page.click("#new")
    assert page.locator("#history .turn").count() == 0
    page.close()
    other.close()


def test_an_unknown_stream_id_is_not_found_with_stop_disabled(site: CuttingBalancer, browser: Any) -> None:
    """A link to a stream the log does not hold says so, and Stop cannot be pressed."""
    page = browser.new_page()
    page.goto(site.url + "/chat/#stream=no-such-stream")
    page.wait_for_selector("body[data-outcome]", timeout=30_000)
    assert page.get_attribute("body", "data-outcome") == "not_found"
    assert page.inner_text("#status").startswith('not found: no stream "no-such-stream"')
    assert page.is_disabled("#stop")
    assert "(this link names the stream only" in page.inner_text("#question")
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size(SHOTS["phone"])
    page.screenshot(path=str(ARTIFACTS / "durable-page-not-found.png"), full_page=True)
    page.close()


def test_a_log_failure_is_a_failure_not_finished(site: CuttingBalancer, browser: Any) -> None:
    """The relay's ``log_error`` event (its log became unreachable mid-stream) shows as a failure."""
    page = browser.new_page()
    body = (
        'retry: 1000\n\nid: 1-0\nevent: content.delta\ndata: {"choice_index":0,"delta":"Half an ans"}\n\n'
        'event: log_error\ndata: {"code":"unavailable","message":"the event log cannot be reached"}\n\n'
    )
    page.route(
        "**/chat/broken-log",
        lambda route: route.fulfill(status=200, headers={"content-type": "text/event-stream"}, body=body),
    )
    page.goto(site.url + "/chat/#stream=broken-log")
    page.wait_for_selector("body[data-outcome]", timeout=30_000)
    assert page.get_attribute("body", "data-outcome") == "log_error"
    status = page.inner_text("#status")
    assert status == "failed: the event log failed (unavailable)"
    assert "finished" not in status
    assert page.inner_text("#content") == "Half an ans"
    assert "the event log cannot be reached" in page.inner_text("#notices")
    assert page.is_disabled("#stop")
    page.close()


def test_the_link_can_be_copied(site: CuttingBalancer, browser: Any) -> None:
    """Copy link puts the stream's address, with its question, on the clipboard."""
    context = browser.new_context()
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=site.url)
    page = context.new_page()
    page.goto(site.url + "/chat/")
    assert page.is_disabled("#copy")
    _ask(page, QUESTION)
    page.click("#copy")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.evaluate("location.href")
    assert "#stream=" in copied
    assert "conversation=" in copied
    context.close()


@pytest.mark.parametrize("width", sorted(SHOTS))
def test_screenshots_at_desktop_and_phone_widths(site: CuttingBalancer, browser: Any, width: str) -> None:
    """The page after a whole answer, for a person to look at: nothing wider than the screen."""
    page = browser.new_page(viewport=SHOTS[width])
    page.goto(site.url + "/chat/")
    _ask(page, QUESTION)
    assert page.evaluate("document.documentElement.scrollWidth") <= SHOTS[width]["width"]
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot = ARTIFACTS / f"durable-page-{width}.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 0
    page.close()


def test_the_key_free_demo_runs_its_tool_and_the_page_shows_the_result(browser: Any) -> None:
    """``deltaflow relay`` without ``--base-url``: the scripted model calls ``lookup``, the relay runs it (a
    tool loop) and the page shows its result in the call's box, then the answer of the second step; the
    outcome is the last step's (no ``finish: tool_calls`` left over), each step's reasoning a paragraph."""
    with RelayProcess() as demo:
        page = browser.new_page(viewport={"width": 900, "height": 1000})
        page.goto(demo.url + "/chat/")
        _ask(page, "How do durable streams work?")
        assert page.get_attribute("body", "data-outcome") == "done"
        assert page.inner_text("#content") == DEMO_ANSWER
        (box,) = page.locator(".tool").all()
        assert box.get_attribute("data-result") == "ok"
        result = box.locator(".result").inner_text()
        assert result.startswith("result: ")
        assert json.loads(result.removeprefix("result: ")) == demo_lookup("durable streams", 3)
        assert page.inner_text("#outcome") == "outcome: done"
        first, second = page.inner_text("#reasoning").split("\n\n")
        assert "look up the notes first" in first
        assert second == "The notes say how: answer briefly."
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "durable-page-demo-tool-loop.png"), full_page=True)
        page.close()
