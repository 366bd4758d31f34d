"""The deltaflow command: every subcommand documents itself; user errors are one line, no traceback."""

from __future__ import annotations

import json
import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from deltaflow._cli._live import check_base_url
from deltaflow.replay import Fault, ReplayServer, Scenario
from tests.fixtures import FIXTURES, OPENAI_FIXTURES, require

COMMANDS = ["demo", "chat", "replay", "record", "serve"]


def _run(
    *arguments: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    base = {key: value for key, value in os.environ.items() if not key.startswith("OPENAI_")}
    return subprocess.run(
        [sys.executable, "-m", "deltaflow", *arguments],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**base, **(env or {})},
        check=False,
    )


def _one_line_error(result: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("deltaflow: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def server() -> Iterator[ReplayServer]:
    """A replay server standing in for a provider."""
    with ReplayServer(Scenario.scripted("Hello from the replay server")) as running:
        yield running


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command: str) -> None:
    """--help works on every subcommand and describes it."""
    result = _run(command, "--help")
    assert result.returncode == 0
    assert f"usage: deltaflow {command}" in result.stdout


def test_chat_without_a_key_is_one_clear_line() -> None:
    """No OPENAI_API_KEY: one line saying so, exit 1."""
    _one_line_error(_run("chat", "hello"), "OPENAI_API_KEY is not set")


def test_unreachable_base_url_is_one_clear_line() -> None:
    """A base URL nobody listens on: one line naming the URL."""
    result = _run("chat", "hello", "--base-url", "http://127.0.0.1:9/v1", env={"OPENAI_API_KEY": "sk-test"})
    _one_line_error(result, "cannot reach the API")


def test_unknown_dialect_is_one_clear_line(server: ReplayServer) -> None:
    """An unknown dialect lists the known ones in one line."""
    result = _run(
        "chat", "hi", "--base-url", server.base_url, "--dialect", "nope", env={"OPENAI_API_KEY": "sk-test"}
    )
    _one_line_error(result, "nope")


def test_bad_schema_file_is_one_clear_line(tmp_path: Path, server: ReplayServer) -> None:
    """A schema file that is not JSON: one line naming the file."""
    schema = tmp_path / "schema.json"
    schema.write_text("{not json")
    result = _run(
        "chat",
        "hi",
        "--base-url",
        server.base_url,
        "--schema",
        str(schema),
        env={"OPENAI_API_KEY": "sk-test"},
    )
    _one_line_error(result, "schema.json")


def test_missing_recording_is_one_clear_line() -> None:
    """Replaying a file that does not exist: one line."""
    _one_line_error(_run("replay", "no-such-file.jsonl"), "recording not found")


def test_chat_streams_from_an_openai_compatible_endpoint(server: ReplayServer) -> None:
    """chat prints the streamed answer using OPENAI_API_KEY and --base-url."""
    result = _run("chat", "hi", "--base-url", server.base_url, env={"OPENAI_API_KEY": "sk-test"})
    assert result.returncode == 0, result.stderr
    assert "Hello from the replay server" in result.stdout
    assert server.requests[-1].headers["authorization"] == "Bearer sk-test"


def test_chat_log_json_never_logs_the_key(server: ReplayServer) -> None:
    """--log-json writes JSON records to stderr, without the API key."""
    result = _run(
        "chat",
        "hi",
        "--base-url",
        server.base_url,
        "--log-json",
        env={"OPENAI_API_KEY": "sk-test-SECRET-123"},
    )
    assert result.returncode == 0, result.stderr
    assert '"event": "stream_completed"' in result.stderr
    assert "SECRET" not in result.stdout + result.stderr


def test_record_then_replay_gives_the_same_text(tmp_path: Path, server: ReplayServer) -> None:
    """record saves the chunks as JSONL; replay of that file prints the same answer."""
    recording = tmp_path / "run.jsonl"
    result = _run(
        "record", "hi", "--base-url", server.base_url, "-o", str(recording), env={"OPENAI_API_KEY": "sk-t"}
    )
    assert result.returncode == 0, result.stderr
    replayed = _run("replay", str(recording), "--output", "text")
    assert replayed.returncode == 0, replayed.stderr
    assert "Hello from the replay server" in replayed.stdout


def test_replay_prints_events_of_a_recorded_sse_body() -> None:
    """replay of an SSE recording prints one line per event, ending with completion.done."""
    path = require(OPENAI_FIXTURES / "parse_nothing.sse")
    result = _run("replay", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("chunk")
    assert lines[-1].startswith("completion.done")
    assert any(line.startswith("content.done") for line in lines)


def test_serve_answers_the_openai_client(tmp_path: Path) -> None:
    """serve runs the replay server standalone; the openai client streams the recording from it."""
    import socket  # noqa: PLC0415
    import time  # noqa: PLC0415

    import openai  # noqa: PLC0415

    path = require(OPENAI_FIXTURES / "parse_nothing.sse")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "deltaflow", "serve", str(path), "--port", str(port)],
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sk-test", max_retries=0)
        deadline = time.monotonic() + 20
        while True:
            try:
                chunks = list(client.chat.completions.create(model="anything", messages=[], stream=True))
                break
            except openai.APIConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        text = "".join(choice.delta.content or "" for chunk in chunks for choice in chunk.choices)
        assert text.startswith("I'm unable to provide real-time weather updates.")
    finally:
        process.terminate()
        process.wait(10)


def test_unwritable_recording_path_is_one_clear_line(server: ReplayServer, tmp_path: Path) -> None:
    """record into a folder that does not exist: one line naming the path."""
    target = tmp_path / "missing" / "run.jsonl"
    result = _run(
        "record", "hi", "--base-url", server.base_url, "-o", str(target), env={"OPENAI_API_KEY": "sk-t"}
    )
    _one_line_error(result, str(target))


# -- issue 14: the command line as a new user meets it ---------------------------------------------------


def _chat(server: ReplayServer, *arguments: str, key: str = "sk-test") -> subprocess.CompletedProcess[str]:
    return _run(*arguments[:2], "--base-url", server.base_url, *arguments[2:], env={"OPENAI_API_KEY": key})


@pytest.fixture(scope="module")
def provider() -> Iterator[ReplayServer]:
    """A provider with a key, several models and the answers the tests need."""
    two_choices = Scenario.from_chunks(
        [
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [{"index": index, "delta": {"role": "assistant", "content": text}}],
            }
            for index, text in ((0, "First "), (1, "Second "), (0, "answer."), (1, "answer."))
        ]
        + [
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": "m",
                "choices": [{"index": index, "delta": {}, "finish_reason": "stop"}],
            }
            for index in (0, 1)
        ]
    )
    scenarios = {
        "plain": Scenario.scripted("Hello from the provider"),
        "two": two_choices,
        "weather": Scenario.scripted('{"city": "Paris", "celsius": 18.5}'),
        "wrong-type": Scenario.scripted('{"city": "Paris", "celsius": "warm"}'),
        "not-json": Scenario.scripted("Sorry, here is prose instead"),
        "dropped": Scenario.scripted("Hello there my friend", chunk_size=3, fault=Fault.drop_after(4)),
        "slow": Scenario.scripted("tick " * 200, chunk_size=1, tokens_per_second=20),
    }
    with ReplayServer(scenarios, api_key="sk-test") as running:
        yield running


