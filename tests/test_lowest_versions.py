"""constraints/lowest.txt pins exactly the floors pyproject.toml declares, so `make test-lowest` tests them."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLOOR = re.compile(r"^([A-Za-z0-9_.-]+)>=([0-9][0-9A-Za-z.]*)$")
PIN = re.compile(r"^([A-Za-z0-9_.-]+)==([0-9][0-9A-Za-z.]*)$")


def _floors() -> dict[str, str]:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    floors = {}
    for requirement in dependencies:
        match = FLOOR.match(requirement.replace(" ", ""))
        assert match, f"{requirement!r}: a runtime dependency is declared as name>=floor, and nothing more"
        floors[match[1].lower()] = match[2]
    return floors


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints" / "lowest.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = PIN.match(line)
            assert match, f"{line!r}: constraints/lowest.txt pins name==version"
            pins[match[1].lower()] = match[2]
    return pins


def test_each_core_floor_is_pinned_at_its_floor() -> None:
    """openai, pydantic, reactivex and structlog, the dependencies deltaflow is built on, run at their floors."""
    floors = _floors()
    assert set(_pins()) == {"openai", "pydantic", "reactivex", "structlog"}
    assert _pins() == {name: floors[name] for name in _pins()}


def test_the_makefile_runs_the_suite_on_the_pins_as_part_of_make_test() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "-c constraints/lowest.txt" in makefile
    test_target = next(line for line in makefile.splitlines() if line.startswith("test:"))
    assert "test-lowest" in test_target.split()
