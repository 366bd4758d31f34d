"""Fixtures of the front-end tests: the front-ends' npm packages, installed once per lockfile."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
CACHE = HERE / ".node"
"""Where the packages are installed, one directory per lockfile hash (gitignored)."""


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """A directory with ``node_modules`` installed by ``npm ci`` from the pinned lockfile; reused when present."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.skip("node and npm are not installed (apt-get install nodejs npm)")
    lock = (HERE / "package-lock.json").read_bytes()
    target = CACHE / hashlib.sha256(lock + (HERE / "package.json").read_bytes()).hexdigest()[:16]
    CACHE.mkdir(exist_ok=True)
    if not (target / "node_modules").is_dir():
        # installed beside, then renamed into place: a run cut short or a concurrent one leaves no half tree
        staging = Path(tempfile.mkdtemp(prefix="install-", dir=CACHE))
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(HERE / name, staging / name)
        try:
            subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=staging,
                check=True,
                timeout=600,
            )
            staging.rename(target)
        except OSError:  # another run installed it meanwhile
            pass
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    for script in [*HERE.glob("*.mjs"), *HERE.glob("*.jsx")]:
        # run beside node_modules, so that Node resolves the pinned packages
        shutil.copyfile(script, target / script.name)
    return target


def run_node(node_modules: Path, script: str, *arguments: str, timeout: float = 60) -> Any:
    """Run one of this directory's scripts with Node; returns the JSON it prints."""
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, script, *arguments],
        cwd=node_modules,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