def test_version_prints_the_installed_version() -> None:
    """--version prints the distribution's version on stdout and exits 0."""
    import importlib.metadata  # noqa: PLC0415

    result = _run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"deltaflow {importlib.metadata.version('deltaflow')}"


def test_an_api_error_is_printed_once_on_stderr(provider: ReplayServer) -> None:
    """A 401: stdout empty, one line on stderr that states the code once and the provider's message."""
    result = _chat(provider, "chat", "hi", "--model", "plain", key="sk-wrong")
    assert result.stdout == ""
    _one_line_error(result, "the API answered 401: Incorrect API key provided.")
    assert result.stderr.count("401") == 1


def test_a_stream_broken_midway_keeps_the_answer_on_stdout_and_the_error_on_stderr(
    provider: ReplayServer,
) -> None:
    """The text received stays on stdout, on a line of its own; the error is one line on stderr only."""
    result = _chat(provider, "chat", "hi", "--model", "dropped")
    _one_line_error(result, "the connection broke mid-stream")
    assert result.stdout.startswith("Hello the")
    assert result.stdout.endswith("\n")
    assert "error" not in result.stdout.lower()


@pytest.mark.parametrize(
    "url", ["localhost:8000/v1", "127.0.0.1:8000", "http://127.0.0.1:8000/ v1", "http ://x/v1", "/v1", ""]
)
def test_a_base_url_without_scheme_or_with_spaces_is_one_line(url: str) -> None:
    """--base-url is checked before any request: one line naming the URL, exit 2."""
    result = _run("chat", "hi", "--base-url", url, env={"OPENAI_API_KEY": "sk-test"})
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("deltaflow: error: argument --base-url: base URL")
    assert "Traceback" not in result.stderr


