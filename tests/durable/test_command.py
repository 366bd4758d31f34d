"""``deltaflow relay`` as a user runs it: the port it prints, one-line failures at start, short body errors."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

import httpx2

from tests.durable.instances import RelayProcess
from tests.durable.redis_server import RedisServer, free_port


def relay_command(*arguments: str) -> list[str]:
    return [sys.executable, "-m", "deltaflow", "relay", *arguments]


def run_failing(*arguments: str) -> str:
    """Runs the command expecting it to fail at start; returns its stderr."""
    env = {key: value for key, value in os.environ.items() if key != "OPENAI_API_KEY"}
    done = subprocess.run(
        relay_command(*arguments), check=False, capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 1, done
    return done.stderr


def test_port_0_prints_the_port_it_listens_on_and_ctrl_c_says_interrupted() -> None:
    """With --port 0 the first line names the real port, which serves the page; Ctrl+C ends with
    'interrupted' and no traceback."""
    process = subprocess.Popen(
        relay_command("--port", "0"), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        match = re.fullmatch(r"durable relay at http://127\.0\.0\.1:(\d+)/chat/ \(log: memory\)\n", line)
        assert match, line
        port = int(match[1])
        assert port != 0
        page = httpx2.get(f"http://127.0.0.1:{port}/chat/", timeout=10)
        assert page.status_code == 200
        process.send_signal(signal.SIGINT)
        rest = process.stderr.read()
        assert process.wait(20) == 130
    finally:
        process.kill()
    assert rest.strip() == "deltaflow: interrupted", rest


def test_a_busy_port_is_one_line() -> None:
    """A port in use: one line on stderr, exit status 1."""
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        stderr = run_failing("--port", str(port))
    assert stderr == f"deltaflow: error: port {port} on 127.0.0.1 is already in use\n"


def test_a_dead_redis_fails_at_start_in_one_line() -> None:
    """--redis to a port where nothing listens: one line naming the URL, before listening."""
    url = f"redis://127.0.0.1:{free_port()}/0"
    stderr = run_failing("--port", "0", "--redis", url)
    assert stderr.count("\n") == 1
    assert stderr.startswith(f"deltaflow: error: cannot reach Redis at {url}: ")


def test_an_unusable_base_url_fails_at_start_in_one_line() -> None:
    """--base-url that is no http(s) URL with a host: one line."""
    for base_url in ("ftp://example.com/v1", "localhost:8000", "http://:80/v1", "http://host:port/v1"):
        stderr = run_failing("--port", "0", "--base-url", base_url)
        assert stderr.count("\n") == 1, stderr
        assert stderr.startswith(f"deltaflow: error: --base-url {base_url!r} is not"), stderr


def test_a_wrong_body_is_a_short_error_naming_the_field(redis_server: RedisServer) -> None:
    """A body the relay cannot take: 422 with one line naming the field, not pydantic's dump; the
    documented body starts a stream. Without OPENAI_API_KEY, the relay says what it sends."""
    environment = {key: value for key, value in os.environ.items() if key != "OPENAI_API_KEY"}
    with RelayProcess("--redis", redis_server.url) as relay:
        cases = {
            "messages: Field required": {},
            "messages.0.role: Input should be 'system', 'user' or 'assistant'": {
                "messages": [{"role": "robot", "content": "hi"}]
            },
            "messages.0.content: Input should be a valid string": {
                "messages": [{"role": "user", "content": 3}]
            },
            "temperature: Extra inputs are not permitted": {
                "messages": [{"role": "user", "content": "hi"}],
                "temperature": 2,
            },
            "model: 'gpt-5' is not served here": {
                "messages": [{"role": "user", "content": "hi"}],
                "model": "gpt-5",
            },
        }
        for expected, body in cases.items():
            response = httpx2.post(relay.url + "/chat/", json=body, timeout=10)
            assert response.status_code == 422, response.text
            assert response.json() == {"error": expected}
        documented = {"messages": [{"role": "user", "content": "Why durable streams?"}]}
        started = httpx2.post(relay.url + "/chat/", json=documented, headers={"accept": "application/json"})
        assert started.status_code == 201
    with socket.create_server(("127.0.0.1", 0)) as upstream:
        base_url = f"http://127.0.0.1:{upstream.getsockname()[1]}/v1"
        process = subprocess.Popen(
            relay_command("--port", "0", "--base-url", base_url),
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env=environment,
        )
        try:
            assert process.stderr is not None
            first = process.stderr.readline()
            second = process.stderr.readline()
        finally:
            process.terminate()
            process.wait(20)
    assert first == "OPENAI_API_KEY is not set: requests go without a key (Bearer unused)\n"
    assert second.startswith("durable relay at http://127.0.0.1:")
