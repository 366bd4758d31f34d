"""``pip install deltaflow`` as a new user does it: the wheel in a fresh venv, every command as a subprocess.

The wheel is built once per session and installed into two fresh venvs, one without extras and one
with them. The endpoint for ``chat`` and ``record`` is the installed ``deltaflow serve``, never the
network (pip itself needs PyPI or its cache for the dependencies).
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from deltaflow.replay import scripted_chunks

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = "replay,console,schema"


def _quiet_env(**extra: str) -> dict[str, str]:
    """The environment without this checkout or a provider's settings: only the venv's deltaflow runs."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("OPENAI_", "PYTHON", "VIRTUAL_ENV")) and key != "PIP_REQUIRE_VIRTUALENV"
    }
    return {**env, "PIP_DISABLE_PIP_VERSION_CHECK": "1", **extra}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """deltaflow's wheel, built from this checkout."""
    folder = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(folder), str(ROOT)],
        check=True,
        timeout=600,
        env=_quiet_env(),
        capture_output=True,
    )
    (built,) = folder.glob("deltaflow-*.whl")
    return built


def _venv(folder: Path, requirement: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True, timeout=300, env=_quiet_env())
    subprocess.run(
        [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", requirement],
        check=True,
        timeout=900,
        env=_quiet_env(),
        capture_output=True,
    )
    return folder / "bin" / "deltaflow"


@pytest.fixture(scope="module")
def plain(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``deltaflow`` command of a fresh venv holding ``pip install deltaflow`` (no extras)."""
    return _venv(tmp_path_factory.mktemp("plain") / "venv", str(wheel))


@pytest.fixture(scope="module")
def extras(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``deltaflow`` command of a fresh venv holding ``pip install 'deltaflow[...]'`` with every extra."""
    return _venv(tmp_path_factory.mktemp("extras") / "venv", f"deltaflow[{EXTRAS}] @ {wheel.as_uri()}")


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two recordings to serve (model = file name) and the JSON schema the second one matches."""
    folder = tmp_path_factory.mktemp("files")
    answers = {"greeting": "Hello from the wheel", "weather": '{"city": "Oslo", "celsius": -3.5}'}
    for name, content in answers.items():
        lines = [json.dumps(chunk) for chunk in scripted_chunks(content)]
        (folder / f"{name}.jsonl").write_text("\n".join(lines) + "\n")
    schema = {
        "type": "object",
        "properties": {"city": {"type": "string"}, "celsius": {"type": "number"}},
        "required": ["city", "celsius"],
        "additionalProperties": False,
    }
    (folder / "weather.schema.json").write_text(json.dumps(schema))
    return folder


def _run(command: Path, *arguments: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(command), *arguments],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env=_quiet_env(OPENAI_API_KEY="sk-wheel-test"),
        check=False,
    )


def _works(result: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode == 0, result.stderr
    return result.stdout


def _names_the_extra(result: subprocess.CompletedProcess[str], extra: str) -> None:
    assert "Traceback" not in result.stderr + result.stdout
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert f"pip install 'deltaflow[{extra}]'" in lines[0]


@pytest.fixture(scope="module", params=["plain", "extras"])
def installed(request: pytest.FixtureRequest) -> tuple[str, Path]:
    """Each venv's ``deltaflow`` command, named."""
    return request.param, request.getfixturevalue(request.param)


@pytest.fixture(scope="module")
def served(installed: tuple[str, Path], files: Path) -> Iterator[str]:
    """The installed ``deltaflow serve`` of the recordings, on a free port; yields its base URL."""
    process = subprocess.Popen(
        [
            str(installed[1]),
            "serve",
            str(files / "greeting.jsonl"),
            str(files / "weather.jsonl"),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=files,
        env=_quiet_env(),
    )
    assert process.stdout is not None
    # select first: a server that never prints its address must fail the test, not hang it
    readable, _, _ = select.select([process.stdout], [], [], 60)
    line = process.stdout.readline() if readable else ""
    match = re.search(r"at (http://127\.0\.0\.1:\d+/v1)", line)
    try:
        assert match is not None, line
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    assert "Traceback" not in err
    assert process.returncode == 130


def test_version(installed: tuple[str, Path], tmp_path: Path) -> None:
    """--version names the version of the wheel."""
    out = _works(_run(installed[1], "--version", cwd=tmp_path))
    assert out.strip() == f"deltaflow {importlib.metadata.version('deltaflow')}"


def test_demo(installed: tuple[str, Path], tmp_path: Path) -> None:
    """The demo runs whole: reasoning, the tool round trip, the parsed structured answer."""
    out = _works(_run(installed[1], "demo", "--fast", cwd=tmp_path))
    assert "Paris is the capital of France." in out
    assert 'tool call get_weather({"city": "Paris"})' in out
    assert "parsed: Forecast(city='Oslo'" in out


def test_chat_record_and_replay_against_the_installed_server(
    installed: tuple[str, Path], served: str, tmp_path: Path
) -> None:
    """chat streams from ``deltaflow serve``; record saves the chunks; replay draws them again."""
    command = installed[1]
    assert "Hello from the wheel" in _works(
        _run(command, "chat", "hi", "--base-url", served, "--model", "greeting", cwd=tmp_path)
    )
    recording = tmp_path / "run.jsonl"
    _works(
        _run(
            command,
            "record",
            "hi",
            "--base-url",
            served,
            "--model",
            "greeting",
            "-o",
            str(recording),
            cwd=tmp_path,
        )
    )
    assert recording.is_file()
    assert "Hello from the wheel" in _works(
        _run(command, "replay", str(recording), "--output", "text", cwd=tmp_path)
    )
    assert (
        _works(_run(command, "replay", str(recording), cwd=tmp_path))
        .splitlines()[-1]
        .startswith("completion.done")
    )


def test_chat_schema_works_with_its_extra_or_names_it(
    installed: tuple[str, Path], served: str, files: Path, tmp_path: Path
) -> None:
    """chat --schema validates with the schema extra; without it, one line says which extra to install."""
    name, command = installed
    result = _run(
        command, "chat", "hi", "--base-url", served, "--model", "weather",
        "--schema", str(files / "weather.schema.json"), cwd=tmp_path,
    )  # fmt: skip
    if name == "plain":
        _names_the_extra(result, "schema")
    else:
        assert '"celsius": -3.5' in _works(result)


def test_readme_quick_start_shows_both_routes_and_they_are_the_tested_ones() -> None:
    """The quick start shows pip + ``deltaflow demo`` (run above in the plain venv) and clone + ``make demo``
    (the Makefile runs the command ``tests/test_demo.py`` runs)."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quick_start = readme[readme.index("## Quick start") : readme.index("## Use")]
    commands = [
        line.split("#")[0].strip()
        for line in re.findall(r"```sh\n(.*?)```", quick_start, re.DOTALL)[0].splitlines()
    ]
    assert commands[:2] == ["pip install deltaflow", "deltaflow demo"]
    assert "make demo" in quick_start
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^demo: .*\n\t(.*)$", makefile, re.MULTILINE)
    assert recipe is not None
    assert recipe.group(1) == "$(BIN)/python -m deltaflow demo"