def test_a_bad_openai_base_url_variable_is_one_line() -> None:
    """The same check applies to $OPENAI_BASE_URL."""
    result = _run("chat", "hi", env={"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "api.example.com/v1"})
    _one_line_error(result, "(from OPENAI_BASE_URL)")


_hosts = st.from_regex(r"[a-z][a-z0-9-]{0,20}(\.[a-z]{2,6}){0,2}", fullmatch=True)


@given(
    scheme=st.sampled_from(["http", "https"]),
    host=_hosts,
    port=st.integers(1, 65535),
    path=st.text("abcv1/-_"),
)
def test_every_http_url_with_a_host_is_accepted(scheme: str, host: str, port: int, path: str) -> None:
    """An absolute http(s) URL with a host and no spaces passes unchanged."""
    url = f"{scheme}://{host}:{port}/{path}"
    assert check_base_url(url) == url


@given(st.text(min_size=0, max_size=40))
def test_any_text_with_whitespace_or_without_an_http_scheme_is_refused(text: str) -> None:
    """Whatever the text, it is accepted only when it is an http(s) URL with a host and no whitespace."""
    try:
        accepted = check_base_url(text)
    except ValueError as error:
        assert "\n" not in str(error)
        return
    assert accepted == text
    assert not any(character.isspace() for character in text)
    assert text.lower().startswith(("http://", "https://"))


def test_chat_text_with_several_choices_shows_each_labelled(provider: ReplayServer) -> None:
    """-n 2 with text output: every choice appears whole, under its own label, choice 0 first."""
    result = _chat(provider, "chat", "hi", "--model", "two", "-n", "2", "--output", "text")
    assert result.returncode == 0, result.stderr
    assert provider.requests[-1].body["n"] == 2
    out = result.stdout
    assert "── choice 0\nFirst answer.\n" in out
    assert "── choice 1\nSecond answer.\n" in out
    assert out.index("── choice 0") < out.index("── choice 1") < out.index("── finish: stop, stop")


def test_chat_events_output_prints_one_line_per_event(provider: ReplayServer) -> None:
    """--output events: one line per event, the answer's text in content.done."""
    result = _chat(provider, "chat", "hi", "--model", "plain", "--output", "events")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1].startswith("completion.done")
    assert any(line.startswith("content.done") and "Hello from the provider" in line for line in lines)


def test_chat_schema_answer_that_validates_exits_zero(provider: ReplayServer, tmp_path: Path) -> None:
    """A structured answer matching the schema: drawn, exit 0, nothing on stderr."""
    result = _chat(provider, "chat", "hi", "--model", "weather", "--schema", str(_weather_schema(tmp_path)))
    assert result.returncode == 0, result.stderr
    assert '"celsius": 18.5' in result.stdout
    assert result.stderr == ""


@pytest.mark.parametrize(
    ("model", "fragment"),
    [
        ("wrong-type", "['celsius'] does not match the schema: 'warm' is not of type 'number'"),
        ("not-json", "not valid JSON"),
    ],
)
def test_chat_schema_answer_that_does_not_validate_fails(
    provider: ReplayServer, tmp_path: Path, model: str, fragment: str
) -> None:
    """An answer that is not JSON, or JSON of the wrong shape: exit 1, the reason on stderr, never in the answer."""
    result = _chat(provider, "chat", "hi", "--model", model, "--schema", str(_weather_schema(tmp_path)))
    _one_line_error(result, fragment)
    assert "error" not in result.stdout.lower()
    assert fragment not in result.stdout


def test_chat_schema_without_the_schema_extra_names_it_and_sends_nothing(
    provider: ReplayServer, tmp_path: Path
) -> None:
    """Without jsonschema installed: one line naming the extra, exit 1, and no request (no tokens spent)."""
    before = len(provider.requests)
    code = (
        "import sys; sys.modules['jsonschema'] = None; from deltaflow.cli import main; "
        f"sys.exit(main(['chat', 'hi', '--base-url', {provider.base_url!r}, '--schema', "
        f"{str(_weather_schema(tmp_path))!r}]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "OPENAI_API_KEY": "sk-test"},
        check=False,
    )
    _one_line_error(result, "chat --schema needs jsonschema: pip install 'deltaflow[schema]'")
    assert len(provider.requests) == before


def test_a_missing_module_is_one_line_naming_what_to_install() -> None:
    """Any command whose import fails (here rich, for the text view) says what to install, without a traceback."""
    path = require(OPENAI_FIXTURES / "parse_nothing.sse")
    code = (
        "import sys; sys.modules['rich'] = None; from deltaflow.cli import main; "
        f"sys.exit(main(['replay', {str(path)!r}, '--output', 'text']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    _one_line_error(result, "deltaflow replay needs rich, which is not installed: pip install rich")
    assert result.stdout == ""


def test_a_failed_record_leaves_no_file_and_keeps_an_earlier_one(
    provider: ReplayServer, tmp_path: Path
) -> None:
    """A request that fails before any chunk: one line, no new file, a previous recording untouched."""
    fresh = tmp_path / "fresh.jsonl"
    result = _chat(provider, "record", "hi", "--model", "no-such-model", "-o", str(fresh))
    _one_line_error(result, "the API answered 404")
    earlier = tmp_path / "earlier.jsonl"
    earlier.write_text("precious\n")
    result = _chat(provider, "record", "hi", "--model", "no-such-model", "-o", str(earlier))
    _one_line_error(result, "the API answered 404")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["earlier.jsonl"]
    assert earlier.read_text() == "precious\n"


def test_a_recording_cut_short_is_kept_and_replaying_it_says_so(
    provider: ReplayServer, tmp_path: Path
) -> None:
    """A stream dropped midway: record keeps the chunks and says so; replay shows them and says it was cut short."""
    recording = tmp_path / "cut.jsonl"
    result = _chat(provider, "record", "hi", "--model", "dropped", "-o", str(recording))
    _one_line_error(result, f"are in {recording} (a cut-short recording)")
    assert recording.read_text().count("\n") >= 3
    replayed = _run("replay", str(recording), "--output", "text")
    _one_line_error(replayed, "the recording cut.jsonl was cut short: choice 0 never finished")
    assert replayed.stdout.startswith("Hello the")


def test_recording_a_whole_answer_that_fails_the_schema_is_not_called_cut_short(
    provider: ReplayServer, tmp_path: Path
) -> None:
    """The stream ended, the answer is bad: exit 1 naming the problem; the recording is whole and replays cleanly."""
    recording = tmp_path / "bad.jsonl"
    schema = str(_weather_schema(tmp_path))
    result = _chat(
        provider, "record", "hi", "--model", "wrong-type", "--schema", schema, "-o", str(recording)
    )
    _one_line_error(
        result,
        f"does not match the schema: 'warm' is not of type 'number' (the stream is recorded in {recording})",
    )
    assert "cut" not in result.stderr
    assert _run("replay", str(recording), "--output", "text").returncode == 0


def test_a_recording_whose_last_line_is_incomplete_says_so(provider: ReplayServer, tmp_path: Path) -> None:
    """A writer killed mid-line: the whole lines replay, then one line says where it was cut."""
    recording = tmp_path / "run.jsonl"
    assert _chat(provider, "record", "hi", "--model", "plain", "-o", str(recording)).returncode == 0
    lines = recording.read_text().splitlines(keepends=True)
    recording.write_text("".join(lines[:3]) + lines[3][:20])
    replayed = _run("replay", str(recording), "--output", "text")
    _one_line_error(replayed, "was cut short: its last line (4) is incomplete")
    assert replayed.stdout.startswith("Hello")


def test_replay_text_of_a_two_choice_recording_labels_both() -> None:
    """replay --output text of a recorded n=2 stream: both choices, each under its label."""
    path = require(FIXTURES / "providers-more" / "openai" / "gpt-4o-mini-n2-interleaved.sse")
    result = _run("replay", str(path), "--output", "text")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("── choice 0\nI'm")
    assert "\n── choice 1\nI'm" in result.stdout


def test_a_recording_gets_the_mode_of_any_new_file(provider: ReplayServer, tmp_path: Path) -> None:
    """record writes through a private temporary file, but the recording ends up with the umask's mode."""
    recording = tmp_path / "run.jsonl"
    assert _chat(provider, "record", "hi", "--model", "plain", "-o", str(recording)).returncode == 0
    mask = os.umask(0)
    os.umask(mask)
    assert recording.stat().st_mode & 0o777 == 0o666 & ~mask


def _start_serve(*arguments: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``deltaflow serve`` on a free port; return the process and the base URL it printed."""
    process = subprocess.Popen(
        [sys.executable, "-m", "deltaflow", "serve", *arguments, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    line = _first_line(process)
    match = re.search(r"at (http://127\.0\.0\.1:(\d+)/v1)", line)
    assert match is not None, line + (process.stderr.read() if process.poll() is not None else "")  # type: ignore[union-attr]
    assert int(match.group(2)) > 0
    return process, match.group(1)


def _first_line(process: subprocess.Popen[str], timeout: float = 60) -> str:
    """The first line the process prints, or "" if it prints none in time (rather than waiting forever)."""
    assert process.stdout is not None
    readable, _, _ = select.select([process.stdout], [], [], timeout)
    return process.stdout.readline() if readable else ""


def _stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGINT)
    process.wait(20)


def test_serve_on_port_zero_prints_the_port_it_got() -> None:
    """--port 0: the printed URL is where the openai client streams the recording from."""
    path = require(OPENAI_FIXTURES / "parse_nothing.sse")
    process, base_url = _start_serve(str(path))
    try:
        client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
        chunks = list(client.chat.completions.create(model="anything", messages=[], stream=True))
        text = "".join(choice.delta.content or "" for chunk in chunks for choice in chunk.choices)
        assert text.startswith("I'm unable to provide real-time weather updates.")
    finally:
        _stop(process)
    assert process.returncode == 130
    assert "Traceback" not in process.stderr.read()  # type: ignore[union-attr]


def test_serve_on_a_busy_port_is_one_line() -> None:
    """A port another socket listens on: one line naming it."""
    path = require(OPENAI_FIXTURES / "parse_nothing.sse")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = _run("serve", str(path), "--port", str(port))
    _one_line_error(result, f"port {port} on 127.0.0.1 is already in use")


def test_serve_injects_the_fault_given_and_the_header_overrides_it() -> None:
    """--fault drops every stream midway; a request's X-Replay-Fault: none gets it whole."""
    path = require(OPENAI_FIXTURES / "parse_nothing.sse")
    process, base_url = _start_serve(str(path), "--fault", "drop-after=3")
    try:
        client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
        received = []
        with pytest.raises(openai.APIConnectionError):
            for chunk in client.chat.completions.create(model="m", messages=[], stream=True):
                received.append(chunk)  # noqa: PERF402 - keeps the chunks before the drop
        whole = list(
            client.chat.completions.create(
                model="m", messages=[], stream=True, extra_headers={"X-Replay-Fault": "none"}
            )
        )
    finally:
        _stop(process)
    assert len(received) == 3
    assert len(whole) > 3
    assert [choice.finish_reason for chunk in whole for choice in chunk.choices][-1] == "stop"


def test_serve_paces_the_stream() -> None:
    """--ttft and --tokens-per-second: the stream cannot arrive sooner than the pacing allows."""
    path = require(OPENAI_FIXTURES / "parse_nothing.sse")
    process, base_url = _start_serve(str(path), "--ttft", "0.3", "--tokens-per-second", "50")
    try:
        client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
        started = time.monotonic()
        chunks = list(client.chat.completions.create(model="m", messages=[], stream=True))
        elapsed = time.monotonic() - started
    finally:
        _stop(process)
    # at least: the ttft, then one interval per event after the first ([DONE] is an event too)
    assert elapsed >= 0.3 + (len(chunks) - 1) / 50


def test_serve_help_documents_the_fault_header() -> None:
    """serve --help shows the pacing options and every form of X-Replay-Fault."""
    result = _run("serve", "--help")
    assert result.returncode == 0
    for needle in (
        "--tokens-per-second",
        "--ttft",
        "--fault SPEC",
        "X-Replay-Fault",
        "drop-after=N",
        "stall-after=N;stall=SECONDS",
        "malformed-after=N",
        "error-after=N;error-code=C;error-message=TEXT",
    ):
        assert needle in result.stdout


def test_serve_rejects_a_bad_fault_in_one_line() -> None:
    """An unknown fault kind: one line, before listening."""
    path = require(OPENAI_FIXTURES / "parse_nothing.sse")
    _one_line_error(_run("serve", str(path), "--port", "0", "--fault", "explode-after=1"), "bad --fault")


def test_ctrl_c_mid_answer_ends_the_line_and_says_interrupted(provider: ReplayServer) -> None:
    """SIGINT while the answer streams: exit 130, stdout ends its line, stderr says "interrupted" once."""
    before = len(provider.requests)
    process = subprocess.Popen(
        [sys.executable, "-m", "deltaflow", "chat", "hi", "--base-url", provider.base_url, "--model", "slow"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "OPENAI_API_KEY": "sk-test"},
    )
    deadline = time.monotonic() + 30
    while not (len(provider.requests) > before and provider.requests[-1].events_sent >= 5):
        assert time.monotonic() < deadline, "the request never streamed"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130
    assert out.startswith("tick")
    assert out.endswith("\n")
    assert err == "deltaflow: interrupted\n"


def _interrupted_while_starting() -> tuple[int, str, str]:
    """Start ``demo --fast``, SIGINT it once pydantic_core is mapped; its exit status, stdout and stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "deltaflow", "demo", "--fast"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    maps = Path(f"/proc/{process.pid}/maps")
    deadline = time.monotonic() + 30
    # pydantic_core's extension is mapped early in the heavy imports: that is start-up
    while "pydantic_core" not in maps.read_text():
        assert time.monotonic() < deadline, "pydantic_core was never loaded"
        time.sleep(0.002)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    return process.returncode, out, err


def test_ctrl_c_while_starting_prints_no_traceback() -> None:
    """SIGINT while the command still imports openai and pydantic: "interrupted", no traceback.

    Once in CI the process ended by the signal itself (status -2, nothing on stderr): the signal came
    where Python, not the command, handles it. Such a run is tried again, twice at most, and reported.
    """
    attempts = []
    for _ in range(3):
        status, out, err = _interrupted_while_starting()
        assert "Traceback" not in err
        if status != -signal.SIGINT:
            break
        attempts.append((status, out[-200:], err[-200:]))
    assert status == 130, attempts
    assert err.strip().splitlines()[-1] == "deltaflow: interrupted"


def _weather_schema(folder: Path) -> Path:
    path = folder / "weather.json"
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
        "required": ["city", "celsius"],
        "additionalProperties": False,
    }
    path.write_text(json.dumps(schema))
    return path
